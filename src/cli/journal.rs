//! `qrbridge journal migrate --config FILE`: applies the PostgreSQL journal's schema migrations
//! shipped in this binary (spec/journal.md §11). Safe to run from several hosts at once (an
//! advisory lock serialises them) and again (an applied migration is skipped).
//!
//! Exit codes: 0 done (or nothing to do), 1 the database refused or could not be reached,
//! 2 bad configuration (not `engine = "postgres"`, no url, password source missing).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use qrbridge::config::Config;
use qrbridge::journal::postgres;

/// `qrbridge journal …`.
#[derive(Subcommand)]
pub enum JournalCommand {
    /// Apply the schema migrations this build ships to the `[journal]` PostgreSQL database.
    Migrate {
        /// The gateway's configuration file (its `[journal]` section: engine = "postgres").
        #[arg(long)]
        config: PathBuf,
    },
}

pub fn run(cmd: JournalCommand) -> ExitCode {
    match cmd {
        JournalCommand::Migrate { config } => migrate(&config),
    }
}

fn migrate(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let pg = match config.postgres() {
        Ok(Some(pg)) => pg,
        Ok(None) => {
            eprintln!(
                "error: {}: [journal] engine is not \"postgres\"; the redb journal needs no migration",
                path.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match postgres::migrate(&pg) {
        Ok(applied) if applied.is_empty() => {
            println!("journal {}: schema up to date", pg.redacted());
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            println!("journal {}: applied migrations {applied:?}", pg.redacted());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: journal {}: {e}", pg.redacted());
            ExitCode::from(1)
        }
    }
}
