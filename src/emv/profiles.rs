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

    /// The sub-IDs of this scheme's template that are themselves templates (bit = sub-ID).
    pub(crate) fn nested_mask(&self) -> u128 {
        self.nested
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
    accounts: Vec<AccountMatch>,
    empty: Profile,
    /// The GUIDs, upper-cased, in an open-addressed table (the parse path's lookup).
    guid_index: GuidIndex,
    /// Scheme index + 1 per root primitive ID 02–25 (0: none).
    primitive_index: [u16; 26],
    /// Templates (bit = ID) that some account-shape matcher looks at.
    account_templates: u64,
}

/// An upper-cased GUID of at most 32 characters, zero-padded (a GUID never contains NUL).
type GuidKey = [u64; 4];

/// GUID → (scheme index, GUID-shaped) in an open-addressed table whose size is a power of two at
/// least four times the number of GUIDs: a lookup hashes the upper-cased GUID once and compares
/// 32 bytes, instead of comparing the GUID with every registered one.
#[derive(Debug, Default)]
struct GuidIndex {
    slots: Vec<Option<(GuidKey, u16, bool)>>,
    shift: u32,
}

/// Upper-cases ASCII letters in eight bytes at once (bytes outside `a`–`z` are left alone).
#[inline]
fn upper8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = w & (0x7F * ONES);
    let ge_a = low7.wrapping_add((0x80 - b'a' as u64) * ONES);
    let gt_z = low7.wrapping_add((0x80 - b'z' as u64 - 1) * ONES);
    let lower = ge_a & !gt_z & !w & (0x80 * ONES);
    w - (lower >> 2)
}

/// The key of a GUID of 1–32 bytes; `None` when longer (no registered GUID is).
#[inline]
fn guid_key(guid: &[u8]) -> Option<GuidKey> {
    if guid.is_empty() || guid.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    buf.get_mut(..guid.len())?.copy_from_slice(guid);
    let mut key = [0u64; 4];
    for (k, chunk) in key.iter_mut().zip(buf.chunks_exact(8)) {
        let mut b8 = [0u8; 8];
        b8.copy_from_slice(chunk);
        *k = upper8(u64::from_le_bytes(b8));
    }
    Some(key)
}

impl GuidIndex {
    fn build(guids: &[(String, usize)]) -> GuidIndex {
        let size = (guids.len() * 4).next_power_of_two().max(16);
        let mut index = GuidIndex {
            slots: vec![None; size],
            shift: 64 - size.trailing_zeros(),
        };
        for (g, scheme) in guids {
            let Some(key) = guid_key(g.as_bytes()) else {
                continue;
            };
            let shaped = super::rules::is_guid_shaped(g);
            let mut i = index.home(&key);
            while index.slots.get(i).is_some_and(Option::is_some) {
                i = (i + 1) & (size - 1);
            }
            if let Some(slot) = index.slots.get_mut(i) {
                *slot = Some((key, *scheme as u16, shaped));
            }
        }
        index
    }

    #[inline]
    fn home(&self, key: &GuidKey) -> usize {
        let h = (key[0] ^ key[1].rotate_left(17) ^ key[2].rotate_left(31) ^ key[3].rotate_left(47))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> self.shift) as usize
    }

    /// (scheme index, whether the registered GUID is GUID-shaped).
    #[inline]
    fn get(&self, guid: &str) -> Option<(usize, bool)> {
        if self.slots.is_empty() {
            return None;
        }
        let key = guid_key(guid.as_bytes())?;
        let mask = self.slots.len() - 1;
        let mut i = self.home(&key);
        loop {
            match self.slots.get(i)? {
                Some((k, scheme, shaped))
                    if (k[0] ^ key[0]) | (k[1] ^ key[1]) | (k[2] ^ key[2]) | (k[3] ^ key[3])
                        == 0 =>
                {
                    return Some((*scheme as usize, *shaped));
                }
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }
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
                // The first scheme listing a primitive ID keeps it.
                if let Some(slot) = reg.primitive_index.get_mut(p as usize)
                    && *slot == 0
                {
                    *slot = i as u16 + 1;
                }
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
            if nested != 0 && reg.accounts.iter().any(|a| a.scheme == i) {
                // The parser learns an account's nested sub-templates from its GUID while it
                // frames the template; an account-shape match is only known once 58 is read.
                return Err(at(
                    "nested sub-templates need a guid match, not an account match",
                ));
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
        reg.guid_index = GuidIndex::build(&reg.guids);
        for a in &reg.accounts {
            for &t in &a.templates {
                reg.account_templates |= 1u64 << t;
            }
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
        if let Some(s) = self.match_guid(guid) {
            return Some(s.0);
        }
        self.match_account(template, guid, country)
    }

    /// The scheme registered for a GUID (case-insensitive), and whether that GUID is GUID-shaped
    /// (an AID, a UUID or a reverse domain name).
    #[inline]
    pub(crate) fn match_guid(&self, guid: &str) -> Option<(&NationalScheme, bool)> {
        let (i, shaped) = self.guid_index.get(guid)?;
        Some((self.schemes.get(i)?, shaped))
    }

    /// True if an account-shape matcher looks at template `template` (26–51).
    #[inline]
    pub(crate) fn matches_accounts_in(&self, template: u8) -> bool {
        template < 64 && self.account_templates & (1u64 << template) != 0
    }

    /// The scheme of a merchant-account template recognised by the shape of its sub-ID 00 and the
    /// payload's country (no GUID registered).
    pub(crate) fn match_account(
        &self,
        template: u8,
        guid: &str,
        country: Option<&str>,
    ) -> Option<&NationalScheme> {
        let i = self
            .accounts
            .iter()
            .find(|a| {
                a.templates.contains(&template)
                    && country == Some(a.country.as_str())
                    && match &a.contains {
                        Some(c) => guid.contains(c.as_str()),
                        None => a.digits && guid.bytes().all(|b| b.is_ascii_digit()),
                    }
            })?
            .scheme;
        self.schemes.get(i)
    }

    /// The scheme of a root primitive merchant account ID (02–25).
    #[inline]
    pub fn match_primitive(&self, id: u8) -> Option<&NationalScheme> {
        let i = *self.primitive_index.get(id as usize)?;
        self.schemes.get(usize::from(i).checked_sub(1)?)
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
