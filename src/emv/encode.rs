//! The encoder: an owned, ordered model of a payload ([`QrData`]) → payload text.
//!
//! Lengths count characters; the CRC (63) is always recomputed and written upper-case, last. The
//! result is parsed before it is returned, so the encoder never emits a payload our parser refuses.
//! For every valid input whose CRC is upper-case, `encode(&parse(x).to_data()) == x` byte for byte.

use std::fmt::Write as _;

use super::error::{EmvError, Path};
use super::ids;
use super::mpm::{MerchantQr, Mode, is_nested};

/// One data object of the model.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DataObject {
    /// Two-digit ID, 0–99.
    pub id: u8,
    /// Its value.
    pub value: Value,
}

/// A primitive value or a template of nested data objects.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Value {
    /// Text, exactly as it will appear.
    Primitive(String),
    /// Nested data objects, in order.
    Template(Vec<DataObject>),
}

impl DataObject {
    /// A primitive data object.
    pub fn primitive(id: u8, value: impl Into<String>) -> Self {
        DataObject {
            id,
            value: Value::Primitive(value.into()),
        }
    }

    /// A template data object.
    pub fn template(id: u8, subs: Vec<DataObject>) -> Self {
        DataObject {
            id,
            value: Value::Template(subs),
        }
    }
}

/// An owned payload model: root data objects in order, without the CRC (63), which encoding adds.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct QrData {
    /// Root data objects in payload order.
    pub objects: Vec<DataObject>,
}

/// Why a model could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An ID above 99.
    #[error("{path}: ID {id} is not two digits")]
    BadId {
        /// Where.
        path: Path,
        /// The ID given.
        id: u8,
    },
    /// A value of 0 or more than 99 characters.
    #[error("{path}: value has {len} characters; a data object holds 1 to 99")]
    Length {
        /// Where.
        path: Path,
        /// Its length in characters.
        len: usize,
    },
    /// A path in a field list that is not two-digit IDs separated by dots.
    #[error("{0:?} is not a data object path like \"54\" or \"62.05\"")]
    BadPath(String),
    /// A template given both raw and by its sub-fields, differently.
    #[error("{path}: the raw value disagrees with the value built from its sub-fields ({built:?})")]
    Disagrees {
        /// Where.
        path: Path,
        /// What the sub-fields encode to.
        built: String,
    },
    /// A sub-field whose parent is a primitive.
    #[error("{path}: sub-fields given for a data object that is not a template")]
    NotTemplate {
        /// Where.
        path: Path,
    },
    /// The same path twice.
    #[error("{path}: given twice")]
    Repeated {
        /// Where.
        path: Path,
    },
    /// The encoded payload breaks a rule of the parser.
    #[error("the encoded payload is not valid: {0}")]
    Invalid(EmvError),
}

