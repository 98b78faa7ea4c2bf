//! Build script: records the git commit the binary is built from, for `qrbridge --version`
//! (`QRBRIDGE_GIT_COMMIT`; `unknown` outside a git checkout, e.g. a source tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = std::env::var("QRBRIDGE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=QRBRIDGE_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=QRBRIDGE_GIT_COMMIT");
    // A new commit or checkout moves HEAD and appends to its reflog: build again then.
    for path in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
