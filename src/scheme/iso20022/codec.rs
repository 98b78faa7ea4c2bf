//! The ISO 20022 XML codec of the scheme, apart from what the messages mean
//! (`transformers.rs`): the screen every inbound document passes (UTF-8, size, depth, element
//! count, no DOCTYPE / PI / custom entities, root `Document` with the message's `xmlns`), serde
//! deserialisation with element paths in its errors, rendering with the XML declaration, and the
//! [`Iso20022Fault`] that names the reason code and the element.

use quick_xml::events::Event;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::payment::ApiError;

/// The largest document we read (the server's body limit is usually smaller).
pub const MAX_DOCUMENT_BYTES: usize = 128 * 1024;
/// The deepest element nesting we read (a pacs.008 needs 7).
pub const MAX_DEPTH: usize = 16;
/// The most elements a document may have.
pub const MAX_ELEMENTS: usize = 2_000;

// ---------------------------------------------------------------------------------------------
// Faults: what is wrong with a document, where, and the reason code that says so.

/// A refusal of the scheme's own (before or beside the pipeline): an ISO 20022 reason code, the
/// element path it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022Fault {
    /// HTTP status: 400 (the document is wrong), 422 (it disagrees with the quote).
    pub http: u16,
    /// The reason code (`FF01`, `CH16`, `AM09`, ...).
    pub code: &'static str,
    /// Element path (`FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt`) or query parameter.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl Iso20022Fault {
    /// The document cannot be read (not XML, not our profile, an element missing): 400 `FF01`.
    pub fn format(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Iso20022Fault {
            http: 400,
            code: "FF01",
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An element's content is formally incorrect (amount, UETR, date, currency): 400 `CH16`.
    pub fn content(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Iso20022Fault {
            http: 400,
            code: "CH16",
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The document disagrees with the quote it names: 422 with `code`.
    pub fn terms(code: &'static str, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Iso20022Fault {
            http: 422,
            code,
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The text for `AddtlInf`: `path: reason`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.path, self.reason)
    }
}

impl std::fmt::Display for Iso20022Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message())
    }
}

// ---------------------------------------------------------------------------------------------
// Screening and deserialisation.

