//! The EMV MPM TLV grammar, zero-copy over `&str` with nom:
//!
//! ```text
//! element = id length value      id, length: two ASCII digits; length 01-99
//! value   = length × character   characters are Unicode code points, not bytes
//! ```
//!
//! The tokenizer knows nothing of meanings; it yields elements in order or the first framing fault.
//! Offsets are byte offsets into the whole payload; the caller turns them into character offsets
//! when it reports an error.

use nom::bytes::complete::take;
use nom::error::{ErrorKind as NomKind, ParseError};
use nom::{IResult, Parser};

use super::error::{Detail, ErrorKind};

/// One data object: its ID, its value, and the byte offset of its ID in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'a> {
    /// Two-digit ID, 0–99.
    pub id: u8,
    /// The value, exactly as in the payload.
    pub value: &'a str,
    /// Byte offset of the ID's first character in the payload.
    pub at: usize,
}

impl Element<'_> {
    /// Byte offset of the value's first character in the payload.
    pub fn value_at(&self) -> usize {
        self.at + 4
    }
}

/// A framing fault at a byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `BadLength` or `Truncated`.
    pub kind: ErrorKind,
    /// The ID of the element at fault, when its two ID digits could be read.
    pub id: Option<u8>,
    /// Byte offset in the payload of the character the fault points at.
    pub at: usize,
    /// What was wrong.
    pub detail: Detail,
}

/// nom error type: where in the input, and what.
#[derive(Debug)]
struct Bad<'a> {
    input: &'a str,
    kind: ErrorKind,
    detail: Detail,
    id: Option<u8>,
}

impl<'a> ParseError<&'a str> for Bad<'a> {
    fn from_error_kind(input: &'a str, _kind: NomKind) -> Self {
        Bad {
            input,
            kind: ErrorKind::BadLength,
            detail: Detail::IdNotDigits,
            id: None,
        }
    }

    fn append(_input: &'a str, _kind: NomKind, other: Self) -> Self {
        other
    }
}

/// Two ASCII digits as a number (a nom parser over `&str`; byte-wise, the hot path of the tokenizer).
#[inline]
fn two_digits(input: &str, detail: Detail) -> IResult<&str, u8, Bad<'_>> {
    match (input.as_bytes(), input.get(2..)) {
        ([a @ b'0'..=b'9', b @ b'0'..=b'9', ..], Some(rest)) => {
            Ok((rest, (a - b'0') * 10 + (b - b'0')))
        }
        _ => Err(nom::Err::Error(Bad {
            input,
            kind: ErrorKind::BadLength,
            detail,
            id: None,
        })),
    }
}

/// Takes `n` characters; on ASCII input a byte slice, otherwise nom's character-counting `take`.
fn take_chars(input: &str, n: usize, ascii: bool) -> IResult<&str, &str, Bad<'_>> {
    let short = |input| {
        nom::Err::Error(Bad {
            input,
            kind: ErrorKind::Truncated,
            detail: Detail::RunsPast {
                declared: n,
                available: if ascii {
                    input.len()
                } else {
                    input.chars().count()
                },
            },
            id: None,
        })
    };
    if ascii {
        match (input.get(..n), input.get(n..)) {
            (Some(value), Some(rest)) => Ok((rest, value)),
            _ => Err(short(input)),
        }
    } else {
        take(n)
            .parse(input)
            .map_err(|_: nom::Err<Bad<'_>>| short(input))
    }
}

fn tag_id(e: nom::Err<Bad<'_>>, id: u8) -> nom::Err<Bad<'_>> {
    e.map(|b| Bad { id: Some(id), ..b })
}

/// One element: `id length value`.
fn element(input: &str, ascii: bool) -> IResult<&str, (u8, &str), Bad<'_>> {
    if input.len() < 4 && input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(nom::Err::Error(Bad {
            input,
            kind: ErrorKind::Truncated,
            detail: Detail::HeaderCut,
            id: None,
        }));
    }
    let (after_id, id) = two_digits(input, Detail::IdNotDigits)?;
    let (rest, len) = two_digits(after_id, Detail::LengthNotDigits).map_err(|e| tag_id(e, id))?;
    if len == 0 {
        return Err(nom::Err::Error(Bad {
            input: after_id,
            kind: ErrorKind::BadLength,
            detail: Detail::LengthZero,
            id: Some(id),
        }));
    }
    let (rest, value) = take_chars(rest, len as usize, ascii).map_err(|e| tag_id(e, id))?;
    Ok((rest, (id, value)))
}

/// Iterates over the elements of a payload or template value. Stops after the first fault.
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    rest: &'a str,
    at: usize,
    ascii: bool,
}

impl<'a> Tokens<'a> {
    /// Tokens of `input`, which starts at byte offset `at` of the payload. `ascii` must be true only
    /// if `input` is all ASCII (a fast path: byte lengths equal character lengths).
    pub fn new(input: &'a str, at: usize, ascii: bool) -> Self {
        Tokens {
            rest: input,
            at,
            ascii,
        }
    }
}

