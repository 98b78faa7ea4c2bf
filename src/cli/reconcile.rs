//! `qrbridge reconcile --journal PATH --settlement PATH [--json | --csv]`: the acquirer's end-of-day
//! settlement file against the journal (spec/settlement.md). Exit 0: no breaks; 1: breaks; 2: bad
//! input (a file missing or damaged, a journal held by a running gateway).

use std::path::PathBuf;
use std::process::ExitCode;

use qrbridge::acquirer::settlement::Settlement;
use qrbridge::gateway::reconcile;
use qrbridge::journal::{JournalConfig, RedbJournal};

#[derive(clap::Args)]
pub struct Args {
    /// The journal (redb file) of the gateway; stop the gateway first, or use a copy.
    #[arg(long)]
    journal: PathBuf,
    /// The acquirer's settlement file (QRBSETTLE CSV).
    #[arg(long)]
    settlement: PathBuf,
    /// Print the report as JSON instead of a table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the breaks as CSV (RFC 4180), one per line, instead of a table.
    #[arg(long)]
    csv: bool,
}

pub fn run(args: Args) -> ExitCode {
    match report(&args) {
        Ok(r) => {
            if args.json {
                match serde_json::to_string_pretty(&r) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("error: the report does not serialise: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else if args.csv {
                print!("{}", reconcile::csv(&r));
            } else {
                print!("{}", reconcile::table(&r));
            }
            if r.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn report(args: &Args) -> Result<reconcile::Report, String> {
    let text = std::fs::read_to_string(&args.settlement)
        .map_err(|e| format!("{}: {e}", args.settlement.display()))?;
    let file =
        Settlement::parse(&text).map_err(|e| format!("{}: {e}", args.settlement.display()))?;
    if !args.journal.is_file() {
        return Err(format!("{}: no such journal file", args.journal.display()));
    }
    let journal = RedbJournal::open(JournalConfig::new(args.journal.clone())).map_err(|e| {
        format!(
            "{}: {e} (a running gateway holds the file: stop it first, or use a copy)",
            args.journal.display()
        )
    })?;
    let snap = journal
        .snapshot()
        .map_err(|e| format!("{}: {e}", args.journal.display()))?;
    let payments = snap
        .payments()
        .map_err(|e| format!("{}: {e}", args.journal.display()))?;
    let refunds = snap
        .refunds()
        .map_err(|e| format!("{}: {e}", args.journal.display()))?;
    Ok(reconcile::reconcile(&payments, &refunds, &file))
}
