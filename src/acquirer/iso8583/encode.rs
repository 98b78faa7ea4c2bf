//! Encoder: MTI, bitmap(s) computed from the fields present, then each data element with its length
//! prefix. Every value is checked against the [`Spec`] (presence in the layout, length, characters).

use super::bitmap;
use super::error::{CodecError, ErrorKind, Location};
use super::message::Message;
use super::spec::{BitmapEncoding, Length, Spec};

/// Encodes `message` under `spec` into a new buffer.
pub fn encode(message: &Message, spec: &Spec) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(256);
    encode_into(message, spec, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `message` to `out`. On error `out` may hold a partial message.
pub fn encode_into(message: &Message, spec: &Spec, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let base = out.len();
    out.extend_from_slice(message.mti().as_bytes());

    let (mut primary, mut secondary) = (0u64, 0u64);
    for (n, _) in message.fields() {
        match n {
            2..=64 => primary = bitmap::with(primary, n),
            65..=128 => secondary = bitmap::with(secondary, n - 64),
            _ => {
                return Err(CodecError::new(
                    Location::Field(n),
                    4,
                    ErrorKind::UnknownField,
                ));
            }
        }
    }
    if secondary != 0 {
        primary = bitmap::with(primary, 1);
    }
    write_bitmap(primary, spec.bitmap(), out);
    if secondary != 0 {
        write_bitmap(secondary, spec.bitmap(), out);
    }

    for (n, value) in message.fields() {
        let loc = Location::Field(n);
        let at = out.len() - base;
        let field = spec
            .field(n)
            .ok_or(CodecError::new(loc, at, ErrorKind::UnknownField))?;
        let len = value.len();
        match field.length {
            Length::Fixed(expected) => {
                if len != usize::from(expected) {
                    return Err(CodecError::new(
                        loc,
                        at,
                        ErrorKind::WrongLength {
                            len,
                            expected: usize::from(expected),
                        },
                    ));
                }
            }
            Length::Llvar(max) | Length::Lllvar(max) => {
                if len > usize::from(max) {
                    return Err(CodecError::new(
                        loc,
                        at,
                        ErrorKind::TooLong {
                            len,
                            max: usize::from(max),
                        },
                    ));
                }
                write_decimal(len, field.length.prefix_digits(), out);
            }
        }
        let value_at = out.len() - base;
        if let Some(i) = field.format.first_invalid(value) {
            return Err(CodecError::new(
                loc,
                value_at + i,
                ErrorKind::BadCharacter {
                    byte: value[i],
                    format: field.format,
                },
            ));
        }
        out.extend_from_slice(value);
    }
    Ok(())
}

fn write_bitmap(bitmap: u64, enc: BitmapEncoding, out: &mut Vec<u8>) {
    match enc {
        BitmapEncoding::Hex => bitmap::write_hex(bitmap, out),
        BitmapEncoding::Binary => out.extend_from_slice(&bitmap.to_be_bytes()),
    }
}

/// Writes `value` as exactly `digits` ASCII digits (value < 10^digits is checked by the caller).
fn write_decimal(value: usize, digits: usize, out: &mut Vec<u8>) {
    let mut buf = [b'0'; 4];
    let mut v = value;
    for slot in buf[..digits].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..digits]);
}
