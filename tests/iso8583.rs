//! ISO 8583 codec from the outside: the `qrbridge iso8583` CLI contract, differential tests against
//! the independent pyiso8583 peer (its default ASCII spec), and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use qrbridge::acquirer::iso8583::{self, Format, Length, Message, Mti, Spec, from_hex, to_hex};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers

/// splitmix64: a small deterministic generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The data elements our profile uses, plus a few others (secondary bitmap, LLVAR, LLLVAR, hex).
const FIELDS: &[u8] = &[
    2, 3, 4, 6, 7, 10, 11, 12, 13, 18, 22, 25, 32, 35, 37, 38, 39, 41, 42, 43, 44, 48, 49, 51, 52,
    54, 61, 70, 90, 100, 102, 128,
];
const MTIS: &[&str] = &[
    "0200", "0210", "0220", "0221", "0230", "0400", "0401", "0410", "0800", "0810",
];

fn value_for(rng: &mut Rng, format: Format, length: Length) -> String {
    let len = match length {
        Length::Fixed(n) => usize::from(n),
        Length::Llvar(max) | Length::Lllvar(max) => {
            // Mostly short values, sometimes the full range including 0 and the maximum.
            let max = usize::from(max);
            match rng.below(8) {
                0 => 0,
                1 => max,
                _ => rng.below(max.min(60) + 1),
            }
        }
    };
    let alphabet: &[u8] = match format {
        Format::N => b"0123456789",
        Format::An => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        Format::Ans => b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~",
        Format::H => b"0123456789ABCDEFabcdef",
        Format::B => panic!("the ASCII profile has no raw binary field"),
    };
    (0..len).map(|_| char::from(*rng.pick(alphabet))).collect()
}

/// A random message as (mti, fields) in the JSON shape.
fn random_doc(rng: &mut Rng) -> (String, serde_json::Map<String, Value>) {
    let spec = Spec::iso1987_ascii();
    let mti = rng.pick(MTIS).to_string();
    let mut fields = serde_json::Map::new();
    while fields.is_empty() {
        for &n in FIELDS {
            if rng.below(2) == 0 {
                let f = spec.field(n).unwrap();
                fields.insert(
                    n.to_string(),
                    Value::String(value_for(rng, f.format, f.length)),
                );
            }
        }
    }
    (mti, fields)
}

fn message_from(mti: &str, fields: &serde_json::Map<String, Value>) -> Message {
    let mut m = Message::new(Mti::new(mti.as_bytes().try_into().unwrap()).unwrap());
    for (k, v) in fields {
        m.set(k.parse().unwrap(), v.as_str().unwrap().as_bytes());
    }
    m
}

/// Runs the pyiso8583 peer over a batch of requests; `None` (after a notice) when the peer is missing
/// and `QRBRIDGE_REQUIRE_PEERS` is not set.
fn pyiso8583(requests: &[Value]) -> Option<Vec<Value>> {
    let probe = Command::new("python3")
        .args(["-c", "import iso8583"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        if std::env::var("QRBRIDGE_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!(
                "QRBRIDGE_REQUIRE_PEERS=1 but `python3 -c 'import iso8583'` fails: pip install pyiso8583"
            );
        }
        eprintln!(
            "notice: pyiso8583 is not installed; skipping the differential test (pip install pyiso8583)"
        );
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/pyiso8583_peer.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for r in requests {
        input.push_str(&r.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "peer failed");
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), requests.len());
    Some(answers)
}

// ---------------------------------------------------------------------------------------------
// Differential tests against pyiso8583

