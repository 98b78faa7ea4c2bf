//! The `qrbridge` command line: see `qrbridge --help`.

mod cli;

use std::process::ExitCode;

/// The process's allocator: mimalloc (issue 16: malloc and free were the largest single cost of a
/// decode with the system allocator; see docs/performance.md). The library does not choose one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::run()
}
