//! The routing table: which merchant-account template of a QR code a configured acquirer can take,
//! and where in it the merchant id and terminal id are.
//!
//! A rule matches a template by its GUID/AID (sub-ID 00, case-insensitive) or a primitive
//! merchant-account ID (02–25). With several merchant accounts in one code, the matching rule with
//! the lowest `priority` wins among those whose merchant-id sub-ID is present (ties: the account
//! first in the payload). No rule → MERCHANT_NOT_ROUTABLE.

use crate::emv::MerchantQr;

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// GUID / AID in sub-ID 00 of a template 26–51 (compared case-insensitively).
    Guid(String),
    /// A root primitive merchant-account ID (02–25): its whole value is the merchant id.
    Primitive(u8),
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// What it matches.
    pub matcher: Matcher,
    /// The acquirer link's name.
    pub acquirer: String,
    /// Sub-ID carrying the merchant id (ignored for primitives).
    pub merchant_id_sub: u8,
    /// Sub-ID carrying the terminal id, if the scheme has one.
    pub terminal_id_sub: Option<u8>,
    /// Lower wins.
    pub priority: u32,
}

/// The template a payment is routed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Acquirer link name.
    pub acquirer: String,
    /// Merchant id at the acquirer.
    pub merchant_id: String,
    /// Terminal id, when the template carries one.
    pub terminal_id: Option<String>,
    /// The scheme's name (registry) or, failing that, the GUID / `ID nn`.
    pub scheme: String,
    /// The GUID / AID or `ID nn` the rule matched.
    pub matched: String,
}

/// Picks the route for `qr`, or says why there is none.
pub fn route(rules: &[RouteRule], qr: &MerchantQr<'_>) -> Result<Routed, String> {
    let mut best: Option<(u32, Routed)> = None;
    let mut seen = Vec::new();
    for account in qr.accounts() {
        let guid = if account.is_template() {
            account.guid()
        } else {
            None
        };
        let label = guid.map_or_else(|| format!("ID {:02}", account.id()), str::to_owned);
        seen.push(label.clone());
        for rule in rules {
            let merchant_id = match &rule.matcher {
                Matcher::Guid(g) if guid.is_some_and(|x| x.eq_ignore_ascii_case(g)) => {
                    account.sub(rule.merchant_id_sub)
                }
                Matcher::Primitive(id) if !account.is_template() && account.id() == *id => {
                    Some(account.value())
                }
                _ => continue,
            };
            let Some(merchant_id) = merchant_id.filter(|m| !m.is_empty()) else {
                continue;
            };
            if best.as_ref().is_some_and(|(p, _)| *p <= rule.priority) {
                continue;
            }
            let terminal_id = rule
                .terminal_id_sub
                .and_then(|t| account.sub(t))
                .map(str::to_owned);
            let scheme = account
                .scheme()
                .map_or_else(|| label.clone(), |s| s.name.clone());
            best = Some((
                rule.priority,
                Routed {
                    acquirer: rule.acquirer.clone(),
                    merchant_id: merchant_id.to_owned(),
                    terminal_id,
                    scheme,
                    matched: label.clone(),
                },
            ));
        }
    }
    best.map(|(_, r)| r).ok_or_else(|| {
        if seen.is_empty() {
            "the code carries no merchant account".to_owned()
        } else {
            format!(
                "no configured route for its merchant accounts ({})",
                seen.join(", ")
            )
        }
    })
}
