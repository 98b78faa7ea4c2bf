//! A generator of *valid* payload models from unstructured bytes, for the structured fuzz target and
//! the property tests: model → encode → parse must give the model back. Because the model is valid by
//! construction, the fuzzer gets past the CRC and into the semantic layer. Some models carry the
//! deviations real national codes have (spec/emv.md §3, §7): each such model lists the warning codes
//! the default mode must give, and `--strict` must refuse it.

use arbitrary::{Arbitrary, Result, Unstructured};

use super::encode::{DataObject, QrData, Value};
use super::profiles::registry;

/// A valid [`QrData`] (no 63; encoding adds it), and the deviation warnings it was built with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArbitraryQr(pub QrData, pub Vec<&'static str>);

const CURRENCIES: &[(&str, u8)] = &[
    ("764", 2),
    ("702", 2),
    ("458", 2),
    ("360", 2),
    ("704", 0),
    ("608", 2),
    ("116", 2),
    ("344", 2),
    ("986", 2),
    ("356", 2),
    ("156", 2),
    ("392", 0),
    ("418", 2),
    ("144", 2),
    ("586", 2),
    ("524", 2),
    ("840", 2),
    ("414", 3),
    ("048", 3),
    ("990", 4),
    ("410", 0),
];

const COUNTRIES: &[&str] = &[
    "TH", "SG", "MY", "ID", "VN", "PH", "KH", "HK", "BR", "IN", "CN", "JP", "LA", "LK", "PK", "NP",
    "US", "GB", "KR",
];

/// Characters for alternate-language names: Latin, Thai, CJK, Khmer, kana, and a few combining marks.
const UNICODE: &[char] = &[
    'a', 'Z', ' ', '7', 'ร', '้', 'า', 'น', 'ก', '๑', '中', '国', '餐', '厅', 'ស', '្', 'រ', 'ា',
    'カ', 'フ', 'ェ', 'é', 'ß',
];

fn ans(u: &mut Unstructured<'_>, min: usize, max: usize) -> Result<String> {
    if u.ratio(1, 16)? && min <= 3 && max >= 3 {
        return Ok("***".into());
    }
    let n = u.int_in_range(min..=max)?;
    (0..n)
        .map(|_| Ok(u.int_in_range(0x20u8..=0x7E)? as char))
        .collect()
}

fn unicode(u: &mut Unstructured<'_>, min: usize, max: usize) -> Result<String> {
    let n = u.int_in_range(min..=max)?;
    (0..n).map(|_| Ok(*u.choose(UNICODE)?)).collect()
}

fn digits(u: &mut Unstructured<'_>, n: usize) -> Result<String> {
    (0..n)
        .map(|_| Ok((b'0' + u.int_in_range(0..=9)?) as char))
        .collect()
}

fn encoded_len(o: &DataObject) -> usize {
    4 + value_len(&o.value)
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::Primitive(s) => s.chars().count(),
        Value::Template(subs) => subs.iter().map(encoded_len).sum(),
    }
}

