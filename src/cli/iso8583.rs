//! `qrbridge iso8583 decode|encode [--framed]`: read captures as hex lines / JSON lines on stdin.
//!
//! decode: one hex message per line → one JSON object per line. encode: one JSON object per line →
//! one hex line. A line that fails prints `{"error":{"field":..,"offset":..,"message":..}}`; the
//! remaining lines are still processed and the exit code is 1.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use qrbridge::acquirer::frame::Framing;
use qrbridge::acquirer::iso8583::{self, Spec, from_hex, json, to_hex};
use serde_json::json;

#[derive(Subcommand)]
pub enum Iso8583Command {
    /// Hex messages (one per line) on stdin → JSON objects on stdout.
    Decode(Opts),
    /// JSON objects (one per line) on stdin → hex messages on stdout.
    Encode(Opts),
}

#[derive(clap::Args)]
pub struct Opts {
    /// Messages carry their length header (see --framing).
    #[arg(long)]
    framed: bool,
    /// Length header used with --framed.
    #[arg(long, value_enum, default_value_t = FramingArg::Binary2)]
    framing: FramingArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum FramingArg {
    /// 2-byte big-endian length.
    Binary2,
    /// 4 ASCII digits.
    Ascii4,
}

impl From<FramingArg> for Framing {
    fn from(f: FramingArg) -> Self {
        match f {
            FramingArg::Binary2 => Framing::Binary2,
            FramingArg::Ascii4 => Framing::Ascii4,
        }
    }
}

struct LineError {
    field: String,
    offset: usize,
    message: String,
}

impl From<iso8583::CodecError> for LineError {
    fn from(e: iso8583::CodecError) -> Self {
        LineError {
            field: e.location.label(),
            offset: e.offset,
            message: e.kind.to_string(),
        }
    }
}

pub fn run(cmd: Iso8583Command) -> ExitCode {
    let spec = Spec::iso1987_ascii();
    let (opts, decode) = match &cmd {
        Iso8583Command::Decode(o) => (o, true),
        Iso8583Command::Encode(o) => (o, false),
    };
    let framing = opts.framed.then(|| Framing::from(opts.framing));
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::from(2);
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let result = if decode {
            decode_line(line, framing, spec)
        } else {
            encode_line(line, framing, spec)
        };
        let text = match result {
            Ok(t) => t,
            Err(e) => {
                failed = true;
                json!({"error": {"field": e.field, "offset": e.offset, "message": e.message}})
                    .to_string()
            }
        };
        if writeln!(out, "{text}").is_err() {
            return ExitCode::from(2);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn decode_line(line: &str, framing: Option<Framing>, spec: &Spec) -> Result<String, LineError> {
    let bytes = from_hex(line).ok_or_else(|| LineError {
        field: "hex".to_owned(),
        offset: line
            .bytes()
            .position(|c| !c.is_ascii_hexdigit())
            .unwrap_or(line.len())
            / 2,
        message: "input line is not an even number of hexadecimal digits".to_owned(),
    })?;
    let payload = match framing {
        None => &bytes[..],
        Some(f) => unframe(&bytes, f)?,
    };
    let message = iso8583::decode(payload, spec)?;
    Ok(json::to_json(&message, spec).to_string())
}

fn unframe(bytes: &[u8], framing: Framing) -> Result<&[u8], LineError> {
    let h = framing.header_len();
    let err = |message: String| LineError {
        field: "frame".to_owned(),
        offset: 0,
        message,
    };
    let header = bytes
        .get(..h)
        .ok_or_else(|| err(format!("shorter than the {h}-byte length header")))?;
    let len = match framing {
        Framing::Binary2 => usize::from(u16::from_be_bytes([header[0], header[1]])),
        Framing::Ascii4 => std::str::from_utf8(header)
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| err("length header is not 4 ASCII digits".to_owned()))?,
    };
    let body = &bytes[h..];
    if body.len() != len {
        return Err(err(format!(
            "length header says {len} bytes, {} follow",
            body.len()
        )));
    }
    Ok(body)
}

fn encode_line(line: &str, framing: Option<Framing>, spec: &Spec) -> Result<String, LineError> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| LineError {
        field: "json".to_owned(),
        offset: e.column().saturating_sub(1),
        message: e.to_string(),
    })?;
    let message = json::from_json(&value, spec).map_err(|e| LineError {
        field: e.field(),
        offset: 0,
        message: e.to_string(),
    })?;
    let wire = iso8583::encode(&message, spec)?;
    let out = match framing {
        None => wire,
        Some(f) => {
            let mut framed = Vec::with_capacity(wire.len() + 4);
            f.wrap(&wire, &mut framed).map_err(|e| LineError {
                field: "frame".to_owned(),
                offset: 0,
                message: e.to_string(),
            })?;
            framed
        }
    };
    Ok(to_hex(&out))
}
