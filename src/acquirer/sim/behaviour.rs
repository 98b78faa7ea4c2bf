//! What the simulator does with a 0200: chosen by merchant id (DE42), else by amount (DE4), else the
//! default. Configured in TOML, e.g.
//!
//! ```toml
//! default = { kind = "approve" }
//! late_ms = 3000
//! drop_reversals = 0
//! late_reversals = 0
//! [by_amount]
//! "5100" = { kind = "decline", code = "51" }
//! "7777" = { kind = "never_answer" }
//! [by_merchant]
//! "SLOWSHOP" = { kind = "delay", ms = 800 }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::acquirer::frame::Framing;

/// One behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Behaviour {
    /// 0210 with DE39 = 00 and an authorisation code.
    Approve,
    /// 0210 with DE39 = `code`.
    Decline {
        /// Response code, e.g. `"51"`.
        code: String,
    },
    /// Approve after `ms` milliseconds.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Record the request, never answer.
    NeverAnswer,
    /// Approve after `late_ms` (meant to be past the client's deadline).
    AnswerLate,
    /// Close the connection instead of answering.
    Close,
    /// Answer with a frame that is not an ISO 8583 message.
    Garbage,
}

/// A simulator configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SimConfigError {
    /// Not valid TOML or unknown keys.
    #[error("simulator config: {0}")]
    Toml(#[from] toml::de::Error),
    /// A decline code that is not two letters or digits.
    #[error("simulator config: decline code {0:?} must be two letters or digits")]
    BadCode(String),
    /// A `by_amount` key that is not an integer amount in minor units.
    #[error("simulator config: by_amount key {0:?} must be an integer amount in minor units")]
    BadAmount(String),
}

/// Simulator configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Length framing.
    #[serde(default)]
    pub framing: Framing,
    /// Behaviour when no trigger matches.
    #[serde(default = "approve")]
    pub default: Behaviour,
    /// Triggers by DE4 (minor units, as an integer string).
    #[serde(default)]
    pub by_amount: BTreeMap<String, Behaviour>,
    /// Triggers by DE42 (merchant id, trailing spaces ignored).
    #[serde(default)]
    pub by_merchant: BTreeMap<String, Behaviour>,
    /// Delay of `answer_late`, in milliseconds.
    #[serde(default = "late_ms")]
    pub late_ms: u64,
    /// Ignore this many reversal messages (0400/0401) before answering them.
    #[serde(default)]
    pub drop_reversals: u32,
    /// Answer this many reversal messages (after the dropped ones) `late_ms` late instead of at
    /// once: past the client's wait, so it repeats the reversal and both 0410s come back.
    #[serde(default)]
    pub late_reversals: u32,
    /// Spread answers over 0..jitter_ms (derived from the STAN), so they come back out of order.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Refund advices the simulator originates by itself (none by default).
    #[serde(default)]
    pub refunds: super::RefundPolicy,
}

fn approve() -> Behaviour {
    Behaviour::Approve
}

fn late_ms() -> u64 {
    3_000
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            framing: Framing::Binary2,
            default: Behaviour::Approve,
            by_amount: BTreeMap::new(),
            by_merchant: BTreeMap::new(),
            late_ms: late_ms(),
            drop_reversals: 0,
            late_reversals: 0,
            jitter_ms: 0,
            refunds: super::RefundPolicy::default(),
        }
    }
}

impl SimConfig {
    /// Parses the TOML form and checks it (decline codes must be two letters or digits).
    pub fn from_toml(text: &str) -> Result<Self, SimConfigError> {
        let config: SimConfig = toml::from_str(text)?;
        let all = std::iter::once(&config.default)
            .chain(config.by_amount.values())
            .chain(config.by_merchant.values());
        for b in all {
            if let Behaviour::Decline { code } = b
                && (code.len() != 2 || !code.bytes().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(SimConfigError::BadCode(code.clone()));
            }
        }
        if let Some(k) = config.by_amount.keys().find(|k| k.parse::<u64>().is_err()) {
            return Err(SimConfigError::BadAmount(k.clone()));
        }
        Ok(config)
    }

    /// The behaviour for a 0200 with amount `de4` (12 digits) and merchant `de42`.
    pub fn behaviour_for(&self, de4: Option<&str>, de42: Option<&str>) -> &Behaviour {
        if let Some(b) = de42.and_then(|m| self.by_merchant.get(m.trim_end())) {
            return b;
        }
        let amount = de4
            .and_then(|a| a.parse::<u64>().ok())
            .map(|a| a.to_string());
        if let Some(b) = amount.and_then(|a| self.by_amount.get(&a)) {
            return b;
        }
        &self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_trigger_wins_over_amount_trigger() {
        let c = SimConfig::from_toml(
            r#"
            default = { kind = "approve" }
            [by_amount]
            "5100" = { kind = "decline", code = "51" }
            [by_merchant]
            "SLOW" = { kind = "delay", ms = 5 }
            "#,
        )
        .unwrap();
        assert_eq!(
            c.behaviour_for(Some("000000005100"), Some("OTHER          ")),
            &Behaviour::Decline { code: "51".into() }
        );
        assert_eq!(
            c.behaviour_for(Some("000000005100"), Some("SLOW           ")),
            &Behaviour::Delay { ms: 5 }
        );
        assert_eq!(
            c.behaviour_for(Some("000000000001"), None),
            &Behaviour::Approve
        );
    }

    #[test]
    fn unknown_keys_bad_codes_and_bad_amounts_are_refused() {
        assert!(SimConfig::from_toml("defualt = { kind = \"approve\" }").is_err());
        assert!(matches!(
            SimConfig::from_toml("default = { kind = \"decline\", code = \"5\" }"),
            Err(SimConfigError::BadCode(_))
        ));
        assert!(matches!(
            SimConfig::from_toml("[by_amount]\n\"12.50\" = { kind = \"approve\" }"),
            Err(SimConfigError::BadAmount(_))
        ));
    }
}
