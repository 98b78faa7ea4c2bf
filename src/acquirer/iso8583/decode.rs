//! Decoder (nom over bytes): MTI, primary bitmap, optional secondary bitmap, then each announced data
//! element in ascending order as the [`Spec`] describes it. Nothing may follow the last element.

use nom::Parser;
use nom::bytes::complete::take;

use super::bitmap;
use super::error::{CodecError, ErrorKind, Location};
use super::message::{Message, Mti};
use super::spec::{BitmapEncoding, Length, Spec};

/// Decodes one message (without its frame) under `spec`.
///
/// Accepted messages re-encode byte for byte: bitmaps must be canonical (upper-case hex, no empty
/// secondary bitmap), length prefixes have their fixed width, and no byte may follow the last element.
pub fn decode(input: &[u8], spec: &Spec) -> Result<Message, CodecError> {
    let mut d = Decoder {
        input,
        total: input.len(),
    };

    let mti_bytes = d.take(4, Location::Mti)?;
    let mut mti = [0u8; 4];
    mti.copy_from_slice(mti_bytes);
    let mti = Mti::new(mti).ok_or(CodecError::new(Location::Mti, 0, ErrorKind::BadMti))?;

    let primary = d.bitmap(spec.bitmap(), Location::PrimaryBitmap)?;
    let secondary = if bitmap::is_set(primary, 1) {
        let at = d.offset();
        let s = d.bitmap(spec.bitmap(), Location::SecondaryBitmap)?;
        if s == 0 {
            return Err(CodecError::new(
                Location::SecondaryBitmap,
                at,
                ErrorKind::EmptySecondaryBitmap,
            ));
        }
        s
    } else {
        0
    };

    let count = (primary.count_ones() + secondary.count_ones()) as usize;
    let mut message = Message::with_capacity(mti, input.len(), count);
    // Visit only the set bits, in ascending order (bit 1, the secondary bitmap, is not a field).
    let present = (0..2u8).flat_map(|half| {
        let mut bits = if half == 0 {
            primary & !(1 << 63)
        } else {
            secondary
        };
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let lz = bits.leading_zeros() as u8;
                bits &= !(1u64 << (63 - lz));
                half * 64 + lz + 1
            })
        })
    });
    for n in present {
        let loc = Location::Field(n);
        let start = d.offset();
        let field = spec
            .field(n)
            .ok_or(CodecError::new(loc, start, ErrorKind::UnknownField))?;
        let len = match field.length {
            Length::Fixed(len) => usize::from(len),
            Length::Llvar(_) | Length::Lllvar(_) => {
                let digits = field.length.prefix_digits();
                let prefix = d.take(digits, loc)?;
                let len = prefix.iter().try_fold(0usize, |acc, &c| {
                    c.is_ascii_digit().then(|| acc * 10 + usize::from(c - b'0'))
                });
                let len = len.ok_or(CodecError::new(
                    loc,
                    start,
                    ErrorKind::BadLengthPrefix { digits },
                ))?;
                if len > field.length.max() {
                    return Err(CodecError::new(
                        loc,
                        start,
                        ErrorKind::TooLong {
                            len,
                            max: field.length.max(),
                        },
                    ));
                }
                len
            }
        };
        let value_at = d.offset();
        let value = d.take(len, loc)?;
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
        message.push_ascending(n, value);
    }

    if !d.input.is_empty() {
        return Err(CodecError::new(
            Location::End,
            d.offset(),
            ErrorKind::TrailingBytes {
                count: d.input.len(),
            },
        ));
    }
    Ok(message)
}

struct Decoder<'a> {
    input: &'a [u8],
    total: usize,
}

impl<'a> Decoder<'a> {
    fn offset(&self) -> usize {
        self.total - self.input.len()
    }

