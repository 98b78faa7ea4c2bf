//! The same test battery for every wallet scheme, over real sockets: each scheme's driver pays an
//! SGQR code through the gateway (acquirer simulator over mutual TLS, redb journal) exactly as a
//! wallet speaking that scheme would, and the battery checks what the wallet sees against what the
//! simulator's ledger recorded. `harness.rs` is the environment and the battery; each other file is
//! one scheme's driver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod native;
