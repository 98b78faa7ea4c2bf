//! Length framing on the TLS stream: every message is preceded by its length, either as 2 bytes
//! big-endian (the default) or as 4 ASCII digits. The length counts the message bytes only.
//!
//! Pure (no I/O): the link feeds received bytes into a [`FrameReader`] and writes what [`Framing::wrap`]
//! produces.

use serde::{Deserialize, Serialize};

/// How a message's length is carried in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// 2 bytes, big-endian, 1..=65535.
    #[default]
    Binary2,
    /// 4 ASCII digits, 0001..=9999.
    Ascii4,
}

/// Default largest frame we accept (an ISO 8583 message with every field at its maximum stays below).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024;

/// The byte stream cannot be split into frames; the connection has lost sync and must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length header announcing zero bytes.
    #[error("frame at stream offset {offset} announces an empty message")]
    Empty {
        /// Offset of the header in the stream.
        offset: u64,
    },
    /// A length above the limit.
    #[error("frame at stream offset {offset} announces {len} bytes, limit {max}")]
    TooLong {
        /// Offset of the header in the stream.
        offset: u64,
        /// Announced length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A 4-digit ASCII header that is not digits.
    #[error("frame at stream offset {offset}: length header is not 4 ASCII digits")]
    BadAsciiLength {
        /// Offset of the header in the stream.
        offset: u64,
    },
    /// A message too long for the framing (when writing).
    #[error("message of {len} bytes does not fit the length header")]
    Unframeable {
        /// Message length.
        len: usize,
    },
}

impl Framing {
    /// Bytes of header in front of each message.
    pub fn header_len(self) -> usize {
        match self {
            Framing::Binary2 => 2,
            Framing::Ascii4 => 4,
        }
    }

    /// Appends the header and `payload` to `out`.
    pub fn wrap(self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = payload.len();
        match self {
            Framing::Binary2 => {
                let l = u16::try_from(len).map_err(|_| FrameError::Unframeable { len })?;
                if l == 0 {
                    return Err(FrameError::Unframeable { len });
                }
                out.extend_from_slice(&l.to_be_bytes());
            }
            Framing::Ascii4 => {
                if len == 0 || len > 9999 {
                    return Err(FrameError::Unframeable { len });
                }
                for d in [1000, 100, 10, 1] {
                    out.push(b'0' + ((len / d) % 10) as u8);
                }
            }
        }
        out.extend_from_slice(payload);
        Ok(())
    }

    /// Reads a header at the start of `buf`: `Ok(None)` if more bytes are needed, else the payload length.
    fn header(self, buf: &[u8], offset: u64, max: usize) -> Result<Option<usize>, FrameError> {
        let Some(h) = buf.get(..self.header_len()) else {
            return Ok(None);
        };
        let len = match self {
            Framing::Binary2 => usize::from(u16::from_be_bytes([h[0], h[1]])),
            Framing::Ascii4 => h
                .iter()
                .try_fold(0usize, |acc, &c| {
                    c.is_ascii_digit().then(|| acc * 10 + usize::from(c - b'0'))
                })
                .ok_or(FrameError::BadAsciiLength { offset })?,
        };
        if len == 0 {
            return Err(FrameError::Empty { offset });
        }
        if len > max {
            return Err(FrameError::TooLong { offset, len, max });
        }
        Ok(Some(len))
    }
}

/// Accumulates received bytes and yields whole messages.
#[derive(Debug)]
pub struct FrameReader {
    framing: Framing,
    max: usize,
    buf: Vec<u8>,
    start: usize,
    consumed: u64,
}

impl FrameReader {
    /// A reader for `framing`, refusing frames above `max` bytes.
    pub fn new(framing: Framing, max: usize) -> Self {
        FrameReader {
            framing,
            max,
            buf: Vec::with_capacity(8 * 1024),
            start: 0,
            consumed: 0,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` if more bytes are needed. After an error the stream is
    /// unusable.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let pending = &self.buf[self.start..];
        let Some(len) = self.framing.header(pending, self.consumed, self.max)? else {
            return Ok(None);
        };
        let h = self.framing.header_len();
        if pending.len() < h + len {
            return Ok(None);
        }
        let from = self.start + h;
        self.start = from + len;
        self.consumed += (h + len) as u64;
        Ok(Some(&self.buf[from..from + len]))
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_header_is_two_bytes_big_endian() {
        let mut out = Vec::new();
        Framing::Binary2.wrap(&[b'x'; 300], &mut out).unwrap();
        assert_eq!(&out[..2], &[0x01, 0x2C]);
        assert_eq!(out.len(), 302);
    }

    #[test]
    fn ascii_header_is_four_digits() {
        let mut out = Vec::new();
        Framing::Ascii4.wrap(b"0800", &mut out).unwrap();
        assert_eq!(out, b"00040800");
    }

    #[test]
    fn reader_splits_frames_arriving_in_pieces() {
        let mut r = FrameReader::new(Framing::Binary2, DEFAULT_MAX_FRAME);
        r.push(&[0x00]);
        assert_eq!(r.next_frame().unwrap(), None);
        r.push(&[0x03, b'a', b'b']);
        assert_eq!(r.next_frame().unwrap(), None);
        r.push(&[b'c', 0x00, 0x01, b'z']);
        assert_eq!(r.next_frame().unwrap(), Some(&b"abc"[..]));
        assert_eq!(r.next_frame().unwrap(), Some(&b"z"[..]));
        assert_eq!(r.next_frame().unwrap(), None);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn oversized_and_empty_frames_are_refused() {
        let mut r = FrameReader::new(Framing::Binary2, 100);
        r.push(&[0x01, 0x00]);
        assert_eq!(
            r.next_frame(),
            Err(FrameError::TooLong {
                offset: 0,
                len: 256,
                max: 100
            })
        );
        let mut r = FrameReader::new(Framing::Ascii4, 100);
        r.push(b"0000");
        assert_eq!(r.next_frame(), Err(FrameError::Empty { offset: 0 }));
        let mut r = FrameReader::new(Framing::Ascii4, 100);
        r.push(b"00x1");
        assert_eq!(
            r.next_frame(),
            Err(FrameError::BadAsciiLength { offset: 0 })
        );
    }

    #[test]
    fn unframeable_lengths_are_refused_when_writing() {
        let mut out = Vec::new();
        assert!(Framing::Ascii4.wrap(&[0; 10_000], &mut out).is_err());
        assert!(Framing::Binary2.wrap(&[], &mut out).is_err());
    }
}
