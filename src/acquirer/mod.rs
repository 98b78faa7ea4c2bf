//! Domestic acquirer link: ISO 8583:1987 ASCII codec, TLS link, reversals and the simulator.
//!
//! In: canonical authorisation requests. Out: outcomes (approved / declined / unknown).
//! Errors: codec errors naming field and offset; link errors that know which side failed.
//! Spec: `spec/acquirer-iso8583.md`.
//!
//! Layout (codecs apart from state machines and I/O; only `link` and `sim` do I/O):
//!
//! ```text
//! iso8583/   field spec table (data), bitmaps, nom decoder, encoder, errors naming field + offset
//! frame      length framing: 2-byte big-endian (default) or 4 ASCII digits
//! message    typed builders: 0800/0810, 0200/0210, 0400/0401/0410, DE48 private sub-fields
//! ```

pub mod clock;
pub mod frame;
pub mod iso8583;
pub mod link;
pub mod message;
pub mod pki;
pub mod reversal;
pub mod sim;
pub mod tls;
