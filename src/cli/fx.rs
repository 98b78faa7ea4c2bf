//! `qrbridge fx ...`: FX tools for operators and support staff.
//!
//! `qrbridge fx quote --rates FILE --amount 350.00 --from THB --to JPY [--markup-bps N] [--json]`
//! prices an amount of the merchant currency (`--from`, major units) in the payer currency (`--to`)
//! exactly as the gateway does, from an ECB-format XML feed or a static table (`.toml`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use qrbridge::fx::{
    CacheConfig, EcbFile, FxError, Pricing, QuotePolicy, Quoter, RateCache, StaticSource,
    display_rate,
};
use qrbridge::money::{Amount, Currency, Rounding};
use qrbridge::time::{SystemClock, format_rfc3339};

/// `qrbridge fx`.
#[derive(Args)]
pub struct FxArgs {
    #[command(subcommand)]
    command: FxCommand,
}

#[derive(Subcommand)]
enum FxCommand {
    /// Price an amount in the payer's currency from a rates file.
    Quote(QuoteArgs),
}

#[derive(Args)]
struct QuoteArgs {
    /// Rates: an ECB-format XML feed (eurofxref-daily.xml shape) or a static table (*.toml).
    #[arg(long, value_name = "FILE")]
    rates: PathBuf,
    /// Amount in the merchant currency, in major units (e.g. 350.00).
    #[arg(long, allow_hyphen_values = true)]
    amount: String,
    /// Merchant currency, ISO 4217 alpha-3 (e.g. THB).
    #[arg(long, value_name = "CURRENCY")]
    from: String,
    /// Payer currency, ISO 4217 alpha-3 (e.g. JPY).
    #[arg(long, value_name = "CURRENCY")]
    to: String,
    /// Markup over the mid rate in basis points (100 bps = 1 %); the payer pays more.
    #[arg(
        long,
        default_value = "0",
        value_name = "N",
        allow_hyphen_values = true
    )]
    markup_bps: String,
    /// Rounding of the payer amount: half-up, half-even, down or up.
    #[arg(long, default_value = "half-up", value_name = "RULE")]
    rounding: String,
    /// Refuse rates whose as-of date is older than this many days (default: quote the file as it is).
    #[arg(long, value_name = "DAYS", allow_hyphen_values = true)]
    max_age_days: Option<String>,
    /// Print the quote as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `qrbridge fx ...` and returns the exit code: 0, or 1 with a message on stderr.
pub fn run(args: FxArgs) -> ExitCode {
    let result = match args.command {
        FxCommand::Quote(quote) => run_quote(&quote),
    };
    match result {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn currency(code: &str, flag: &str) -> Result<Currency, String> {
    Currency::from_code(&code.to_ascii_uppercase()).map_err(|e| format!("{flag}: {e}"))
}

/// Parses a flag that takes a whole number, so a bad value is our error (exit 1), not a usage error.
fn whole_number<T: std::str::FromStr>(text: &str, flag: &str, unit: &str) -> Result<T, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(value) = text.parse() {
            return Ok(value);
        }
        return Err(format!("{flag}: {text} {unit} is out of range"));
    }
    Err(format!("{flag}: {text:?} is not a whole number of {unit}"))
}

fn rates(path: &Path, max_age: Duration) -> Result<RateCache, String> {
    let config = CacheConfig {
        max_age,
        ..CacheConfig::daily_feed()
    };
    let clock = Arc::new(SystemClock);
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if is_toml {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--rates {}: {e}", path.display()))?;
        let name = format!("static:{}", path.display());
        let source = StaticSource::from_toml(&text, &name).map_err(|e| e.to_string())?;
        Ok(RateCache::new(source, clock, config))
    } else {
        Ok(RateCache::new(EcbFile::new(path), clock, config))
    }
}

fn run_quote(args: &QuoteArgs) -> Result<String, String> {
    let from = currency(&args.from, "--from")?;
    let to = currency(&args.to, "--to")?;
    let rounding: Rounding = args
        .rounding
        .parse()
        .map_err(|e| format!("--rounding: {e}"))?;
    let amount = Amount::parse(&args.amount, from).map_err(|e| format!("--amount: {e}"))?;
    let markup_bps: u32 = whole_number(&args.markup_bps, "--markup-bps", "basis points")?;
    let max_age = match &args.max_age_days {
        None => Duration::MAX,
        Some(days) => {
            let days: u64 = whole_number(days, "--max-age-days", "days")?;
            Duration::from_secs(days.saturating_mul(86_400))
        }
    };
    let policy = QuotePolicy {
        rounding,
        ..QuotePolicy::default()
    };
    let quoter = Quoter::new(rates(&args.rates, max_age)?, policy, Arc::new(SystemClock));
    let quote = quoter
        .quote(amount, to, Pricing::markup(markup_bps))
        .map_err(|e: FxError| e.to_string())?;
    let as_of = format_rfc3339(quote.rate_as_of);
    if args.json {
        let json = serde_json::json!({
            "merchant_amount": {
                "currency": quote.merchant_amount.currency().code(),
                "value": quote.merchant_amount.minor().to_string(),
            },
            "payer_amount": {
                "currency": quote.payer_amount.currency().code(),
                "value": quote.payer_amount.minor().to_string(),
            },
            "mid_rate": display_rate(quote.mid_rate).to_string(),
            "rate": display_rate(quote.rate).to_string(),
            "effective_rate": display_rate(quote.effective_rate).to_string(),
            "markup_bps": quote.markup_bps,
            "rate_as_of": as_of,
        });
        return Ok(json.to_string());
    }
    let per = format!("{} per {}", to.code(), from.code());
    Ok(format!(
        "{merchant} = {payer}\n\
         mid rate        {mid} {per}\n\
         rate            {rate} {per} (markup {bps} bps)\n\
         effective rate  {eff} {per}\n\
         unrounded       {unrounded} {to} (rounded {rounding})\n\
         rates as of     {as_of} ({source})",
        merchant = quote.merchant_amount,
        payer = quote.payer_amount,
        mid = display_rate(quote.mid_rate),
        rate = display_rate(quote.rate),
        bps = quote.markup_bps,
        eff = display_rate(quote.effective_rate),
        unrounded = quote.payer_amount_unrounded,
        rounding = quote.rounding,
        source = quote.rate_source,
    ))
}
