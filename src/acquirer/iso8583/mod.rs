//! ISO 8583 codec, kept apart from the link's state machine and I/O.
//!
//! * [`spec`]: the field layout as data ([`Spec`], [`FieldSpec`]); the built-in ISO 8583:1987 ASCII
//!   profile, or a layout loaded from TOML.
//! * [`decode()`] (nom) and [`encode()`]: MTI, primary + secondary bitmaps, `n`/`an`/`ans`/`h`/`b`
//!   fields, fixed / LLVAR / LLLVAR. decode → encode is byte-exact.
//! * [`CodecError`]: names the field (or MTI / bitmap) and the byte offset.
//!
//! ```
//! use qrbridge::acquirer::iso8583::{decode, encode, Message, Mti, Spec};
//!
//! let spec = Spec::iso1987_ascii();
//! let msg = Message::new(Mti::NETWORK_REQUEST)
//!     .with(7, "1121101500")
//!     .with(11, "000001")
//!     .with(70, "001");
//! let wire = encode(&msg, spec).unwrap();
//! // MTI, primary bitmap (bits 1, 7, 11), secondary bitmap (bit 70), then 7, 11, 70.
//! assert_eq!(wire, b"0800822000000000000004000000000000001121101500000001001");
//! assert_eq!(decode(&wire, spec).unwrap(), msg);
//! ```

mod bitmap;
mod decode;
mod encode;
mod error;
pub mod json;
mod message;
pub mod spec;

pub use bitmap::{from_hex, to_hex};
pub use decode::decode;
pub use encode::{encode, encode_into};
pub use error::{CodecError, ErrorKind, Location};
pub use message::{Message, Mti};
pub use spec::{BitmapEncoding, FieldSpec, Format, Length, Spec};
