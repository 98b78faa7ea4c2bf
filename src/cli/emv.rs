//! `qrbridge decode` and `qrbridge encode`: the EMV payload tools for integrators.
//!
//! Contract (other tools rely on it):
//! - `decode [--json] [--strict] [PAYLOAD...]`; without PAYLOAD, one payload per line from stdin.
//!   `--json`: one object per input, in input order:
//!   `{"valid","profile","fields":{PATH: RAW},"warnings":[{"code","path","message"}],"error":null|{"kind","path","offset","message"}}`.
//!   Exit 0 all valid, 1 any invalid, 2 usage or I/O error.
//! - `encode`: reads `fields` JSON objects (or whole decode objects) from stdin, prints one payload
//!   per object. Exit 0 all encoded, 1 any refused, 2 I/O error.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::Args;
use serde_json::{Map, Value as Json, json};

use qrbridge::emv::{self, EmvError, MerchantQr, Mode, Path, QrData, Role, ids, tlv::Tokens};

/// Arguments of `decode`.
#[derive(Args)]
pub struct DecodeArgs {
    /// Print one JSON object per payload instead of a readable tree.
    #[arg(long)]
    json: bool,
    /// Apply pure EMVCo v1.1: no national profile relaxations.
    #[arg(long)]
    strict: bool,
    /// Payloads to decode; without any, one payload per line is read from standard input.
    payloads: Vec<String>,
}

/// Arguments of `encode`.
#[derive(Args)]
pub struct EncodeArgs {
    /// Check the result under pure EMVCo v1.1 instead of the profile rules.
    #[arg(long)]
    strict: bool,
}

fn mode(strict: bool) -> Mode {
    if strict { Mode::Strict } else { Mode::Profiles }
}

/// Runs `decode`.
pub fn decode(args: DecodeArgs) -> ExitCode {
    let mode = mode(args.strict);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut any_invalid = false;
    let mut each = |bytes: &[u8], out: &mut dyn Write| -> io::Result<()> {
        let result = emv::parse_bytes(bytes, mode);
        any_invalid |= result.is_err();
        // Invalid UTF-8 is reported as an error; its text is shown with replacement characters.
        let text = String::from_utf8_lossy(bytes);
        if args.json {
            writeln!(out, "{}", decode_json(&text, &result))
        } else {
            write_tree(out, &text, &result)
        }
    };
    let io_result = if args.payloads.is_empty() {
        let mut input = Vec::new();
        match io::stdin().lock().read_to_end(&mut input) {
            Ok(_) => {
                let body = input.strip_suffix(b"\n").unwrap_or(&input);
                if body.is_empty() && input.is_empty() {
                    Ok(())
                } else {
                    body.split(|&b| b == b'\n').try_for_each(|line| {
                        each(line.strip_suffix(b"\r").unwrap_or(line), &mut out)
                    })
                }
            }
            Err(e) => Err(e),
        }
    } else {
        args.payloads
            .iter()
            .try_for_each(|p| each(p.as_bytes(), &mut out))
    };
    match io_result.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(2),
        Err(e) => {
            eprintln!("qrbridge decode: {e}");
            ExitCode::from(2)
        }
        Ok(()) if any_invalid => ExitCode::from(1),
        Ok(()) => ExitCode::SUCCESS,
    }
}

/// The `--json` object for one payload.
pub fn decode_json(payload: &str, result: &Result<MerchantQr<'_>, EmvError>) -> Json {
    let mut fields = Map::new();
    match result {
        Ok(qr) => {
            for (path, value) in qr.fields() {
                fields.insert(path.to_string(), Json::String(value.to_owned()));
            }
            let warnings: Vec<Json> = qr
                .warnings()
                .iter()
                .map(|w| {
                    json!({
                        "code": w.code.as_str(),
                        "path": w.path.to_string(),
                        "message": w.to_string(),
                    })
                })
                .collect();
            json!({
                "valid": true,
                "profile": qr.profile().map(|p| p.name.as_str()),
                "fields": fields,
                "warnings": warnings,
                "error": null,
            })
        }
        Err(e) => {
            for (path, value) in lenient_fields(payload) {
                fields.insert(path.to_string(), Json::String(value.to_owned()));
            }
            json!({
                "valid": false,
                "profile": null,
                "fields": fields,
                "warnings": [],
                "error": {
                    "kind": e.kind.as_str(),
                    "path": e.path.to_string(),
                    "offset": e.offset,
                    "message": e.to_string(),
                },
            })
        }
    }
}

