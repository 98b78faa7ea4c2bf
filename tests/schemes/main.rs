//! The same test battery for every wallet scheme, over real sockets: each scheme's driver pays an
//! SGQR code through the gateway (acquirer simulator over mutual TLS, redb journal) exactly as a
//! wallet speaking that scheme would, and the battery checks what the wallet sees against what the
//! simulator's ledger recorded. `harness.rs` is the environment and the battery; each other file is
//! one scheme's driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aplus;
#[path = "../common/child.rs"]
mod child;
#[path = "../common/openapi.rs"]
mod openapi;
#[path = "../common/stack.rs"]
mod stack;

mod harness;
mod iso20022;
mod iso20022_sim;
mod native;
mod xsd;

/// Adding a scheme is one folder plus one registry line — and, for every registered scheme, the
/// rest of the checklist of `spec/schemes/README.md`: this keeps the registry, the scheme folders,
/// the specs, the battery drivers and the fuzz targets in step.
#[test]
fn every_registered_scheme_has_its_folder_spec_driver_and_fuzz_target() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("spec/schemes/README.md")).unwrap();
    let main = std::fs::read_to_string(root.join("tests/schemes/main.rs")).unwrap();
    let fuzz = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let mut names: Vec<&str> = qrbridge::scheme::REGISTRY.iter().map(|e| e.name).collect();
    names.push(qrbridge::scheme::native::NAME);
    for name in &names {
        let dir = root.join("src/scheme").join(name);
        for file in ["mod.rs", "transformers.rs"] {
            assert!(dir.join(file).is_file(), "src/scheme/{name}/{file} missing");
        }
        assert!(
            root.join(format!("spec/schemes/{name}.md")).is_file(),
            "spec/schemes/{name}.md missing"
        );
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "spec/schemes/README.md does not list {name}"
        );
        let driver = root.join(format!("tests/schemes/{name}.rs"));
        let text = std::fs::read_to_string(&driver)
            .unwrap_or_else(|e| panic!("{}: {e}", driver.display()));
        // aplus (Alipay+ MPP) has no wallet-initiated pay / inquiry / cancel / refund: it runs its
        // own suite over the same stack (tests/schemes/aplus.rs), refusals included.
        assert!(
            text.contains("crate::battery!(")
                || (*name == "aplus" && text.contains("async fn refusals_")),
            "{name}: its driver does not run the battery"
        );
        assert!(
            main.contains(&format!("mod {name};")),
            "{name}: driver not in main.rs"
        );
        assert!(
            fuzz.contains(&format!("name = \"{name}_")),
            "{name}: no fuzz target named {name}_* in fuzz/Cargo.toml"
        );
    }
    // And no scheme folder that the registry does not know.
    for entry in std::fs::read_dir(root.join("src/scheme")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let folder = entry.file_name().into_string().unwrap();
            assert!(
                names.contains(&folder.as_str()),
                "src/scheme/{folder} is not in scheme::REGISTRY"
            );
        }
    }
}