/// Checks an inbound document before deserialisation: UTF-8, at most [`MAX_DOCUMENT_BYTES`], no
/// DOCTYPE, no processing instructions, no entity other than the five predefined ones and
/// character references, nesting at most [`MAX_DEPTH`], at most [`MAX_ELEMENTS`] elements, no
/// namespace prefixes on elements, one root `Document` whose `xmlns` is `namespace` and whose one
/// child is `message`. Returns the text.
pub fn screen<'a>(
    body: &'a [u8],
    namespace: &str,
    message: &str,
) -> Result<&'a str, Iso20022Fault> {
    let fault = |reason: String| Iso20022Fault::format("Document", reason);
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(fault(format!(
            "document of {} bytes exceeds {MAX_DOCUMENT_BYTES}",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| fault(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut roots = 0usize;
    let mut children = 0usize;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| fault(format!("not well-formed XML near byte {at}: {e}")))?;
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s), false),
            Event::Empty(s) => (Some(s), true),
            _ => (None, false),
        };
        if let Some(s) = start {
            elements += 1;
            if elements > MAX_ELEMENTS {
                return Err(fault(format!("more than {MAX_ELEMENTS} elements")));
            }
            let name = s.name();
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            if name.contains(':') {
                return Err(fault(format!(
                    "element {name:?}: namespace prefixes are not accepted; use the default namespace"
                )));
            }
            match depth {
                0 => {
                    roots += 1;
                    if roots > 1 || name != "Document" {
                        return Err(fault(format!(
                            "the root must be one Document element, found {name:?}"
                        )));
                    }
                    let mut xmlns = None;
                    for attr in s.attributes() {
                        let attr = attr.map_err(|e| fault(format!("attribute: {e}")))?;
                        if attr.key.as_ref() == b"xmlns" {
                            xmlns = Some(String::from_utf8_lossy(&attr.value).into_owned());
                        }
                    }
                    if xmlns.as_deref() != Some(namespace) {
                        return Err(fault(format!(
                            "xmlns must be {namespace:?}, found {:?}",
                            xmlns.unwrap_or_default()
                        )));
                    }
                }
                1 => {
                    children += 1;
                    if children > 1 || name != message {
                        return Err(Iso20022Fault::format(
                            format!("Document/{name}"),
                            format!("Document must hold exactly one {message}"),
                        ));
                    }
                }
                _ => {}
            }
            if !empty {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(fault(format!("elements nested deeper than {MAX_DEPTH}")));
                }
            }
        }
        match event {
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::DocType(_) => {
                return Err(fault(
                    "DOCTYPE is not accepted (no DTDs, no entities)".to_owned(),
                ));
            }
            Event::PI(_) => {
                return Err(fault("processing instructions are not accepted".to_owned()));
            }
            Event::GeneralRef(r) => {
                let allowed = match r.is_char_ref() {
                    true => matches!(r.resolve_char_ref(), Ok(Some(_))),
                    false => {
                        let name: &[u8] = r.as_ref();
                        matches!(name, b"lt" | b"gt" | b"amp" | b"apos" | b"quot")
                    }
                };
                if !allowed {
                    return Err(fault(format!(
                        "entity &{}; is not accepted (only the five predefined ones and character references)",
                        String::from_utf8_lossy(r.as_ref())
                    )));
                }
            }
            Event::Text(t) if depth == 0 => {
                if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(fault("text outside the Document element".to_owned()));
                }
            }
            Event::CData(_) if depth == 0 => {
                return Err(fault("text outside the Document element".to_owned()));
            }
            Event::Decl(d) => {
                let utf8 = match d.encoding() {
                    None => true,
                    Some(Ok(e)) => e.eq_ignore_ascii_case(b"UTF-8"),
                    Some(Err(_)) => false,
                };
                if !utf8 {
                    return Err(fault(
                        "the XML declaration must say encoding=\"UTF-8\" (or nothing)".to_owned(),
                    ));
                }
            }
            Event::Eof => break,
            Event::Start(_)
            | Event::Empty(_)
            | Event::Text(_)
            | Event::CData(_)
            | Event::Comment(_) => {}
        }
    }
    if roots == 0 || children == 0 {
        return Err(fault(format!("no Document/{message}")));
    }
    Ok(text)
}

/// Screens and deserialises a document whose root child is `message`; errors name the element path.
pub fn parse_document<T: DeserializeOwned>(
    body: &[u8],
    namespace: &str,
    message: &str,
) -> Result<T, Iso20022Fault> {
    let text = screen(body, namespace, message)?;
    let mut de = quick_xml::de::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = element_path(&e.path().to_string());
        let path = if path.is_empty() || path == "?" {
            message.to_owned()
        } else {
            path
        };
        Iso20022Fault::format(path, e.into_inner().to_string())
    })
}

/// `a.b[0].c` (serde's path) → `a/b/c` (an element path; the one transaction needs no index).
fn element_path(serde_path: &str) -> String {
    let mut out = String::with_capacity(serde_path.len());
    let mut in_index = false;
    for c in serde_path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if in_index => {}
            '.' => out.push('/'),
            c => out.push(c),
        }
    }
    out
}

/// Renders a document: the XML declaration, root `Document`, two-space indentation.
pub(super) fn render_document<T: Serialize>(doc: &T) -> Result<Vec<u8>, ApiError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut ser =
        quick_xml::se::Serializer::with_root(&mut out, Some("Document")).map_err(|e| {
            ApiError::Unknown {
                side: crate::payment::Side::Gateway,
                reason: format!("ISO 20022 document not serialisable: {e}"),
            }
        })?;
    ser.indent(' ', 2);
    doc.serialize(ser).map_err(|e| ApiError::Unknown {
        side: crate::payment::Side::Gateway,
        reason: format!("ISO 20022 document not serialisable: {e}"),
    })?;
    out.push('\n');
    Ok(out.into_bytes())
}

/// The first 48 characters of `s`, for an error message.
pub(super) fn excerpt(s: &str) -> String {
    s.chars().take(48).collect()
}