/// What can be read of an invalid payload: root elements up to the first framing fault, and the
/// contents of templates that frame.
fn lenient_fields(payload: &str) -> Vec<(Path, &str)> {
    let ascii = payload.is_ascii();
    let mut out = Vec::new();
    for el in Tokens::new(payload, 0, ascii).valid() {
        out.push((Path::id(el.id), el.value));
        if ids::is_root_template(el.id) {
            let subs: Vec<_> = Tokens::new(el.value, el.value_at(), ascii).collect();
            if subs.iter().all(Result::is_ok) {
                out.extend(
                    subs.into_iter()
                        .flatten()
                        .map(|s| (Path::sub(el.id, s.id), s.value)),
                );
            }
        }
    }
    out
}

fn write_tree(
    out: &mut dyn Write,
    payload: &str,
    result: &Result<MerchantQr<'_>, EmvError>,
) -> io::Result<()> {
    match result {
        Ok(qr) => {
            match qr.profile() {
                Some(p) => writeln!(out, "valid — profile {}", p.name)?,
                None => writeln!(out, "valid — no national profile recognised")?,
            }
            let accounts: Vec<_> = qr.accounts().collect();
            for (path, value) in qr.fields() {
                let ids_ = path.ids();
                let indent = "  ".repeat(ids_.len());
                let root = ids_.first().copied().unwrap_or(0);
                let account = accounts.iter().find(|a| a.id() == root);
                let name = match (ids_, account.and_then(|a| a.scheme())) {
                    ([_], Some(s)) if ids::is_merchant_account(root) => {
                        format!("{} ({})", ids::name(path), s.name)
                    }
                    ([_, sub], Some(s)) => match s.sub(*sub) {
                        Some(f) => format!("{} [{}]", f.label, f.role.as_str()),
                        None => ids::name(path).to_owned(),
                    },
                    _ => ids::name(path).to_owned(),
                };
                let shown = if ids::is_root_template(root) && ids_.len() == 1 && !qr.is_opaque(root)
                {
                    ""
                } else {
                    value
                };
                let at = format!("{indent}{path}");
                writeln!(out, "{at:<12} {name:<44} {shown}")?;
            }
            if let Some(a) = qr.amount() {
                let c = qr.currency();
                writeln!(
                    out,
                    "amount: {a} minor units of {} (exponent {})",
                    c.code(),
                    c.exponent()
                )?;
            } else if let Some((decimals, exponent)) = qr.amount_too_precise() {
                writeln!(
                    out,
                    "amount: {} has {decimals} decimal places, finer than {} allows ({exponent}): not payable",
                    qr.raw(54).unwrap_or_default(),
                    qr.currency().code()
                )?;
            } else {
                writeln!(
                    out,
                    "amount: entered by the payer ({})",
                    qr.currency().code()
                )?;
            }
            if let Some(mid) = accounts.iter().find_map(|a| a.role(Role::MerchantId)) {
                writeln!(out, "merchant id: {mid}")?;
            }
            for w in qr.warnings().iter() {
                writeln!(out, "warning {} at {}: {}", w.code.as_str(), w.path, w)?;
            }
            if qr.warnings().dropped() > 0 {
                writeln!(out, "... and {} more warnings", qr.warnings().dropped())?;
            }
        }
        Err(e) => {
            writeln!(out, "invalid — {} at offset {}: {}", e.kind, e.offset, e)?;
            writeln!(out, "  {payload}")?;
            writeln!(out, "  {}^", " ".repeat(e.offset))?;
        }
    }
    writeln!(out)
}

/// Runs `encode`.
pub fn encode(args: EncodeArgs) -> ExitCode {
    let mode = mode(args.strict);
    let mut input = String::new();
    if let Err(e) = io::stdin().lock().read_to_string(&mut input) {
        eprintln!("qrbridge encode: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for (n, value) in serde_json::Deserializer::from_str(&input)
        .into_iter::<Json>()
        .enumerate()
    {
        let n = n + 1;
        let result = value
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| encode_json(&v, mode));
        match result {
            Ok(payload) => {
                if writeln!(out, "{payload}").is_err() {
                    return ExitCode::from(2);
                }
            }
            Err(msg) => {
                failed = true;
                eprintln!("qrbridge encode: input {n}: {msg}");
                // After a JSON syntax error the stream cannot resynchronise.
                if msg.starts_with("not JSON") {
                    break;
                }
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Encodes one `fields` object (or a decode object carrying `fields`).
pub fn encode_json(v: &Json, mode: Mode) -> Result<String, String> {
    let obj = v.as_object().ok_or("expected a JSON object of fields")?;
    let fields = match obj.get("fields") {
        Some(Json::Object(f)) => f,
        Some(_) => return Err("\"fields\" must be an object".into()),
        None => obj,
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        let s = v
            .as_str()
            .ok_or_else(|| format!("field {k:?}: value must be a string"))?;
        pairs.push((k.as_str(), s));
    }
    let data = QrData::from_fields(pairs).map_err(|e| e.to_string())?;
    emv::encode_with(&data, mode).map_err(|e| e.to_string())
}