#[test]
fn messages_we_encode_decode_in_pyiso8583_to_the_same_fields() {
    let spec = Spec::iso1987_ascii();
    let mut rng = Rng(0x8583_0001);
    let docs: Vec<_> = (0..500).map(|_| random_doc(&mut rng)).collect();
    let requests: Vec<Value> = docs
        .iter()
        .map(|(mti, fields)| {
            let wire = iso8583::encode(&message_from(mti, fields), spec).unwrap();
            json!({"op": "decode", "hex": to_hex(&wire)})
        })
        .collect();
    let Some(answers) = pyiso8583(&requests) else {
        return;
    };
    for ((mti, fields), answer) in docs.iter().zip(&answers) {
        assert_eq!(answer["mti"], json!(mti), "peer answer {answer}");
        assert_eq!(
            answer["fields"],
            Value::Object(fields.clone()),
            "peer answer {answer}"
        );
    }
}

#[test]
fn messages_pyiso8583_encodes_decode_in_ours_to_the_same_fields_and_bytes() {
    let spec = Spec::iso1987_ascii();
    let mut rng = Rng(0x8583_0002);
    let docs: Vec<_> = (0..500).map(|_| random_doc(&mut rng)).collect();
    let requests: Vec<Value> = docs
        .iter()
        .map(|(mti, fields)| json!({"op": "encode", "mti": mti, "fields": fields}))
        .collect();
    let Some(answers) = pyiso8583(&requests) else {
        return;
    };
    for ((mti, fields), answer) in docs.iter().zip(&answers) {
        let wire = from_hex(
            answer["hex"]
                .as_str()
                .unwrap_or_else(|| panic!("peer: {answer}")),
        )
        .unwrap();
        let ours = iso8583::decode(&wire, spec).unwrap_or_else(|e| panic!("{e} in {answer}"));
        assert_eq!(ours.mti().as_str(), mti);
        let got: serde_json::Map<String, Value> = ours
            .fields()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    Value::String(String::from_utf8(v.to_vec()).unwrap()),
                )
            })
            .collect();
        assert_eq!(&got, fields);
        // Same bytes both ways: our encoder reproduces the peer's wire image exactly.
        assert_eq!(iso8583::encode(&ours, spec).unwrap(), wire);
    }
}

#[test]
fn truncated_or_padded_messages_are_refused_by_both() {
    let spec = Spec::iso1987_ascii();
    let mut rng = Rng(0x8583_0003);
    let mut broken = Vec::new();
    for i in 0..200 {
        let (mti, fields) = random_doc(&mut rng);
        let mut wire = iso8583::encode(&message_from(&mti, &fields), spec).unwrap();
        if i % 2 == 0 {
            let cut = 1 + rng.below(wire.len() - 1);
            wire.truncate(wire.len() - cut);
        } else {
            wire.extend_from_slice(b"00");
        }
        assert!(
            iso8583::decode(&wire, spec).is_err(),
            "ours accepted {}",
            to_hex(&wire)
        );
        broken.push(json!({"op": "decode", "hex": to_hex(&wire)}));
    }
    let Some(answers) = pyiso8583(&broken) else {
        return;
    };
    for (req, answer) in broken.iter().zip(&answers) {
        assert!(
            answer.get("error").is_some(),
            "peer accepted {req}: {answer}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// CLI contract

fn cli(args: &[&str], stdin: &str) -> (i32, String) {
    let out = common::run_qrbridge(args, stdin.as_bytes());
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// A 0200 written out by hand: MTI, bitmap for 3, 4, 11, 41, 49, then the values.
const PURCHASE_WIRE: &str = concat!(
    "0200",
    "3020000000808000", // bits 3, 4 | 11 | 41 | 49
    "000000",
    "000000035000",
    "001234",
    "TERM0001",
    "702"
);

#[test]
fn cli_decodes_a_hex_capture_to_the_documented_json() {
    let (code, out) = cli(
        &["iso8583", "decode"],
        &format!("{}\n", hex_of(PURCHASE_WIRE)),
    );
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        r#"{"mti":"0200","fields":{"3":"000000","4":"000000035000","11":"001234","41":"TERM0001","49":"702"}}"#
    );
}

#[test]
fn cli_encodes_json_back_to_the_same_hex() {
    let line = r#"{"mti":"0200","fields":{"3":"000000","4":"000000035000","11":"001234","41":"TERM0001","49":"702"}}"#;
    let (code, out) = cli(&["iso8583", "encode"], &format!("{line}\n"));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), hex_of(PURCHASE_WIRE));
}

#[test]
fn cli_framed_adds_and_checks_the_two_byte_length() {
    let line = r#"{"mti":"0800","fields":{"70":"301"}}"#;
    let (code, out) = cli(&["iso8583", "encode", "--framed"], &format!("{line}\n"));
    assert_eq!(code, 0);
    // 4 + 16 + 16 + 3 = 39 bytes = 0x0027.
    assert!(out.trim().starts_with("0027"), "{out}");
    let (code, back) = cli(&["iso8583", "decode", "--framed"], &out);
    assert_eq!(code, 0);
    assert_eq!(back.trim(), line);
    let (code, ascii) = cli(
        &["iso8583", "encode", "--framed", "--framing", "ascii4"],
        &format!("{line}\n"),
    );
    assert_eq!(code, 0);
    assert!(ascii.trim().starts_with(&hex_of("0039")), "{ascii}");
}

#[test]
fn cli_reports_a_malformed_message_as_one_json_error_line_and_exit_1() {
    // DE4 carries a letter at byte 31.
    let bad = PURCHASE_WIRE.replacen("000000035000", "00000X035000", 1);
    let (code, out) = cli(&["iso8583", "decode"], &format!("{}\n", hex_of(&bad)));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["error"]["field"], "4");
    assert_eq!(v["error"]["offset"], 31);
    assert!(v["error"]["message"].as_str().unwrap().contains("0x58"));
}

