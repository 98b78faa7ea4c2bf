//! The national scheme registry: data in `profiles.toml` (embedded), loaded once.
//!
//! A *scheme* is recognised from a merchant account: a GUID/AID in sub-ID 00 of a template 26–51
//! (matched case-insensitively), a root primitive ID 02–25, or the shape of an account id where a GUID
//! belongs. Each scheme belongs to a *profile*, the national rule set: the semantic rules (see
//! [`Rule`]) its real codes deviate from. A scheme domestic to the payload's country picks the
//! profile before one domestic elsewhere, before an international one; ties go to payload order.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::error::Rule;

/// The registry text, as committed.
pub const REGISTRY_TOML: &str = include_str!("profiles.toml");

/// What a sub-ID of a scheme's template carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Role {
    /// The merchant's identifier at its acquirer.
    MerchantId,
    /// The acquirer / participant / bank identifier.
    AcquirerId,
    /// A terminal identifier.
    TerminalId,
    /// The kind of proxy (mobile, national id, UEN, ...).
    ProxyType,
    /// The proxy value itself (a phone number, an id, a key).
    ProxyValue,
    /// An account number.
    Account,
    /// A reference (bill reference, invoice).
    Reference,
    /// An expiry date or time.
    Expiry,
    /// Anything else worth a label.
    Info,
}

impl Role {
    fn from_name(s: &str) -> Option<Role> {
        Some(match s {
            "merchant_id" => Role::MerchantId,
            "acquirer_id" => Role::AcquirerId,
            "terminal_id" => Role::TerminalId,
            "proxy_type" => Role::ProxyType,
            "proxy_value" => Role::ProxyValue,
            "account" => Role::Account,
            "reference" => Role::Reference,
            "expiry" => Role::Expiry,
            "info" => Role::Info,
            _ => return None,
        })
    }

    /// The role's name in `profiles.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::MerchantId => "merchant_id",
            Role::AcquirerId => "acquirer_id",
            Role::TerminalId => "terminal_id",
            Role::ProxyType => "proxy_type",
            Role::ProxyValue => "proxy_value",
            Role::Account => "account",
            Role::Reference => "reference",
            Role::Expiry => "expiry",
            Role::Info => "info",
        }
    }
}

/// A sub-ID's meaning in one scheme.
#[derive(Clone, Debug)]
pub struct SubField {
    /// The sub-ID.
    pub id: u8,
    /// What it carries.
    pub role: Role,
    /// A human label.
    pub label: String,
}

/// A set of relaxed rules.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct RuleSet(u32);

impl RuleSet {
    /// True if `rule` is relaxed.
    pub fn contains(self, rule: Rule) -> bool {
        self.0 & rule.bit() != 0
    }

    fn insert(&mut self, rule: Rule) {
        self.0 |= rule.bit();
    }

    /// The relaxed rules.
    pub fn iter(self) -> impl Iterator<Item = Rule> {
        Rule::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

/// A national rule set.
#[derive(Debug, Default)]
pub struct Profile {
    /// Its name, e.g. "PromptPay", reported as `profile`.
    pub name: String,
    /// The rules its schemes' codes may deviate from.
    pub relax: RuleSet,
}

/// One national scheme.
#[derive(Debug)]
pub struct NationalScheme {
    /// Its name, e.g. "PayNow".
    pub name: String,
    profile: usize,
    /// The country the scheme is domestic to; `None` for international schemes.
    pub country: Option<String>,
    /// Where the identifier comes from.
    pub source: String,
    nested: u128,
    /// Meanings of its sub-IDs.
    pub subs: Vec<SubField>,
}

impl NationalScheme {
    /// The national profile this scheme belongs to.
    pub fn profile(&self) -> &'static Profile {
        registry().profile(self.profile)
    }

    /// True if sub-ID `sub` of this scheme's template is itself a template.
    pub fn is_nested(&self, sub: u8) -> bool {
        sub < 100 && self.nested & (1u128 << sub) != 0
    }

    /// The meaning of sub-ID `sub`.
    pub fn sub(&self, sub: u8) -> Option<&SubField> {
        self.subs.iter().find(|s| s.id == sub)
    }

    /// The sub-ID carrying `role`, if the scheme has one.
    pub fn sub_for(&self, role: Role) -> Option<u8> {
        self.subs.iter().find(|s| s.role == role).map(|s| s.id)
    }
}

#[derive(Debug)]
struct AccountMatch {
    templates: Vec<u8>,
    contains: Option<String>,
    digits: bool,
    country: String,
    scheme: usize,
}

/// The loaded registry.
#[derive(Debug, Default)]
pub struct Registry {
    schemes: Vec<NationalScheme>,
    profiles: Vec<Profile>,
    guids: Vec<(String, usize)>,
    primitives: Vec<(u8, usize)>,
    accounts: Vec<AccountMatch>,
    empty: Profile,
}

static REGISTRY: LazyLock<Result<Registry, String>> =
    LazyLock::new(|| Registry::from_toml(REGISTRY_TOML));
static EMPTY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The embedded registry. If the embedded data were broken (a test guards against that), an empty
/// registry is used and [`registry_error`] says why.
pub fn registry() -> &'static Registry {
    match &*REGISTRY {
        Ok(r) => r,
        Err(_) => &EMPTY,
    }
}

