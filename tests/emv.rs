//! The EMV room's integration tests: the fixture folders, the round trip, the CLI contract, property
//! tests, the allocation count, and replay of the fuzz corpus and crash files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::{Path as FsPath, PathBuf};

mod common;

use proptest::prelude::*;
use qrbridge::emv::{self, ErrorKind, MerchantQr, Mode};
use serde_json::Value as Json;

// ---------------------------------------------------------------------------------------------
// Counting allocator: counts allocations made by the current thread only, so parallel tests do
// not disturb the count.

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY-free: we only forward to the system allocator; `unsafe impl` is required by the trait.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fixture {
    file: PathBuf,
    payload: String,
    expect: Vec<(String, String)>,
}

impl Fixture {
    fn get(&self, key: &str) -> Option<&str> {
        self.expect
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn fixtures(dir: &str) -> Vec<Fixture> {
    let root = FsPath::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/emv")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut payload = None;
            let mut expect = Vec::new();
            for line in text.split('\n') {
                if let Some(rest) = line.strip_prefix("# expect:") {
                    // `key=value` pairs; a value may contain spaces ("profile=QR Ph").
                    for word in rest.split_whitespace() {
                        match word.split_once('=') {
                            Some((k, v)) => expect.push((k.to_owned(), v.to_owned())),
                            None => {
                                let (_, v): &mut (String, String) =
                                    expect.last_mut().unwrap_or_else(|| {
                                        panic!("{}: bad expect {word:?}", file.display())
                                    });
                                v.push(' ');
                                v.push_str(word);
                            }
                        }
                    }
                } else if !line.starts_with('#') && !line.is_empty() {
                    assert!(
                        payload.is_none(),
                        "{}: more than one payload line",
                        file.display()
                    );
                    payload = Some(line.to_owned());
                }
            }
            let payload = payload.unwrap_or_else(|| panic!("{}: no payload line", file.display()));
            Fixture {
                file,
                payload,
                expect,
            }
        })
        .collect()
}