impl<'a> Tokens<'a> {
    /// The well-formed ASCII element, decoded byte-wise: the same grammar as [`element`] (a test
    /// checks that both agree), without the error plumbing. `None` sends the caller to the nom
    /// grammar, which then reports the fault.
    #[inline(always)]
    fn ascii_fast_path(&mut self) -> Option<Element<'a>> {
        let head = self.rest.as_bytes().first_chunk::<4>()?;
        // The four header characters as one word, less '0' in each byte: a byte is a digit when
        // it is then ≤ 9, i.e. when adding 0x76 leaves its top bit clear. A byte below '0'
        // borrows from its neighbour, but its own top bit is set then, so the test stays exact
        // for "all four are digits".
        let d = u32::from_le_bytes(*head).wrapping_sub(0x3030_3030);
        if (d | d.wrapping_add(0x7676_7676)) & 0x8080_8080 != 0 {
            return None;
        }
        let [i0, i1, l0, l1] = d.to_le_bytes();
        let len = (l0 * 10 + l1) as usize;
        if len == 0 {
            return None;
        }
        // One boundary check: the rest starts where the value ends.
        let (head, rest) = self.rest.split_at_checked(4 + len)?;
        let value = head.get(4..)?;
        let el = Element {
            id: i0 * 10 + i1,
            value,
            at: self.at,
        };
        self.at += 4 + len;
        self.rest = rest;
        Some(el)
    }
}

impl<'a> Tokens<'a> {
    /// The next element if it is a well-formed ASCII one, else `None` (then call `next()`, which
    /// also reports the end and faults). Hot loops call this first: an `Option<Element>` stays in
    /// registers, where the iterator's `Option<Result<..>>` goes through memory.
    #[inline(always)]
    pub fn fast(&mut self) -> Option<Element<'a>> {
        if self.ascii && !self.rest.is_empty() {
            self.ascii_fast_path()
        } else {
            None
        }
    }

    /// The elements of input already validated: stops (rather than fails) at a fault.
    pub fn valid(self) -> Valid<'a> {
        Valid(self)
    }
}

/// See [`Tokens::valid`].
#[derive(Clone, Debug)]
pub struct Valid<'a>(Tokens<'a>);

impl<'a> Iterator for Valid<'a> {
    type Item = Element<'a>;

    #[inline(always)]
    fn next(&mut self) -> Option<Element<'a>> {
        match self.0.fast() {
            Some(el) => Some(el),
            None => self.0.next().and_then(Result::ok),
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<Element<'a>, Fault>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.ascii
            && let Some(el) = self.ascii_fast_path()
        {
            return Some(Ok(el));
        }
        self.next_by_grammar()
    }
}

impl<'a> Tokens<'a> {
    /// Non-ASCII elements and every fault: the nom grammar. Kept out of line so the fast path
    /// inlines into its callers and its result stays in registers.
    #[inline(never)]
    fn next_by_grammar(&mut self) -> Option<Result<Element<'a>, Fault>> {
        let start = self.rest;
        match element(start, self.ascii) {
            Ok((rest, (id, value))) => {
                let el = Element {
                    id,
                    value,
                    at: self.at,
                };
                self.at += start.len() - rest.len();
                self.rest = rest;
                Some(Ok(el))
            }
            Err(nom::Err::Error(bad) | nom::Err::Failure(bad)) => {
                let fault = Fault {
                    kind: bad.kind,
                    id: bad.id,
                    // Truncation points at the element; framing faults at the bad characters.
                    at: if bad.kind == ErrorKind::Truncated {
                        self.at
                    } else {
                        self.at + (start.len() - bad.input.len())
                    },
                    detail: bad.detail,
                };
                self.rest = "";
                Some(Err(fault))
            }
            Err(nom::Err::Incomplete(_)) => {
                let fault = Fault {
                    kind: ErrorKind::Truncated,
                    id: None,
                    at: self.at,
                    detail: Detail::HeaderCut,
                };
                self.rest = "";
                Some(Err(fault))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Vec<Result<Element<'_>, Fault>> {
        Tokens::new(s, 0, s.is_ascii()).collect()
    }

    #[test]
    fn splits_elements_and_counts_characters_not_bytes() {
        let toks = all("0002015905ร้านA");
        assert_eq!(toks.len(), 2);
        let el = toks[1].unwrap();
        assert_eq!((el.id, el.value, el.at), (59, "ร้านA", 6));
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_fast_path_and_the_nom_grammar_agree(s in "[0-9]{0,3}([0-9]{2}[0-2][0-9][ -~]{0,20}){0,6}[0-9A-Z ]{0,3}") {
            let fast: Vec<_> = Tokens::new(&s, 0, true).collect();
            let mut slow = Tokens::new(&s, 0, true);
            let slow: Vec<_> = std::iter::from_fn(|| {
                if slow.rest.is_empty() {
                    return None;
                }
                let start = slow.rest;
                Some(match element(start, true) {
                    Ok((rest, (id, value))) => {
                        let el = Element { id, value, at: slow.at };
                        slow.at += start.len() - rest.len();
                        slow.rest = rest;
                        Ok(el)
                    }
                    Err(_) => {
                        slow.rest = "";
                        Err(())
                    }
                })
            })
            .collect();
            let fast_ok: Vec<_> = fast.iter().map(|r| r.map_err(|_| ())).collect();
            proptest::prop_assert_eq!(fast_ok, slow);
        }
    }

    #[test]
    fn reports_a_length_running_past_the_end_at_the_element() {
        let toks = all("00020159105ABC");
        assert_eq!(
            toks[1],
            Err(Fault {
                kind: ErrorKind::Truncated,
                id: Some(59),
                at: 6,
                detail: Detail::RunsPast {
                    declared: 10,
                    available: 4
                }
            })
        );
    }

    #[test]
    fn reports_non_digit_ids_and_lengths_where_they_are() {
        assert_eq!(all("0A0201")[0].unwrap_err().at, 0);
        assert_eq!(
            all("000X01")[0].unwrap_err().detail,
            Detail::LengthNotDigits
        );
        assert_eq!(all("000X01")[0].unwrap_err().at, 2);
        assert_eq!(all("0000")[0].unwrap_err().detail, Detail::LengthZero);
        assert_eq!(all("000201590")[1].unwrap_err().kind, ErrorKind::Truncated);
    }
}