/// Why the embedded registry failed to load, if it did.
pub fn registry_error() -> Option<&'static str> {
    REGISTRY.as_ref().err().map(String::as_str)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    scheme: Vec<FileScheme>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScheme {
    name: String,
    profile: String,
    country: Option<String>,
    source: String,
    #[serde(default)]
    relax: Vec<String>,
    #[serde(default)]
    nested: Vec<String>,
    #[serde(rename = "match")]
    matcher: FileMatch,
    #[serde(default)]
    subs: BTreeMap<String, FileSub>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMatch {
    guid: Option<Vec<String>>,
    primitive: Option<Vec<u8>>,
    account: Option<FileAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccount {
    templates: Vec<u8>,
    contains: Option<String>,
    #[serde(default)]
    digits: bool,
    country: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSub {
    role: String,
    label: String,
}

fn two_digit_id(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_digit)).then(|| (b[0] - b'0') * 10 + (b[1] - b'0'))
}

impl Registry {
    /// Loads and checks a registry from TOML text.
    pub fn from_toml(text: &str) -> Result<Registry, String> {
        let file: FileRegistry = toml::from_str(text).map_err(|e| format!("profiles.toml: {e}"))?;
        let mut reg = Registry::default();
        for (i, s) in file.scheme.into_iter().enumerate() {
            let at = |what: &str| format!("profiles.toml: scheme {:?}: {what}", s.name);
            let profile = match reg.profiles.iter().position(|p| p.name == s.profile) {
                Some(p) => p,
                None => {
                    reg.profiles.push(Profile {
                        name: s.profile.clone(),
                        relax: RuleSet::default(),
                    });
                    reg.profiles.len() - 1
                }
            };
            for r in &s.relax {
                let rule = Rule::from_name(r).ok_or_else(|| at(&format!("unknown rule {r:?}")))?;
                reg.profiles[profile].relax.insert(rule);
            }
            let mut nested = 0u128;
            for n in &s.nested {
                let id = two_digit_id(n)
                    .ok_or_else(|| at(&format!("nested sub-ID {n:?} is not two digits")))?;
                nested |= 1u128 << id;
            }
            let mut subs = Vec::new();
            for (k, v) in &s.subs {
                let id = two_digit_id(k)
                    .ok_or_else(|| at(&format!("sub-ID {k:?} is not two digits")))?;
                let role = Role::from_name(&v.role)
                    .ok_or_else(|| at(&format!("unknown role {:?}", v.role)))?;
                subs.push(SubField {
                    id,
                    role,
                    label: v.label.clone(),
                });
            }
            if let Some(c) = &s.country
                && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return Err(at("country must be two upper-case letters"));
            }
            let ways = [
                s.matcher.guid.is_some(),
                s.matcher.primitive.is_some(),
                s.matcher.account.is_some(),
            ];
            if ways.iter().filter(|w| **w).count() != 1 {
                return Err(at(
                    "[scheme.match] needs exactly one of guid, primitive, account",
                ));
            }
            for g in s.matcher.guid.iter().flatten() {
                if g.is_empty() || g.chars().count() > 32 {
                    return Err(at(&format!("GUID {g:?} must have 1 to 32 characters")));
                }
                if reg.guids.iter().any(|(x, _)| x.eq_ignore_ascii_case(g)) {
                    return Err(at(&format!("GUID {g:?} is listed twice")));
                }
                reg.guids.push((g.clone(), i));
            }
            for &p in s.matcher.primitive.iter().flatten() {
                if !(2..=25).contains(&p) {
                    return Err(at(&format!(
                        "primitive {p} is not a merchant account ID 02-25"
                    )));
                }
                reg.primitives.push((p, i));
            }
            if let Some(a) = s.matcher.account {
                if a.templates.iter().any(|t| !(26..=51).contains(t)) {
                    return Err(at("account templates must be 26-51"));
                }
                if a.contains.is_some() == a.digits {
                    return Err(at("account match needs exactly one of contains, digits"));
                }
                reg.accounts.push(AccountMatch {
                    templates: a.templates,
                    contains: a.contains,
                    digits: a.digits,
                    country: a.country,
                    scheme: i,
                });
            }
            reg.schemes.push(NationalScheme {
                name: s.name,
                profile,
                country: s.country,
                source: s.source,
                nested,
                subs,
            });
        }
        Ok(reg)
    }

    /// All schemes, in file order.
    pub fn schemes(&self) -> &[NationalScheme] {
        &self.schemes
    }

    /// Every GUID/AID the registry matches, as written in it.
    pub fn guids(&self) -> impl Iterator<Item = &str> {
        self.guids.iter().map(|(g, _)| g.as_str())
    }

    /// All profiles.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    fn profile(&self, i: usize) -> &Profile {
        self.profiles.get(i).unwrap_or(&self.empty)
    }

    /// The scheme of a merchant-account template, from its sub-ID 00 (`guid`) and the payload's
    /// country (58), if any.
    #[inline]
    pub fn match_template(
        &self,
        template: u8,
        guid: &str,
        country: Option<&str>,
    ) -> Option<&NationalScheme> {
        let by_guid = self
            .guids
            .iter()
            .find(|(g, _)| g.len() == guid.len() && g.eq_ignore_ascii_case(guid))
            .map(|(_, i)| *i);
        let i = by_guid.or_else(|| {
            self.accounts
                .iter()
                .find(|a| {
                    a.templates.contains(&template)
                        && country == Some(a.country.as_str())
                        && match &a.contains {
                            Some(c) => guid.contains(c.as_str()),
                            None => a.digits && guid.bytes().all(|b| b.is_ascii_digit()),
                        }
                })
                .map(|a| a.scheme)
        })?;
        self.schemes.get(i)
    }

    /// The scheme of a root primitive merchant account ID (02–25).
    #[inline]
    pub fn match_primitive(&self, id: u8) -> Option<&NationalScheme> {
        let i = self.primitives.iter().find(|(p, _)| *p == id)?.1;
        self.schemes.get(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_registry_loads() {
        assert_eq!(registry_error(), None);
        assert!(!registry().schemes().is_empty());
    }

    #[test]
    fn guids_match_case_insensitively() {
        let s = registry()
            .match_template(26, "sg.paynow", Some("SG"))
            .unwrap();
        assert_eq!(s.name, "PayNow");
        assert_eq!(s.profile().name, "SGQR");
    }

    #[test]
    fn rejects_unknown_rules_and_roles() {
        let base = "[[scheme]]\nname='X'\nprofile='X'\nsource='t'\n";
        let bad_rule = format!("{base}relax=['nope']\n[scheme.match]\nguid=['A1']\n");
        assert!(
            Registry::from_toml(&bad_rule)
                .unwrap_err()
                .contains("unknown rule")
        );
        let bad_role = format!(
            "{base}[scheme.match]\nguid=['A1']\n[scheme.subs]\n\"01\"={{role='boss',label='x'}}\n"
        );
        assert!(
            Registry::from_toml(&bad_role)
                .unwrap_err()
                .contains("unknown role")
        );
        let two_ways = format!("{base}[scheme.match]\nguid=['A1']\nprimitive=[15]\n");
        assert!(
            Registry::from_toml(&two_ways)
                .unwrap_err()
                .contains("exactly one")
        );
    }
}
