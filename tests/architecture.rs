//! The rooms' dependency arrows (DESIGN §2, `src/lib.rs`): every `crate::<room>` a room's code
//! names must be an arrow this table allows, and the table itself has no cycle. A new arrow is a
//! design decision: add it here, in `src/lib.rs`'s layout and in the room's `//!` header together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Leaves: they import no room.
const LEAVES: &[&str] = &["money", "time", "tls", "telemetry"];

/// Room → the rooms it may import. Leaves are listed explicitly where a room uses them.
const ALLOWED: &[(&str, &[&str])] = &[
    ("money", &[]),
    ("time", &[]),
    ("tls", &[]),
    // Logging set-up, request ids and the metrics registry: every room may log and count.
    ("telemetry", &[]),
    // The outbound HTTP client: on the TLS leaf only.
    ("http_client", &["tls"]),
    ("emv", &["money"]),
    ("fx", &["money", "time", "http_client"]),
    // The seam: leaves only.
    ("payment", &["money", "time", "tls", "emv", "fx"]),
    ("acquirer", &["money", "time", "tls"]),
    (
        "journal",
        &["payment", "acquirer", "fx", "money", "time", "telemetry"],
    ),
    // Schemes translate wallet messages to canonical operations: never server, gateway, journal.
    (
        "scheme",
        &[
            "payment",
            "money",
            "time",
            "tls",
            "fx",
            "emv",
            "telemetry",
            "http_client",
        ],
    ),
    (
        "notify",
        &[
            "journal",
            "scheme",
            "payment",
            "money",
            "time",
            "tls",
            "telemetry",
            "http_client",
        ],
    ),
    (
        "gateway",
        &[
            "payment",
            "journal",
            "acquirer",
            "emv",
            "fx",
            "money",
            "time",
            "tls",
            "telemetry",
        ],
    ),
    // Transport only: never gateway or journal.
    (
        "server",
        &["payment", "scheme", "money", "time", "tls", "telemetry"],
    ),
];

/// Arrows that break the layout today and are being removed (each names what removes it). Empty
/// is the goal; a wrong arrow not listed here fails.
const BEING_REMOVED: &[(&str, &str)] = &[];

/// Wiring at the top may use every room: the command line, the configuration, the fuzz entry points.
const WIRING: &[&str] = &["cli", "config", "fuzzing", "main", "lib"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The rooms named as `crate::<room>` in code (comments skipped).
fn imports_of(files: &[std::path::PathBuf]) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                let after = &rest[at + "crate::".len()..];
                let room: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !room.is_empty() {
                    found
                        .entry(room)
                        .or_default()
                        .push(format!("{}:{}", file.display(), n + 1));
                }
                rest = after;
            }
        }
    }
    found
}

#[test]
fn every_room_imports_only_what_the_layout_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(room, to)| (*room, to.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    let mut rooms_seen = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("src/ readable") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if WIRING.contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.clone());
        } else {
            continue;
        }
        rooms_seen.insert(name.clone());
        let Some(may) = allowed.get(name.as_str()) else {
            wrong.push(format!(
                "src/{name}: a room the table does not know; add it to ALLOWED"
            ));
            continue;
        };
        for (to, places) in imports_of(&files) {
            let test_only = places.iter().all(|p| p.contains("tests"));
            if to == name || (to == "fuzzing" && test_only) {
                continue;
            }
            if !may.contains(to.as_str()) && !BEING_REMOVED.contains(&(name.as_str(), to.as_str()))
            {
                wrong.push(format!(
                    "{name} -> {to} is not an allowed arrow (at {})",
                    places.join(", ")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong arrows:\n{}", wrong.join("\n"));
    // The table names only rooms that exist.
    for (room, _) in ALLOWED {
        assert!(
            rooms_seen.contains(*room),
            "ALLOWED names src/{room}, which does not exist"
        );
    }
}

#[test]
fn the_allowed_arrows_have_no_cycle_and_leaves_import_nothing() {
    let graph: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for leaf in LEAVES {
        assert_eq!(
            graph.get(leaf).map(|t| t.len()),
            Some(0),
            "{leaf} is a leaf"
        );
    }
    // Depth-first search for a back edge.
    fn visit<'a>(
        room: &'a str,
        graph: &BTreeMap<&'a str, &'a [&'a str]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(room) {
            return;
        }
        assert!(
            !path.contains(&room),
            "cycle: {} -> {room}",
            path.join(" -> ")
        );
        path.push(room);
        for to in graph.get(room).copied().unwrap_or(&[]) {
            visit(to, graph, path, done);
        }
        path.pop();
        done.insert(room);
    }
    let mut done = BTreeSet::new();
    for room in graph.keys() {
        visit(room, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_checker_sees_a_wrong_arrow() {
    // The scanner itself must find `crate::gateway` in code and skip it in comments.
    let dir = std::env::temp_dir().join(format!("qrbridge-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("x.rs");
    std::fs::write(
        &file,
        "// crate::journal in a comment\nuse crate::gateway::Gateway; // crate::server\n",
    )
    .expect("write");
    let found = imports_of(&[file]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.keys().collect::<Vec<_>>(), vec!["gateway"]);
}
