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

/// How an account is named in a refusal and in `Routed::matched`: its GUID / AID, or `ID nn`.
fn label(account: &crate::emv::MerchantAccount<'_>) -> String {
    let guid = if account.is_template() {
        account.guid()
    } else {
        None
    };
    match guid {
        Some(g) => g.to_owned(),
        None if account.is_opaque() => format!("ID {:02} (content not TLV)", account.id()),
        None => id_label(account.id()),
    }
}

/// `ID nn`, the two digits written by hand (`format!` was a sixtieth of a decode's instructions).
fn id_label(id: u8) -> String {
    if id > 99 {
        return format!("ID {id:02}");
    }
    let mut s = String::with_capacity(5);
    s.push_str("ID ");
    s.push(char::from(b'0' + id / 10));
    s.push(char::from(b'0' + id % 10));
    s
}

/// Picks the route for `qr`, or says why there is none.
pub fn route(rules: &[RouteRule], qr: &MerchantQr<'_>) -> Result<Routed, String> {
    let mut best: Option<(u32, Routed)> = None;
    for account in qr.accounts() {
        let guid = if account.is_template() {
            account.guid()
        } else {
            None
        };
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
            let matched = label(&account);
            let scheme = account
                .scheme()
                .map_or_else(|| matched.clone(), |s| s.name.clone());
            best = Some((
                rule.priority,
                Routed {
                    acquirer: rule.acquirer.clone(),
                    merchant_id: merchant_id.to_owned(),
                    terminal_id,
                    scheme,
                    matched,
                },
            ));
        }
    }
    best.map(|(_, r)| r).ok_or_else(|| {
        // Only a refusal names every account seen.
        let seen: Vec<String> = qr.accounts().map(|a| label(&a)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_labels_are_two_digits() {
        for id in [0u8, 2, 9, 10, 26, 99, 100, 255] {
            assert_eq!(id_label(id), format!("ID {id:02}"));
        }
    }

    const SGQR: &str = "00020101021126370009SG.PAYNOW010120210201912345K0301127730011SG.COM.NETS01231201912345K991231235900021511111686614000303088686614028260008COM.GRAB0110A93FO3230Q51380007SG.SGQR0112180907512345020701.00015204581253037025802SG5917SOBA NOODLE HOUSE6009Singapore63048499";

    fn rule(m: Matcher, mid: u8, tid: Option<u8>, priority: u32) -> RouteRule {
        RouteRule {
            matcher: m,
            acquirer: format!("acq-{priority}"),
            merchant_id_sub: mid,
            terminal_id_sub: tid,
            priority,
        }
    }

    #[test]
    fn the_lowest_priority_routable_template_wins_whatever_the_order() {
        let qr = crate::emv::parse(SGQR).unwrap();
        let rules = vec![
            rule(Matcher::Guid("sg.sgqr".to_owned()), 1, None, 5),
            rule(Matcher::Guid("SG.COM.NETS".to_owned()), 2, Some(3), 1),
            rule(Matcher::Guid("SG.PAYNOW".to_owned()), 2, None, 3),
        ];
        let r = route(&rules, &qr).unwrap();
        assert_eq!(r.acquirer, "acq-1");
        assert_eq!(r.merchant_id, "111116866140003");
        assert_eq!(r.terminal_id.as_deref(), Some("86866140"));
        assert_eq!(r.scheme, "NETS");
        // GUIDs compare case-insensitively; without NETS, SGQR (priority 5) loses to PayNow (3).
        let r = route(&rules[..1], &qr).unwrap();
        assert_eq!(r.merchant_id, "180907512345");
        let r = route(&[rules[0].clone(), rules[2].clone()], &qr).unwrap();
        assert_eq!(r.scheme, "PayNow");
    }

    #[test]
    fn a_rule_whose_merchant_id_sub_is_absent_is_skipped() {
        let qr = crate::emv::parse(SGQR).unwrap();
        let rules = vec![
            rule(Matcher::Guid("SG.COM.NETS".to_owned()), 42, None, 1),
            rule(Matcher::Guid("SG.SGQR".to_owned()), 1, None, 9),
        ];
        assert_eq!(route(&rules, &qr).unwrap().acquirer, "acq-9");
    }

    #[test]
    fn no_matching_rule_names_what_the_code_carries() {
        let qr = crate::emv::parse(SGQR).unwrap();
        let rules = vec![rule(Matcher::Primitive(15), 0, None, 1)];
        let why = route(&rules, &qr).unwrap_err();
        assert!(
            why.contains("SG.PAYNOW") && why.contains("COM.GRAB"),
            "{why}"
        );
    }

    #[test]
    fn a_primitive_rule_takes_the_whole_value_as_merchant_id() {
        let qr = crate::emv::parse(
            "00020101021215316200012345678901234567890123456520454115303156540588.005802CN5909BEST MART6008SHANGHAI64200002ZH0104百佳超市0202上海6304B2C0",
        )
        .unwrap();
        let r = route(&[rule(Matcher::Primitive(15), 0, None, 1)], &qr).unwrap();
        assert_eq!(r.merchant_id, "6200012345678901234567890123456");
        assert_eq!(r.matched, "ID 15");
    }
}