/// Sub-objects with unique IDs drawn from `ids`, each value made by `value`, keeping the template's
/// encoded value within `budget` characters.
fn subs(
    u: &mut Unstructured<'_>,
    ids: std::ops::RangeInclusive<u8>,
    count: usize,
    budget: usize,
    mut value: impl FnMut(&mut Unstructured<'_>, u8) -> Result<String>,
    used: &[DataObject],
) -> Result<Vec<DataObject>> {
    let mut out: Vec<DataObject> = Vec::new();
    let mut len: usize = used.iter().map(encoded_len).sum();
    for _ in 0..count {
        let id = u.int_in_range(ids.clone())?;
        if out.iter().chain(used).any(|o| o.id == id) {
            continue;
        }
        let o = DataObject::primitive(id, value(u, id)?);
        if len + encoded_len(&o) > budget {
            break;
        }
        len += encoded_len(&o);
        out.push(o);
    }
    Ok(out)
}

fn guid(u: &mut Unstructured<'_>) -> Result<String> {
    match u.int_in_range(0..=2)? {
        0 => {
            let known: Vec<&str> = registry().guids().collect();
            match known.is_empty() {
                true => Ok("SG.PAYNOW".into()),
                false => Ok((*u.choose(&known)?).into()),
            }
        }
        1 => {
            // An AID: the first digit is a RID category (A, D, F).
            let n = u.int_in_range(5..=16usize)? * 2;
            let mut s = String::from(*u.choose(b"ADFadf")? as char);
            for _ in 1..n {
                s.push(*u.choose(b"0123456789ABCDEFabcdef")? as char);
            }
            Ok(s)
        }
        _ => {
            let labels = u.int_in_range(2..=4usize)?;
            let mut s = String::new();
            for i in 0..labels {
                if i > 0 {
                    s.push('.');
                }
                let n = u.int_in_range(1..=6usize)?;
                for _ in 0..n {
                    s.push(*u.choose(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                    )? as char);
                }
            }
            Ok(s)
        }
    }
}

/// A template with a GUID (26–51, 80–99). Sub-IDs a recognised scheme nests are generated as
/// templates themselves.
fn guid_template(u: &mut Unstructured<'_>, id: u8, country: &str) -> Result<DataObject> {
    let g = guid(u)?;
    // Only merchant-account templates (26–51) belong to a scheme that may nest sub-templates.
    let scheme = registry()
        .match_template(id, &g, Some(country))
        .filter(|_| (26..=51).contains(&id));
    let head = vec![DataObject::primitive(0, g)];
    let n = u.int_in_range(0..=3)?;
    let mut rest = subs(u, 1..=99, n, 99, |u, _| ans(u, 1, 20), &head)?;
    if let Some(s) = scheme {
        for o in &mut rest {
            if s.is_nested(o.id) {
                let inner_n = u.int_in_range(1..=2)?;
                let inner = subs(u, 0..=9, inner_n, 30, |u, _| ans(u, 1, 10), &[])?;
                if inner.is_empty() {
                    o.value = Value::Template(vec![DataObject::primitive(0, "1")]);
                } else {
                    o.value = Value::Template(inner);
                }
            }
        }
        // Keep the template within 99 characters after nesting.
        while rest.iter().map(encoded_len).sum::<usize>()
            + head.iter().map(encoded_len).sum::<usize>()
            > 99
        {
            rest.pop();
        }
    }
    let mut all = head;
    all.extend(rest);
    Ok(DataObject::template(id, all))
}

fn amount(u: &mut Unstructured<'_>, exponent: u8) -> Result<String> {
    let int_digits = u.int_in_range(1..=8usize)?;
    let mut s = digits(u, int_digits)?;
    let decimals = u.int_in_range(0..=exponent as usize)?;
    if decimals > 0 && u.arbitrary()? {
        s.push('.');
        s.push_str(&digits(u, decimals)?);
    }
    if s.bytes().all(|b| b == b'0' || b == b'.') {
        s.insert(0, '1');
    }
    Ok(s)
}

impl<'a> Arbitrary<'a> for ArbitraryQr {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let country = *u.choose(COUNTRIES)?;
        let (currency, exponent) = *u.choose(CURRENCIES)?;
        let mut mandatory = Vec::new();
        let mut optional = Vec::new();
        let mut deviations: Vec<&'static str> = Vec::new();
        // One byte says which deviations this model carries (most models carry none).
        let flags: u8 = if u.ratio(1, 3)? { u.arbitrary()? } else { 0 };

        // Merchant accounts: at least one.
        // With deviations, one account, so the mandatory part stays well within 512 characters.
        let accounts = if flags != 0 {
            1
        } else {
            u.int_in_range(1..=3usize)?
        };
        let mut used_ids = Vec::new();
        for i in 0..accounts {
            let template = u.arbitrary::<bool>()?;
            let range = if template { 26..=51u8 } else { 2..=25u8 };
            let id = u.int_in_range(range)?;
            if used_ids.contains(&id) {
                continue;
            }
            used_ids.push(id);
            let o = if template {
                guid_template(u, id, country)?
            } else {
                DataObject::primitive(id, ans(u, 1, 40)?)
            };
            if i == 0 {
                mandatory.push(o)
            } else {
                optional.push(o)
            }
        }
        if mandatory.is_empty() {
            mandatory.push(DataObject::primitive(15, ans(u, 1, 40)?));
        }
        if flags & 1 == 0 {
            mandatory.push(DataObject::primitive(52, digits(u, 4)?));
        } else {
            deviations.push("mcc_absent");
        }
        mandatory.push(DataObject::primitive(53, currency));
        mandatory.push(DataObject::primitive(58, country));
        if flags & 2 == 0 {
            mandatory.push(DataObject::primitive(59, ans(u, 1, 25)?));
        } else {
            mandatory.push(DataObject::primitive(59, ans(u, 26, 40)?));
            deviations.push("text_too_long");
        }
        mandatory.push(DataObject::primitive(60, ans(u, 1, 15)?));
        if flags & 4 != 0 {
            // A template whose content is a hex blob, not TLV (it starts with a letter).
            let n = u.int_in_range(9..=40usize)?;
            let mut blob = String::from(*u.choose(b"ABCDEF")? as char);
            for _ in 0..n {
                blob.push(*u.choose(b"0123456789ABCDEF")? as char);
            }
            mandatory.push(DataObject::primitive(u.int_in_range(80..=99)?, blob));
            deviations.push("opaque_template");
        }
        if flags & 8 != 0 {
            // An all-digit account id where a GUID belongs (as LankaQR and Argentine codes do).
            let id = (26..=51u8).find(|i| !used_ids.contains(i)).unwrap_or(51);
            let n = u.int_in_range(5..=28usize)?;
            mandatory.push(DataObject::template(
                id,
                vec![
                    DataObject::primitive(0, digits(u, n)?),
                    DataObject::primitive(1, ans(u, 1, 20)?),
                ],
            ));
            deviations.push("account_id_as_guid");
        }
        if flags & 16 != 0 {
            // An amount with a non-zero digit below the minor unit.
            let int_digits = u.int_in_range(1..=6usize)?;
            let mut a = digits(u, int_digits)?;
            a.push('.');
            a.push_str(&digits(u, exponent as usize)?);
            a.push(*u.choose(b"123456789")? as char);
            mandatory.push(DataObject::primitive(54, a));
            deviations.push("amount_too_precise");
        }
        if flags & 32 != 0 {
            // A merchant channel (62.11) with an undefined media value.
            mandatory.push(DataObject::template(
                62,
                vec![DataObject::primitive(
                    11,
                    format!("{}00", *u.choose(b"89XZ")? as char),
                )],
            ));
            deviations.push("channel_undefined");
        }

        if u.arbitrary()? {
            optional.push(DataObject::primitive(1, *u.choose(&["11", "12"])?));
        }
        if flags & 16 == 0 && u.arbitrary()? {
            optional.push(DataObject::primitive(54, amount(u, exponent)?));
        }
        match u.int_in_range(0..=3)? {
            1 => optional.push(DataObject::primitive(55, "01")),
            2 => {
                optional.push(DataObject::primitive(55, "02"));
                optional.push(DataObject::primitive(56, amount(u, exponent)?));
            }
            3 => {
                optional.push(DataObject::primitive(55, "03"));
                let pct = format!(
                    "{}.{:02}",
                    u.int_in_range(0..=99u8)?,
                    u.int_in_range(1..=99u8)?
                );
                optional.push(DataObject::primitive(57, pct));
            }
            _ => {}
        }
        if u.arbitrary()? {
            optional.push(DataObject::primitive(61, ans(u, 1, 10)?));
        }
        if flags & 32 == 0 && u.arbitrary()? {
            let n = u.int_in_range(1..=4)?;
            let subs = subs(
                u,
                1..=11,
                n,
                99,
                |u, id| match id {
                    9 => {
                        let mut letters = vec!['A', 'M', 'E'];
                        let keep = u.int_in_range(1..=3usize)?;
                        let mut s = String::new();
                        for _ in 0..keep {
                            let i = u.choose_index(letters.len())?;
                            s.push(letters.remove(i));
                        }
                        Ok(s)
                    }
                    10 => ans(u, 1, 20),
                    11 => Ok(format!(
                        "{}{}{}",
                        u.int_in_range(0..=7u8)?,
                        u.int_in_range(0..=3u8)?,
                        u.int_in_range(0..=3u8)?
                    )),
                    _ => ans(u, 1, 25),
                },
                &[],
            )?;
            if !subs.is_empty() {
                optional.push(DataObject::template(62, subs));
            }
        }
        if u.arbitrary()? {
            let mut subs = vec![
                DataObject::primitive(0, *u.choose(&["th", "zh", "km", "ja", "ZH", "en"])?),
                DataObject::primitive(1, unicode(u, 1, 25)?),
            ];
            if u.arbitrary()? {
                subs.push(DataObject::primitive(2, unicode(u, 1, 15)?));
            }
            optional.push(DataObject::template(64, subs));
        }
        if u.arbitrary()? {
            optional.push(DataObject::primitive(
                u.int_in_range(65..=79)?,
                ans(u, 1, 20)?,
            ));
        }
        if flags & 4 == 0 && u.arbitrary()? {
            let id = u.int_in_range(80..=99)?;
            optional.push(guid_template(u, id, country)?);
        }

        // Keep within 512 characters: "000201" + objects + "6304XXXX".
        let budget = 512 - 6 - 8;
        let mut total: usize = mandatory.iter().chain(&optional).map(encoded_len).sum();
        while total > budget {
            match optional.pop() {
                Some(o) => total -= encoded_len(&o),
                None => break,
            }
        }
        // 55 needs its 56/57; drop orphans left by the trimming.
        let has = |v: &[DataObject], id| v.iter().any(|o| o.id == id);
        if has(&optional, 55) && !has(&optional, 56) && !has(&optional, 57) {
            let tip_value = optional
                .iter()
                .find(|o| o.id == 55)
                .map(|o| o.value.clone());
            if tip_value != Some(Value::Primitive("01".into())) {
                optional.retain(|o| o.id != 55);
            }
        }
        if !has(&optional, 55) {
            optional.retain(|o| o.id != 56 && o.id != 57);
        }

        let mut middle = mandatory;
        middle.extend(optional);
        // Shuffle: EMVCo fixes only 00 first and 63 last.
        for i in (1..middle.len()).rev() {
            let j = u.int_in_range(0..=i)?;
            middle.swap(i, j);
        }
        let mut objects = vec![DataObject::primitive(0, "01")];
        objects.extend(middle);
        Ok(ArbitraryQr(QrData { objects }, deviations))
    }
}