#[test]
fn cli_refuses_json_with_a_value_of_the_wrong_length() {
    let (code, out) = cli(
        &["iso8583", "encode"],
        "{\"mti\":\"0200\",\"fields\":{\"3\":\"00000\"}}\n",
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["error"]["field"], "3");
    assert_eq!(v["error"]["offset"], 20);
}

fn hex_of(ascii: &str) -> String {
    to_hex(ascii.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_either_fail_cleanly_or_round_trip(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let spec = Spec::iso1987_ascii();
        if let Ok(m) = iso8583::decode(&data, spec) {
            proptest::prop_assert_eq!(iso8583::encode(&m, spec).unwrap(), data);
        }
    }

    #[test]
    fn generated_messages_round_trip(seed in proptest::num::u64::ANY) {
        let spec = Spec::iso1987_ascii();
        let mut rng = Rng(seed);
        let (mti, fields) = random_doc(&mut rng);
        let m = message_from(&mti, &fields);
        let wire = iso8583::encode(&m, spec).unwrap();
        proptest::prop_assert_eq!(iso8583::decode(&wire, spec).unwrap(), m);
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus and crash files replay through the same entry points as cargo-fuzz

fn replay(dir: &str, f: fn(&[u8])) -> usize {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&path) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let p = e.unwrap().path();
        if p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.') {
            f(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_corpus_and_artifacts_replay_without_failure() {
    assert!(
        replay(
            "fuzz/corpus/iso8583_decode",
            qrbridge::fuzzing::iso8583_decode
        ) >= 9
    );
    assert!(
        replay(
            "fuzz/corpus/iso8583_frame",
            qrbridge::fuzzing::iso8583_frame
        ) >= 18
    );
    replay(
        "fuzz/artifacts/iso8583_decode",
        qrbridge::fuzzing::iso8583_decode,
    );
    replay(
        "fuzz/artifacts/iso8583_frame",
        qrbridge::fuzzing::iso8583_frame,
    );
}

#[test]
fn every_seed_message_made_by_pyiso8583_decodes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/iso8583_decode");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        iso8583::decode(&bytes, Spec::iso1987_ascii())
            .unwrap_or_else(|err| panic!("{}: {err}", p.display()));
    }
}