fn name(f: &Fixture) -> String {
    f.file.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_valid_fixture_parses_with_its_expected_profile_and_warnings() {
    let all = fixtures("valid");
    assert!(all.len() >= 40, "only {} valid fixtures", all.len());
    let mut countries = BTreeSet::new();
    let mut failures = Vec::new();
    for f in &all {
        let qr = match emv::parse(&f.payload) {
            Ok(qr) => qr,
            Err(e) => {
                failures.push(format!(
                    "{}: {} at {} offset {}: {e}",
                    name(f),
                    e.kind,
                    e.path,
                    e.offset
                ));
                continue;
            }
        };
        countries.insert(qr.country().to_owned());
        if let Some(p) = f.get("profile") {
            let got = qr.profile().map_or("none", |p| p.name.as_str());
            if got.replace(' ', "_") != p.replace(' ', "_") {
                failures.push(format!("{}: profile {got}, expected {p}", name(f)));
            }
        }
        if let Some(w) = f.get("warnings") {
            let want: BTreeSet<&str> = if w == "none" {
                BTreeSet::new()
            } else {
                w.split(',').collect()
            };
            let got: BTreeSet<&str> = qr.warnings().iter().map(|w| w.code.as_str()).collect();
            if want != got {
                failures.push(format!("{}: warnings {got:?}, expected {want:?}", name(f)));
            }
        }
        if let Some(c) = f.get("country")
            && qr.country() != c
        {
            failures.push(format!(
                "{}: country {}, expected {c}",
                name(f),
                qr.country()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        countries.len() >= 12,
        "valid fixtures cover only {countries:?}"
    );
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_kind_and_path() {
    let all = fixtures("invalid");
    assert!(all.len() >= 30, "only {} invalid fixtures", all.len());
    let mut kinds = BTreeSet::new();
    let mut failures = Vec::new();
    for f in &all {
        let strict = f.get("mode") == Some("strict");
        let mode = if strict { Mode::Strict } else { Mode::Profiles };
        let want_kind = f
            .get("kind")
            .unwrap_or_else(|| panic!("{}: no kind", name(f)));
        let want_path = f.get("path").unwrap_or("");
        match MerchantQr::parse(&f.payload, mode) {
            Ok(_) => failures.push(format!(
                "{}: accepted, expected {want_kind} at {want_path}",
                name(f)
            )),
            Err(e) => {
                kinds.insert(e.kind.as_str());
                if e.kind.as_str() != want_kind || e.path.to_string() != want_path {
                    failures.push(format!(
                        "{}: got {} at {:?} ({e}), expected {want_kind} at {want_path:?}",
                        name(f),
                        e.kind,
                        e.path.to_string()
                    ));
                }
                if let Some(off) = f.get("offset")
                    && off.parse::<usize>().ok() != Some(e.offset)
                {
                    failures.push(format!("{}: offset {}, expected {off}", name(f), e.offset));
                }
            }
        }
        if strict {
            match emv::parse(&f.payload) {
                Err(e) => failures.push(format!(
                    "{}: strict-only fixture is invalid in default mode too: {e}",
                    name(f)
                )),
                // The default mode names the deviation: its warning code, at the error's path.
                Ok(qr) => {
                    if let Some(w) = f.get("warning")
                        && !qr
                            .warnings()
                            .iter()
                            .any(|x| x.code.as_str() == w && x.path.to_string() == want_path)
                    {
                        let got: Vec<String> = qr
                            .warnings()
                            .iter()
                            .map(|x| format!("{}@{}", x.code.as_str(), x.path))
                            .collect();
                        failures.push(format!(
                            "{}: default mode warns {got:?}, expected {w}@{want_path}",
                            name(f)
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for k in [
        ErrorKind::Crc,
        ErrorKind::Truncated,
        ErrorKind::BadLength,
        ErrorKind::Order,
        ErrorKind::Duplicate,
        ErrorKind::MissingMandatory,
        ErrorKind::BadValue,
        ErrorKind::BadChar,
        ErrorKind::TooLong,
    ] {
        assert!(kinds.contains(k.as_str()), "no invalid fixture of kind {k}");
    }
}

#[test]
fn encoding_a_parsed_fixture_gives_back_the_same_bytes() {
    for f in fixtures("valid") {
        let qr = emv::parse(&f.payload).unwrap();
        let again = emv::encode(&qr.to_data()).unwrap_or_else(|e| panic!("{}: {e}", name(&f)));
        let split = f.payload.len() - 4;
        let upper = format!(
            "{}{}",
            &f.payload[..split],
            f.payload[split..].to_ascii_uppercase()
        );
        assert_eq!(again, upper, "{}", name(&f));
    }
}

#[test]
fn parsing_a_valid_payload_does_not_allocate() {
    // The registry and the country table are loaded (and allocated) once per process, on first
    // use; not per parse. Parsing one payload first loads both.
    let all = fixtures("valid");
    assert!(emv::parse(&all[0].payload).is_ok());
    for f in &all {
        let before = allocations();
        let qr = emv::parse(&f.payload);
        let after = allocations();
        assert!(qr.is_ok());
        assert_eq!(
            after - before,
            0,
            "{}: parse allocated {} times",
            name(f),
            after - before
        );
    }
    // A rejected payload does not allocate either.
    for f in fixtures("invalid") {
        let before = allocations();
        let r = MerchantQr::parse(&f.payload, Mode::Strict);
        let after = allocations();
        assert!(r.is_err() || f.get("mode").is_none());
        assert_eq!(after - before, 0, "{}: parse allocated", name(&f));
    }
    // The counter itself works: this allocates.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 10]);
    assert!(allocations() > before && v.len() == 10);
}

// ---------------------------------------------------------------------------------------------
// The real-world corpus: codes other people produced (testdata/emv/real/, one file per source)

struct RealCode {
    file: String,
    at: String,
    expect: String,
    payload: String,
}

fn real_codes() -> Vec<RealCode> {
    let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("testdata/emv/real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            text.starts_with("# Codes found in https://"),
            "{name}: the first line names the source"
        );
        let (mut at, mut expect) = (None, None);
        for line in text.split('\n') {
            if let Some(rest) = line.strip_prefix("# at: ") {
                at = Some(rest.to_owned());
            } else if let Some(rest) = line.strip_prefix("# expect: ") {
                expect = Some(rest.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                out.push(RealCode {
                    file: name.clone(),
                    at: at
                        .take()
                        .unwrap_or_else(|| panic!("{name}: a code without '# at:'")),
                    expect: expect
                        .take()
                        .unwrap_or_else(|| panic!("{name}: a code without '# expect:'")),
                    payload: line.to_owned(),
                });
            }
        }
    }
    out
}

/// Every corpus code is classified as its file says: accepted with exactly the listed warnings, or
/// refused with the listed kind and path. Prints the acceptance figure, which the README states.
#[test]
fn every_real_world_code_is_classified_as_its_file_says() {
    let codes = real_codes();
    let mut failures = Vec::new();
    let mut accepted = 0;
    let mut countries = BTreeSet::new();
    for c in &codes {
        let what = format!("{} ({}): {}", c.file, c.at, c.payload);
        let got = emv::parse(&c.payload);
        if let Some(ws) = c.expect.strip_prefix("accept warnings=") {
            let want: BTreeSet<&str> = if ws == "none" {
                BTreeSet::new()
            } else {
                ws.split(',').collect()
            };
            match got {
                Ok(qr) => {
                    accepted += 1;
                    countries.insert(qr.country().to_owned());
                    let got: BTreeSet<&str> =
                        qr.warnings().iter().map(|w| w.code.as_str()).collect();
                    if got != want {
                        failures.push(format!("{what}: warnings {got:?}, expected {want:?}"));
                    }
                }
                Err(e) => failures.push(format!("{what}: refused ({} at {}: {e})", e.kind, e.path)),
            }
        } else if let Some(rest) = c.expect.strip_prefix("refuse kind=") {
            let (kind, path) = rest
                .split_once(" path=")
                .unwrap_or_else(|| panic!("{what}: bad expect {:?}", c.expect));
            match got {
                Ok(_) => failures.push(format!("{what}: accepted, expected {kind} at {path:?}")),
                Err(e) if e.kind.as_str() != kind || e.path.to_string() != path => {
                    failures.push(format!(
                        "{what}: {} at {:?} ({e}), expected {kind} at {path:?}",
                        e.kind,
                        e.path.to_string()
                    ))
                }
                Err(_) => {}
            }
        } else {
            failures.push(format!("{what}: bad expect {:?}", c.expect));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let sources: BTreeSet<&str> = codes.iter().map(|c| c.file.as_str()).collect();
    let figure = format!(
        "accepts {accepted} of {} codes ({} sources, {} countries)",
        codes.len(),
        sources.len(),
        countries.len()
    );
    eprintln!("real-world corpus: {figure}");
    assert!(codes.len() >= 150, "only {} corpus codes", codes.len());
    assert!(
        countries.len() >= 18,
        "accepted codes cover only {countries:?}"
    );
    // Issue 11: the README itself states the acceptance figure (the guide gives the details).
    let readme =
        std::fs::read_to_string(FsPath::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains(&figure), "README.md should state: {figure}");
}

/// Strict mode refuses every corpus code that the default mode accepts with a deviation warning.
#[test]
fn strict_mode_refuses_every_real_world_deviation() {
    for c in real_codes() {
        let Ok(qr) = emv::parse(&c.payload) else {
            continue;
        };
        let deviates = qr
            .warnings()
            .iter()
            .any(|w| matches!(w.code, emv::WarningCode::Deviation(_)));
        if deviates {
            assert!(
                emv::parse_strict(&c.payload).is_err(),
                "{} ({}): strict accepted a code with deviations",
                c.file,
                c.at
            );
        } else {
            assert!(
                emv::parse_strict(&c.payload).is_ok(),
                "{} ({}): strict refused a code without deviations",
                c.file,
                c.at
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Specific behaviours

const PIX_BCB: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";

/// Builds a payload with a CRC computed here (bit by bit, independently of the crate's table code).
fn with_crc(body: &str) -> String {
    let mut s = format!("{body}6304");
    let mut crc: u16 = 0xFFFF;
    for b in s.bytes() {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    s.push_str(&format!("{crc:04X}"));
    s
}

/// A minimal valid PayNow body (no CRC) with country `country` in 58.
fn paynow_body(country: &str) -> String {
    tlv(0, "01")
        + &tlv(26, &tlv(0, "SG.PAYNOW"))
        + &tlv(52, "0000")
        + &tlv(53, "702")
        + &tlv(58, country)
        + &tlv(59, "A")
        + &tlv(60, "B")
}

fn tlv(id: u8, v: &str) -> String {
    format!("{id:02}{:02}{v}", v.chars().count())
}

#[test]
fn accepts_the_central_bank_of_brazil_pix_example() {
    let qr = emv::parse(PIX_BCB).unwrap();
    assert_eq!(qr.profile().unwrap().name, "PIX");
    assert_eq!(qr.currency().code(), "BRL");
    assert_eq!(qr.name(), Some("Fulano de Tal"));
    assert_eq!(
        qr.additional_data().unwrap().reference_label(),
        Some(emv::DataValue::Prompt)
    );
    assert_eq!(with_crc(&PIX_BCB[..PIX_BCB.len() - 8]), PIX_BCB);
}

#[test]
fn counts_thai_characters_not_bytes_in_the_language_template() {
    let lang = tlv(64, &(tlv(0, "th") + &tlv(1, "ร้านกาแฟดี")));
    let body = format!(
        "{}{}{}{}{}{}{}{}{}",
        tlv(0, "01"),
        tlv(1, "12"),
        tlv(29, &(tlv(0, "A000000677010111") + &tlv(1, "0066812345678"))),
        tlv(52, "5812"),
        tlv(53, "764"),
        tlv(54, "35.00"),
        tlv(58, "TH"),
        tlv(59, "GOOD COFFEE") + &tlv(60, "BANGKOK"),
        lang
    );
    let p = with_crc(&body);
    let qr = emv::parse(&p).unwrap();
    assert_eq!(qr.language().unwrap().name(), "ร้านกาแฟดี");
    assert_eq!(qr.amount(), Some(3500));
    assert!(qr.warnings().is_empty());
    // A byte-counting length would not frame: make the length count bytes and see it rejected.
    let bytes_len = "ร้านกาแฟดี".len();
    let wrong = body.replace(&tlv(1, "ร้านกาแฟดี"), &format!("01{bytes_len:02}ร้านกาแฟดี"));
    assert!(emv::parse(&with_crc(&wrong)).is_err());
}

#[test]
fn rejects_payload_with_lowercase_country() {
    let e = emv::parse(&with_crc(&paynow_body("sg"))).unwrap_err();
    assert_eq!(
        (e.kind, e.path.to_string()),
        (ErrorKind::BadValue, "58".to_owned())
    );
}

#[test]
fn reports_wrong_crc_with_the_computed_value() {
    let good = with_crc(&paynow_body("SG"));
    let bad = format!("{}0000", &good[..good.len() - 4]);
    let e = emv::parse(&bad).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Crc);
    assert_eq!(e.offset, good.len() - 4);
    assert!(e.to_string().contains(&good[good.len() - 4..]), "{e}");
}

#[test]
fn a_lowercase_crc_is_accepted_with_a_warning_and_emitted_upper_case() {
    let good = with_crc(&paynow_body("SG"));
    let lower = format!(
        "{}{}",
        &good[..good.len() - 4],
        good[good.len() - 4..].to_ascii_lowercase()
    );
    if lower == good {
        return; // this CRC has no letters; nothing to test
    }
    let qr = emv::parse(&lower).unwrap();
    assert_eq!(
        qr.warnings().iter().next().unwrap().code.as_str(),
        "crc_lowercase"
    );
    assert_eq!(emv::encode(&qr.to_data()).unwrap(), good);
}

#[test]
fn the_amount_is_exact_in_minor_units_of_each_exponent() {
    for (currency, amount, minor, warns) in [
        ("392", "1500", 1500u64, false), // JPY, exponent 0
        ("764", "35.00", 3500, false),   // THB, 2
        ("764", "35.5", 3550, true),     // THB with one decimal: exact, warned
        ("414", "1.250", 1250, false),   // KWD, 3
        ("990", "0.0001", 1, false),     // CLF, 4
        ("392", "100.00", 100, true),    // JPY written with decimals: exact, warned
    ] {
        let body = tlv(0, "01")
            + &tlv(15, "9999")
            + &tlv(52, "5812")
            + &tlv(53, currency)
            + &tlv(54, amount)
            + &tlv(58, "JP")
            + &tlv(59, "A")
            + &tlv(60, "B");
        let p = with_crc(&body);
        let qr = emv::parse(&p).unwrap_or_else(|e| panic!("{currency} {amount}: {e}"));
        assert_eq!(qr.amount(), Some(minor), "{currency} {amount}");
        assert_eq!(
            qr.warnings()
                .iter()
                .any(|w| w.code.as_str() == "amount_decimals"),
            warns,
            "{currency} {amount}"
        );
    }
    // Non-zero digits below the minor unit: the default mode keeps the code (the gateway decides,
    // and refuses to pay it) with no amount and the warning; strict refuses it.
    let body = tlv(0, "01")
        + &tlv(15, "9999")
        + &tlv(52, "5812")
        + &tlv(53, "764")
        + &tlv(54, "1.235")
        + &tlv(58, "TH")
        + &tlv(59, "A")
        + &tlv(60, "B");
    let p = with_crc(&body);
    let qr = emv::parse(&p).unwrap();
    assert_eq!(qr.amount(), None);
    assert_eq!(qr.amount_too_precise(), Some((3, 2)));
    assert!(
        qr.warnings()
            .iter()
            .any(|w| w.code.as_str() == "amount_too_precise" && w.path.to_string() == "54")
    );
    assert_eq!(emv::parse_strict(&p).unwrap_err().kind, ErrorKind::BadValue);
    // A fixed fee (56) with such digits stays an error in both modes: fee rules are payment terms.
    let fee = tlv(0, "01")
        + &tlv(15, "9999")
        + &tlv(52, "5812")
        + &tlv(53, "764")
        + &tlv(55, "02")
        + &tlv(56, "1.235")
        + &tlv(58, "TH")
        + &tlv(59, "A")
        + &tlv(60, "B");
    assert_eq!(
        emv::parse(&with_crc(&fee)).unwrap_err().kind,
        ErrorKind::BadValue
    );
}

#[test]
fn an_alphabetic_currency_code_maps_to_the_currency_and_an_unknown_one_is_refused() {
    let body = |c: &str| {
        tlv(0, "01")
            + &tlv(15, "9999")
            + &tlv(52, "5812")
            + &tlv(53, c)
            + &tlv(54, "1500")
            + &tlv(58, "MM")
            + &tlv(59, "A")
            + &tlv(60, "B")
    };
    let mmk = with_crc(&body("MMK"));
    let qr = emv::parse(&mmk).unwrap();
    assert_eq!(qr.currency().code(), "MMK");
    assert_eq!(
        qr.amount(),
        Some(150_000),
        "MMK has two decimals: 1500 is 150000 minor units"
    );
    let w: Vec<_> = qr.warnings().iter().map(|w| w.code.as_str()).collect();
    assert!(w.contains(&"currency_alpha"), "{w:?}");
    for bad in ["ABC", "mmk", "XAU", "MM"] {
        let e = emv::parse(&with_crc(&body(bad))).unwrap_err();
        assert_eq!(
            (e.kind, e.path.to_string()),
            (ErrorKind::BadValue, "53".to_owned()),
            "{bad}"
        );
    }
    assert!(emv::parse_strict(&with_crc(&body("MMK"))).is_err());
}

#[test]
fn opaque_templates_keep_their_text_and_a_broken_tlv_template_is_refused() {
    // 82: a hex blob (as RHB/Maybank codes carry); 26: an ordinary PayNow template.
    let body = paynow_body("SG") + &tlv(82, "3C10E7B548543BC9");
    let p = with_crc(&body);
    let qr = emv::parse(&p).unwrap();
    assert!(qr.is_opaque(82));
    let t = qr.unreserved().next().unwrap();
    assert!(t.is_opaque() && t.guid().is_none());
    assert_eq!(t.value(), "3C10E7B548543BC9");
    assert!(qr.fields().iter().all(|(p, _)| p.to_string() != "82.3C"));
    let w = qr.warnings().iter().next().unwrap();
    assert_eq!(
        (w.code.as_str(), w.path.to_string()),
        ("opaque_template", "82".to_owned())
    );
    assert_eq!(w.offset, body.find("8216").unwrap() + 4);
    // Round trip, byte for byte.
    assert_eq!(emv::encode(&qr.to_data()).unwrap(), with_crc(&body));
    // Strict: a framing error.
    assert_eq!(
        emv::parse_strict(&with_crc(&body)).unwrap_err().kind,
        ErrorKind::BadLength
    );
    // A template that starts with a well-formed 00 and then breaks is TLV gone wrong: refused.
    let broken = paynow_body("SG") + &tlv(82, "0004ABCD01");
    let e = emv::parse(&with_crc(&broken)).unwrap_err();
    assert_eq!(
        (e.kind, e.path.to_string()),
        (ErrorKind::Truncated, "82".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// The CLI contract

fn qrbridge(args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = common::run_qrbridge(args, stdin.as_bytes());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn decode_json_prints_one_object_per_input_line_in_order() {
    let valid = fixtures("valid");
    let invalid = fixtures("invalid");
    let inputs: Vec<&Fixture> = valid
        .iter()
        .take(5)
        .chain(invalid.iter().filter(|f| f.get("mode").is_none()).take(5))
        .collect();
    let stdin: String = inputs.iter().map(|f| format!("{}\n", f.payload)).collect();
    let (code, out, _) = qrbridge(&["decode", "--json"], &stdin);
    assert_eq!(code, 1, "an invalid input makes the exit status 1");
    let lines: Vec<Json> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), inputs.len());
    for (f, j) in inputs.iter().zip(&lines) {
        let want_valid = f.file.parent().unwrap().ends_with("valid");
        assert_eq!(j["valid"], Json::Bool(want_valid), "{}", name(f));
        for key in ["valid", "profile", "fields", "warnings", "error"] {
            assert!(j.get(key).is_some(), "{}: no {key}", name(f));
        }
        if want_valid {
            assert!(j["error"].is_null());
            // Every root element appears with its raw value, exactly as in the payload.
            let fields = j["fields"].as_object().unwrap();
            let rebuilt: String = fields
                .iter()
                .filter(|(k, _)| !k.contains('.'))
                .map(|(k, v)| {
                    let v = v.as_str().unwrap();
                    format!("{k}{:02}{v}", v.chars().count())
                })
                .collect();
            assert_eq!(rebuilt, f.payload, "{}", name(f));
        } else {
            assert_eq!(
                j["error"]["kind"],
                Json::String(f.get("kind").unwrap().into()),
                "{}",
                name(f)
            );
            assert_eq!(
                j["error"]["path"],
                Json::String(f.get("path").unwrap_or("").into()),
                "{}",
                name(f)
            );
            assert!(j["error"]["offset"].is_u64() && j["error"]["message"].is_string());
        }
    }
}

#[test]
fn decode_exit_status_is_0_when_all_valid_and_2_on_usage_error() {
    let f = &fixtures("valid")[0];
    let (code, out, _) = qrbridge(&["decode", "--json", &f.payload], "");
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
    let (code, _, err) = qrbridge(&["decode", "--no-such-flag"], "");
    assert_eq!(code, 2, "{err}");
}

#[test]
fn decode_strict_refuses_a_profile_deviation_that_default_mode_warns_about() {
    let f = fixtures("invalid")
        .into_iter()
        .find(|f| f.get("mode") == Some("strict"))
        .expect("a strict-only fixture");
    let (code, out, _) = qrbridge(&["decode", "--json", &f.payload], "");
    assert_eq!(code, 0, "{out}");
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    assert!(!j["warnings"].as_array().unwrap().is_empty());
    let (code, out, _) = qrbridge(&["decode", "--json", "--strict", &f.payload], "");
    assert_eq!(code, 1);
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        j["error"]["kind"],
        Json::String(f.get("kind").unwrap().into())
    );
}

#[test]
fn decode_tree_shows_a_caret_under_the_offending_character() {
    let body = paynow_body("SG").replace(&tlv(59, "A"), &tlv(59, "A\tB"));
    let p = with_crc(&body);
    let (code, out, _) = qrbridge(&["decode", &p], "");
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    let caret = lines
        .iter()
        .position(|l| l.trim_end().ends_with('^'))
        .expect("a caret line");
    let col = lines[caret].find('^').unwrap();
    let payload_line = lines[caret - 1];
    assert_eq!(payload_line.chars().nth(col), Some('\t'), "{out}");
}

#[test]
fn encode_reads_decode_output_and_gives_back_each_payload() {
    let valid = fixtures("valid");
    let stdin: String = valid.iter().map(|f| format!("{}\n", f.payload)).collect();
    let (code, decoded, _) = qrbridge(&["decode", "--json"], &stdin);
    assert_eq!(code, 0);
    let (code, encoded, err) = qrbridge(&["encode"], &decoded);
    assert_eq!(code, 0, "{err}");
    for (f, line) in valid.iter().zip(encoded.lines()) {
        assert_eq!(
            line.to_ascii_uppercase(),
            f.payload.to_ascii_uppercase(),
            "{}",
            name(f)
        );
        assert_eq!(
            &line[..line.len() - 4],
            &f.payload[..f.payload.len() - 4],
            "{}",
            name(f)
        );
    }
    assert_eq!(encoded.lines().count(), valid.len());
}

#[test]
fn encode_refuses_fields_that_do_not_make_a_valid_payload() {
    let (code, out, err) = qrbridge(&["encode"], r#"{"00":"01","52":"5812"}"#);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("not valid"), "{err}");
    let (code, _, err) = qrbridge(&["encode"], r#"{"00":"01","62":"0503abc","62.05":"xyz"}"#);
    assert_eq!(code, 1);
    assert!(err.contains("disagrees"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn a_generated_model_survives_encode_then_parse(bytes in proptest::collection::vec(any::<u8>(), 64..2048)) {
        qrbridge::fuzzing::emv_structured(&bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,600}") {
        let _ = emv::parse(&s);
        let _ = emv::parse_strict(&s);
    }

    #[test]
    fn mutated_valid_payloads_never_panic_and_round_trip_when_accepted(
        which in 0usize..1000, at in 0usize..600, ch in proptest::char::any(), op in 0u8..3
    ) {
        let all = fixtures("valid");
        let mut chars: Vec<char> = all[which % all.len()].payload.chars().collect();
        let i = at % (chars.len() + 1);
        match op {
            0 if i < chars.len() => { chars[i] = ch; }
            1 => chars.insert(i, ch),
            _ if i < chars.len() => { chars.remove(i); }
            _ => {}
        }
        let s: String = chars.into_iter().collect();
        qrbridge::fuzzing::emv_parse(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus and crash files replay

#[test]
fn the_fuzz_corpus_and_crash_files_replay_without_failure() {
    let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (target, run) in [
        ("emv_parse", qrbridge::fuzzing::emv_parse as fn(&[u8])),
        ("emv_structured", qrbridge::fuzzing::emv_structured),
    ] {
        for dir in [
            root.join("corpus").join(target),
            root.join("artifacts").join(target),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_file() {
                    run(&std::fs::read(&p).unwrap());
                    replayed += 1;
                }
            }
        }
    }
    assert!(replayed > 0, "no corpus found under {}", root.display());
}

// ---------------------------------------------------------------------------------------------
// The spec and the registry stay in step

#[test]
fn spec_lists_every_registry_scheme_and_every_rule() {
    let spec = std::fs::read_to_string(FsPath::new(env!("CARGO_MANIFEST_DIR")).join("spec/emv.md"))
        .unwrap();
    let start = spec.find("<!-- schemes:start -->").unwrap();
    let end = spec.find("<!-- schemes:end -->").unwrap();
    let table = &spec[start..end];
    let reg = qrbridge::emv::profiles::registry();
    let rows = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| scheme") && !l.starts_with("|---"))
        .count();
    assert_eq!(
        rows,
        reg.schemes().len(),
        "spec/emv.md lists {rows} schemes, the registry has {}",
        reg.schemes().len()
    );
    for s in reg.schemes() {
        assert!(
            table.contains(&format!("| {} | {} |", s.name, s.profile().name)),
            "spec/emv.md does not list {}",
            s.name
        );
    }
    for r in qrbridge::emv::Rule::ALL {
        assert!(
            spec.contains(&format!("`{}`", r.as_str())),
            "spec/emv.md does not describe {}",
            r.as_str()
        );
    }
}

#[test]
fn decode_reports_invalid_utf8_as_bad_char_and_goes_on_with_the_next_line() {
    let good = &fixtures("valid")[0].payload;
    let mut input = b"0002\xff\xfe01\n".to_vec();
    input.extend_from_slice(good.as_bytes());
    input.push(b'\n');
    let out = common::run_qrbridge(&["decode", "--json"], &input);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Json> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["error"]["kind"], "bad_char");
    assert_eq!(lines[0]["error"]["offset"], 4);
    assert_eq!(lines[1]["valid"], true);
}

/// Seals `body` (everything through "6304") with its CRC.
fn sealed(body: &str) -> String {
    let crc = emv::crc::to_hex(emv::crc::checksum(body.as_bytes()));
    format!("{body}{}", String::from_utf8_lossy(&crc))
}

/// The one pass reports what the layered checks reported when a payload breaks several ways at
/// once: a root fault before the CRC, the CRC before a template's fault, a template's fault
/// before any semantic error, and among semantic errors the first in payload order.
#[test]
fn when_a_payload_breaks_several_ways_the_error_keeps_its_precedence() {
    // 29.01 declares 99 characters (runs past its template); 58 is not a country.
    let broken_template = "00020101021129370016A000000677010111019900668123456785204581453037645802XX5913CAFE DE PARIS6007BANGKOK6304";
    let e = emv::parse(&format!("{broken_template}0000")).unwrap_err();
    assert!(
        matches!(e.detail, emv::Detail::CrcMismatch { found: 0, .. }),
        "wrong CRC beats a template fault: {e}"
    );
    let e = emv::parse(&sealed(broken_template)).unwrap_err();
    assert_eq!(
        (e.kind, e.path.to_string()),
        (ErrorKind::Truncated, "29.01".to_string()),
        "a template fault beats a semantic error: {e}"
    );
    // A root fault (61 runs past the end) beats a wrong CRC.
    let e = emv::parse("000201010211520458145303764610").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Truncated, "{e}");
    // Two semantic errors: the first in payload order (53 unknown, then 58 not a country).
    let two = "00020101021129370016A000000677010111011300668123456785204581453039995802XX5913CAFE DE PARIS6007BANGKOK6304";
    let e = emv::parse(&sealed(two)).unwrap_err();
    assert_eq!(
        (e.kind, e.path.to_string()),
        (ErrorKind::BadValue, "53".to_string()),
        "{e}"
    );
    // The same payload with a valid 53: 58 is reported.
    let one = two.replace("5303999", "5303764");
    let e = emv::parse(&sealed(&one)).unwrap_err();
    assert_eq!(e.path.to_string(), "58", "{e}");
    // Strict mode: a deviation held back is reported after the CRC check, not before.
    let long_city = "00020101021129370016A000000677010111011300668123456785204581453037645802TH5913CAFE DE PARIS6020BANGKOK METROPOLITAN6304";
    assert!(emv::parse(&sealed(long_city)).is_ok());
    let e = MerchantQr::parse(&format!("{long_city}0000"), Mode::Strict).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Crc, "{e}");
    let e = MerchantQr::parse(&sealed(long_city), Mode::Strict).unwrap_err();
    assert_eq!(
        (e.kind, e.path.to_string()),
        (ErrorKind::TooLong, "60".to_string()),
        "{e}"
    );
}
