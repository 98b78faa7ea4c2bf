//! Parse benchmarks over fixtures chosen from `testdata/emv/valid`: an all-ASCII code of about 150
//! characters, the longest SGQR code (several merchant templates), and a code with non-ASCII
//! characters (Thai/Chinese/Khmer names); plus the CRC alone over the ASCII code, the floor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use qrbridge::emv;

fn payloads() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/emv/valid");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .filter_map(|t| {
            t.lines()
                .find(|l| !l.starts_with('#') && !l.is_empty())
                .map(str::to_owned)
        })
        .collect();
    out.sort();
    out
}

/// (name, payload) for each benchmark case.
pub fn cases() -> Vec<(&'static str, String)> {
    let all = payloads();
    let ascii = all
        .iter()
        .filter(|p| p.is_ascii())
        .min_by_key(|p| p.len().abs_diff(150))
        .cloned()
        .unwrap();
    let sgqr = all
        .iter()
        .filter(|p| emv::parse(p).is_ok_and(|q| q.profile().is_some_and(|pr| pr.name == "SGQR")))
        .max_by_key(|p| emv::parse(p).map(|q| q.accounts().count()).unwrap_or(0) * 1000 + p.len())
        .cloned()
        .unwrap();
    let unicode = all
        .iter()
        .filter(|p| !p.is_ascii())
        .max_by_key(|p| p.len() - p.chars().count())
        .cloned()
        .unwrap();
    vec![("ascii", ascii), ("sgqr", sgqr), ("unicode", unicode)]
}

/// Every all-ASCII code of the real-world corpus (`testdata/emv/real`), accepted or refused: the
/// same inputs for any parser version, so old and new can be compared on them side by side.
pub fn real_ascii() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/emv/real");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty() && l.is_ascii())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// With `QRBRIDGE_CALLGRIND=N` set, parse each case N times and exit instead of benchmarking: run
/// under `valgrind --tool=callgrind` with N and with 0, the difference / N is instructions per parse,
/// a figure that does not depend on how busy the machine is.
fn callgrind_loop(cases: &[(&'static str, String)]) -> bool {
    let Some(n) = std::env::var("QRBRIDGE_CALLGRIND")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return false;
    };
    let which = std::env::var("QRBRIDGE_CASE").unwrap_or_else(|_| "ascii".into());
    // "real" / "crc-real": every ASCII corpus code once per round; instructions per code are the
    // difference / N / the number of codes (scripts/emv-instructions divides).
    if which == "real" || which == "crc-real" {
        let real = real_ascii();
        for _ in 0..n {
            for p in &real {
                if which == "real" {
                    let _ = black_box(emv::parse(black_box(p)).map(|q| q.amount()));
                } else if let Some(body) = p.as_bytes().get(..p.len().saturating_sub(4)) {
                    black_box(emv::crc::checksum(black_box(body)));
                }
            }
        }
        return true;
    }
    for (name, p) in cases {
        let (tok, tokall) = (format!("tok-{name}"), format!("tokall-{name}"));
        let through_6304 = &p.as_bytes()[..p.len() - 4];
        for _ in 0..n {
            match which.strip_prefix("crc-") {
                Some(c) if c == *name => {
                    black_box(emv::crc::checksum(black_box(through_6304)));
                }
                _ if which == tok => {
                    black_box(emv::tlv::Tokens::new(black_box(p), 0, true).count());
                }
                _ if which == tokall => {
                    let mut n = 0;
                    for e in emv::tlv::Tokens::new(black_box(p), 0, true).flatten() {
                        if emv::ids::is_root_template(e.id) {
                            n += emv::tlv::Tokens::new(e.value, e.value_at(), true).count();
                        }
                    }
                    black_box(n);
                }
                _ if which == *name => {
                    let _ = black_box(emv::parse(black_box(p)).map(|q| q.amount()));
                }
                _ => {}
            }
        }
    }
    true
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    if callgrind_loop(&cases) {
        return;
    }
    let mut g = c.benchmark_group("emv");
    for (name, p) in &cases {
        eprintln!(
            "{name}: {} characters, {} bytes: {p}",
            p.chars().count(),
            p.len()
        );
        assert!(emv::parse(p).is_ok());
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| emv::parse(black_box(p)).map(|q| q.amount()))
        });
    }
    let (_, ascii) = &cases[0];
    let through_6304 = &ascii.as_bytes()[..ascii.len() - 4];
    g.bench_function("crc_only/ascii", |b| {
        b.iter(|| emv::crc::checksum(black_box(through_6304)))
    });
    g.bench_function("parse_strict/ascii", |b| {
        b.iter(|| emv::parse_strict(black_box(ascii)).is_ok())
    });
    // The real-world corpus: all its ASCII codes (accepted or refused) per iteration; divide by
    // their number for the time per code.
    let real = real_ascii();
    eprintln!("real: {} ASCII corpus codes per iteration", real.len());
    g.bench_function("parse/real_corpus", |b| {
        b.iter(|| {
            for p in &real {
                let _ = black_box(emv::parse(black_box(p)).map(|q| q.amount()));
            }
        })
    });
    g.bench_function("crc_only/real_corpus", |b| {
        b.iter(|| {
            for p in &real {
                black_box(emv::crc::checksum(black_box(
                    &p.as_bytes()[..p.len().saturating_sub(4)],
                )));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
