//! The `qrbridge` command line: see `qrbridge --help`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