fn write_objects(
    out: &mut String,
    objects: &[DataObject],
    parent: Path,
) -> Result<(), EncodeError> {
    for o in objects {
        let path = parent.child(o.id);
        if o.id > 99 {
            return Err(EncodeError::BadId { path, id: o.id });
        }
        let mut inner = String::new();
        let value: &str = match &o.value {
            Value::Primitive(s) => s,
            Value::Template(subs) => {
                write_objects(&mut inner, subs, path)?;
                &inner
            }
        };
        let len = value.chars().count();
        if !(1..=99).contains(&len) {
            return Err(EncodeError::Length { path, len });
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{:02}{:02}", o.id, len);
        out.push_str(value);
    }
    Ok(())
}

/// Encodes `data` into payload text, appending "6304" and the upper-case CRC, then checks the result
/// with the parser in `mode`. A 63 inside `data` is ignored: the CRC is always recomputed.
pub fn encode_with(data: &QrData, mode: Mode) -> Result<String, EncodeError> {
    let mut out = String::with_capacity(256);
    let objects: Vec<DataObject> = data
        .objects
        .iter()
        .filter(|o| o.id != ids::CRC)
        .cloned()
        .collect();
    write_objects(&mut out, &objects, Path::ROOT)?;
    out.push_str("6304");
    let crc = super::crc::checksum(out.as_bytes());
    out.extend(super::crc::to_hex(crc).iter().map(|&b| b as char));
    MerchantQr::parse(&out, mode).map_err(EncodeError::Invalid)?;
    Ok(out)
}

/// [`encode_with`] under the default (profile) rules.
pub fn encode(data: &QrData) -> Result<String, EncodeError> {
    encode_with(data, Mode::Profiles)
}

impl MerchantQr<'_> {
    /// The owned model of this payload (without 63), nesting exactly as the parser does.
    pub fn to_data(&self) -> QrData {
        let accounts: Vec<_> = self.accounts().collect();
        let mut objects = Vec::new();
        for e in self.elements() {
            if e.id == ids::CRC {
                continue;
            }
            if !ids::is_root_template(e.id) || self.is_opaque(e.id) {
                objects.push(DataObject::primitive(e.id, e.value));
                continue;
            }
            let scheme = accounts
                .iter()
                .find(|a| a.id() == e.id)
                .and_then(|a| a.scheme());
            let subs = self
                .subs_of(e.value, e.value_at())
                .map(|s| {
                    if is_nested(e.id, s.id, scheme) && !self.opaque_at(e.id, Some(s.id)) {
                        let inner = self
                            .subs_of(s.value, s.value_at())
                            .map(|i| DataObject::primitive(i.id, i.value))
                            .collect();
                        DataObject::template(s.id, inner)
                    } else {
                        DataObject::primitive(s.id, s.value)
                    }
                })
                .collect();
            objects.push(DataObject::template(e.id, subs));
        }
        QrData { objects }
    }
}

impl QrData {
    /// Builds a model from `(path, raw value)` pairs as printed by `qrbridge decode --json`
    /// ("54", "62.05", "38.01.00"). Root order is the order of first appearance. A template may be
    /// given raw, by its sub-fields, or both (then they must agree). Any "63" is ignored.
    pub fn from_fields<'s>(
        fields: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> Result<QrData, EncodeError> {
        #[derive(Default)]
        struct Node {
            id: u8,
            raw: Option<String>,
            children: Vec<Node>,
        }
        fn child(nodes: &mut Vec<Node>, id: u8) -> &mut Node {
            let i = match nodes.iter().position(|n| n.id == id) {
                Some(i) => i,
                None => {
                    nodes.push(Node {
                        id,
                        ..Node::default()
                    });
                    nodes.len() - 1
                }
            };
            &mut nodes[i]
        }
        fn insert(
            nodes: &mut Vec<Node>,
            ids: &[u8],
            v: &str,
            path: Path,
        ) -> Result<(), EncodeError> {
            let Some((&first, rest)) = ids.split_first() else {
                return Ok(());
            };
            let n = child(nodes, first);
            if rest.is_empty() {
                if n.raw.is_some() {
                    return Err(EncodeError::Repeated { path });
                }
                n.raw = Some(v.to_owned());
                return Ok(());
            }
            insert(&mut n.children, rest, v, path)
        }
        fn build(n: Node, path: Path) -> Result<DataObject, EncodeError> {
            if n.children.is_empty() {
                return Ok(DataObject::primitive(n.id, n.raw.unwrap_or_default()));
            }
            let subs = n
                .children
                .into_iter()
                .map(|c| {
                    let p = path.child(c.id);
                    build(c, p)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(raw) = n.raw {
                let mut built = String::new();
                write_objects(&mut built, &subs, path)?;
                if built != raw {
                    return Err(EncodeError::Disagrees { path, built });
                }
            }
            Ok(DataObject::template(n.id, subs))
        }

        let mut roots: Vec<Node> = Vec::new();
        for (p, v) in fields {
            let path = Path::parse(p).ok_or_else(|| EncodeError::BadPath(p.to_owned()))?;
            let ids = path.ids();
            if ids.is_empty() {
                return Err(EncodeError::BadPath(p.to_owned()));
            }
            if ids[0] == ids::CRC && ids.len() == 1 {
                continue;
            }
            insert(&mut roots, ids, v, path)?;
        }
        let objects = roots
            .into_iter()
            .map(|n| {
                let p = Path::id(n.id);
                if !n.children.is_empty() && !ids::is_root_template(n.id) {
                    return Err(EncodeError::NotTemplate { path: p });
                }
                build(n, p)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QrData { objects })
    }
}
