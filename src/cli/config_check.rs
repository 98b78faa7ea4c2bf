//! `qrbridge config check FILE`: validates a configuration without starting anything. Exit 0
//! when valid (one line on stdout); 2 with every problem on stderr, one per line, each naming its
//! key path (and its line in the file when known).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use qrbridge::config::{Config, ConfigError, line_of};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE: every problem, one per line on stderr (exit 2), or exit 0.
    Check {
        /// The configuration file (TOML, as `qrbridge serve --config` takes it).
        file: PathBuf,
    },
}

pub fn run(cmd: ConfigCommand) -> ExitCode {
    let ConfigCommand::Check { file } = cmd;
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    // Problems found after parsing get their line here.
    let located = |e: &ConfigError| match e {
        ConfigError::Invalid {
            key,
            reason,
            line: None,
        } => ConfigError::Invalid {
            key: key.clone(),
            reason: reason.clone(),
            line: line_of(&text, key),
        }
        .to_string(),
        other => other.to_string(),
    };
    let problems: Vec<String> = match Config::load(&file) {
        Ok(config) => config.check_environment().iter().map(located).collect(),
        Err(e) => e.all().into_iter().map(located).collect(),
    };
    if problems.is_empty() {
        println!("{}: valid", file.display());
        return ExitCode::SUCCESS;
    }
    for p in &problems {
        eprintln!("{}: {p}", file.display());
    }
    eprintln!("{} problem(s) in {}", problems.len(), file.display());
    ExitCode::from(2)
}