    fn take(&mut self, n: usize, loc: Location) -> Result<&'a [u8], CodecError> {
        let at = self.offset();
        let available = self.input.len();
        let (rest, out) = take::<usize, &'a [u8], nom::error::Error<&'a [u8]>>(n)
            .parse(self.input)
            .map_err(|_| {
                CodecError::new(
                    loc,
                    at,
                    ErrorKind::Truncated {
                        needed: n,
                        available,
                    },
                )
            })?;
        self.input = rest;
        Ok(out)
    }

    fn bitmap(&mut self, enc: BitmapEncoding, loc: Location) -> Result<u64, CodecError> {
        let at = self.offset();
        match enc {
            BitmapEncoding::Hex => {
                let text = self.take(16, loc)?;
                bitmap::parse_hex(text).ok_or(CodecError::new(loc, at, ErrorKind::BadBitmap))
            }
            BitmapEncoding::Binary => {
                let raw = self.take(8, loc)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(raw);
                Ok(u64::from_be_bytes(b))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquirer::iso8583::encode;

    fn spec() -> &'static Spec {
        Spec::iso1987_ascii()
    }

    // A purchase written out by hand, so the bitmap is computed independently of the encoder.
    fn hand_made_0200() -> Vec<u8> {
        // Fields 3, 4, 11, 41, 48 → bits 3,4 (byte0 0x30), 11 (byte1 0x20), 41 (byte5 0x80), 48 (byte5 0x01).
        let mut w = b"0200".to_vec();
        w.extend_from_slice(b"3020000000810000");
        w.extend_from_slice(b"000000");
        w.extend_from_slice(b"000000035000");
        w.extend_from_slice(b"000123");
        w.extend_from_slice(b"TERM0001");
        w.extend_from_slice(b"0110107Q-12345");
        w
    }

    #[test]
    fn decodes_a_hand_made_purchase() {
        let m = decode(&hand_made_0200(), spec()).unwrap();
        assert_eq!(m.mti(), Mti::FINANCIAL_REQUEST);
        assert_eq!(m.text(4), Some("000000035000"));
        assert_eq!(m.text(41), Some("TERM0001"));
        assert_eq!(m.text(48), Some("0107Q-12345"));
        assert_eq!(m.fields().count(), 5);
    }

    #[test]
    fn decode_then_encode_is_byte_exact() {
        let wire = hand_made_0200();
        let m = decode(&wire, spec()).unwrap();
        assert_eq!(encode(&m, spec()).unwrap(), wire);
    }

    #[test]
    fn truncated_field_names_field_and_offset() {
        let mut wire = hand_made_0200();
        wire.truncate(wire.len() - 3);
        let err = decode(&wire, spec()).unwrap_err();
        assert_eq!(err.location, Location::Field(48));
        // 4 (MTI) + 16 (bitmap) + 6 + 12 + 6 + 8 = 52: the LLL prefix starts there, the value at 55.
        assert_eq!(err.offset, 55);
        assert!(matches!(
            err.kind,
            ErrorKind::Truncated {
                needed: 11,
                available: 8
            }
        ));
    }

    #[test]
    fn letter_in_numeric_field_is_refused_at_its_byte() {
        let mut wire = hand_made_0200();
        wire[20 + 6 + 5] = b'X'; // inside DE4
        let err = decode(&wire, spec()).unwrap_err();
        assert_eq!(err.location, Location::Field(4));
        assert_eq!(err.offset, 31);
        assert!(matches!(
            err.kind,
            ErrorKind::BadCharacter { byte: b'X', .. }
        ));
    }

    #[test]
    fn lower_case_bitmap_is_refused() {
        let mut wire = hand_made_0200();
        wire[4..20].copy_from_slice(b"302000000081000a");
        let err = decode(&wire, spec()).unwrap_err();
        assert_eq!((err.location, err.offset), (Location::PrimaryBitmap, 4));
    }

    #[test]
    fn empty_secondary_bitmap_is_refused() {
        let wire = b"0800A0000000000000000000000000000000123";
        let err = decode(wire, spec()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::EmptySecondaryBitmap);
        assert_eq!(err.offset, 20);
    }

    #[test]
    fn llvar_longer_than_its_maximum_is_refused() {
        // DE2 announced with length 20 (> 19).
        let wire = b"020040000000000000002012345678901234567890";
        let err = decode(wire, spec()).unwrap_err();
        assert_eq!(err.location, Location::Field(2));
        assert!(matches!(err.kind, ErrorKind::TooLong { len: 20, max: 19 }));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut wire = hand_made_0200();
        wire.push(b'0');
        let err = decode(&wire, spec()).unwrap_err();
        assert_eq!(err.location, Location::End);
        assert_eq!(err.offset, hand_made_0200().len());
    }

    #[test]
    fn encoder_refuses_wrong_fixed_length() {
        let m = Message::new(Mti::FINANCIAL_REQUEST).with(3, "00000");
        let err = encode(&m, spec()).unwrap_err();
        assert_eq!(err.location, Location::Field(3));
        assert!(matches!(
            err.kind,
            ErrorKind::WrongLength {
                len: 5,
                expected: 6
            }
        ));
    }

    #[test]
    fn binary_bitmap_layout_round_trips() {
        let custom = Spec::from_toml(
            r#"
            name = "binary"
            bitmap = "binary"
            [[fields]]
            number = 52
            format = "b"
            length = { type = "fixed", len = 8 }
            name = "PIN block"
            [[fields]]
            number = 100
            format = "n"
            length = { type = "llvar", len = 11 }
            name = "Receiving institution"
            "#,
        )
        .unwrap();
        let m = Message::new(Mti::FINANCIAL_REQUEST)
            .with(52, vec![0u8, 1, 2, 0xFF, 0x80, 0x7F, 0x0A, 0x0D])
            .with(100, "1234");
        let wire = encode(&m, &custom).unwrap();
        assert_eq!(&wire[4..12], &[0x80, 0, 0, 0, 0, 0, 0x10, 0]);
        assert_eq!(&wire[12..20], &[0, 0, 0, 0, 0x10, 0, 0, 0]);
        assert_eq!(decode(&wire, &custom).unwrap(), m);
    }
}
