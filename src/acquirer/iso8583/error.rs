//! Codec errors: every error names where it happened (MTI, a bitmap or a data element) and the byte
//! offset from the start of the message.

use std::fmt;

use super::spec::Format;

/// Where in a message an error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The 4-digit message type indicator.
    Mti,
    /// The primary bitmap.
    PrimaryBitmap,
    /// The secondary bitmap (data element 1).
    SecondaryBitmap,
    /// A data element, by number.
    Field(u8),
    /// After the last data element.
    End,
}

impl Location {
    /// Short name used in the CLI's JSON error: `"mti"`, `"bitmap"`, `"1"`, `"4"`, `"end"`.
    pub fn label(self) -> String {
        match self {
            Location::Mti => "mti".to_owned(),
            Location::PrimaryBitmap => "bitmap".to_owned(),
            Location::SecondaryBitmap => "1".to_owned(),
            Location::Field(n) => n.to_string(),
            Location::End => "end".to_owned(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Mti => f.write_str("MTI"),
            Location::PrimaryBitmap => f.write_str("primary bitmap"),
            Location::SecondaryBitmap => f.write_str("secondary bitmap (field 1)"),
            Location::Field(n) => write!(f, "field {n}"),
            Location::End => f.write_str("end of message"),
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The message ended early.
    #[error("message ends early: {needed} bytes needed, {available} left")]
    Truncated {
        /// Bytes the element needs.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// The MTI is not four ASCII digits.
    #[error("MTI must be four ASCII digits")]
    BadMti,
    /// A bitmap is not 16 upper-case hexadecimal characters.
    #[error("bitmap must be 16 upper-case hexadecimal characters")]
    BadBitmap,
    /// Bit 1 announces a secondary bitmap that has no bit set.
    #[error("secondary bitmap announced but empty")]
    EmptySecondaryBitmap,
    /// A data element the layout does not define (or field 1 given as data).
    #[error("data element not defined by the layout")]
    UnknownField,
    /// A variable-length prefix is not ASCII digits.
    #[error("length prefix must be {digits} ASCII digits")]
    BadLengthPrefix {
        /// Expected number of digits.
        digits: usize,
    },
    /// A variable-length value longer than the layout allows.
    #[error("length {len} exceeds the maximum {max}")]
    TooLong {
        /// Length found.
        len: usize,
        /// Maximum allowed.
        max: usize,
    },
    /// A fixed-length value of the wrong length (encoding only).
    #[error("length {len}, the layout fixes {expected}")]
    WrongLength {
        /// Length given.
        len: usize,
        /// Length required.
        expected: usize,
    },
    /// A byte outside the field's character class.
    #[error("byte 0x{byte:02X} not allowed in format {}", format.name())]
    BadCharacter {
        /// Offending byte.
        byte: u8,
        /// The field's format.
        format: Format,
    },
    /// Bytes left over after the last data element.
    #[error("{count} bytes left over after the last data element")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// A message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location} at offset {offset}: {kind}")]
pub struct CodecError {
    /// Where.
    pub location: Location,
    /// Byte offset from the start of the message (of the element's first byte, or of the offending byte).
    pub offset: usize,
    /// What.
    pub kind: ErrorKind,
}

impl CodecError {
    pub(crate) fn new(location: Location, offset: usize, kind: ErrorKind) -> Self {
        CodecError {
            location,
            offset,
            kind,
        }
    }
}
