//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is one line calling a function here,
//! so `cargo test` can replay the corpus through the same code. Not a stable API.

/// Raw bytes → EMV parser: must never panic; an accepted payload must round-trip through the encoder.
pub fn emv_parse(_data: &[u8]) {}

/// An `Arbitrary` model → encode → parse must give the model back.
pub fn emv_structured(_data: &[u8]) {}

/// Raw bytes → ISO 8583 decoder (ASCII profile): must never panic; an accepted message must re-encode
/// to exactly the same bytes.
pub fn iso8583_decode(data: &[u8]) {
    use crate::acquirer::iso8583::{Spec, decode, encode};
    let spec = Spec::iso1987_ascii();
    if let Ok(message) = decode(data, spec) {
        let wire = encode(&message, spec);
        assert_eq!(
            wire.as_deref().ok(),
            Some(data),
            "decode → encode is not byte-exact: {wire:?}"
        );
    }
}

/// Raw bytes as a received TLS stream → frame reader (first byte picks the framing and how the bytes
/// arrive in pieces): must never panic; every frame must re-wrap to exactly the bytes it consumed,
/// and each frame goes through the decoder.
pub fn iso8583_frame(data: &[u8]) {
    use crate::acquirer::frame::{FrameReader, Framing};
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let framing = if control & 1 == 0 {
        Framing::Binary2
    } else {
        Framing::Ascii4
    };
    let chunk = usize::from(control >> 1).max(1);
    let mut reader = FrameReader::new(framing, 4096);
    let mut rewrapped = Vec::new();
    'feed: for piece in stream.chunks(chunk) {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    iso8583_decode(frame);
                    let wrapped = framing.wrap(frame, &mut rewrapped);
                    assert!(
                        wrapped.is_ok(),
                        "a frame we read cannot be written back: {wrapped:?}"
                    );
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    assert_eq!(
        &stream[..rewrapped.len()],
        &rewrapped[..],
        "frames do not re-wrap to the bytes consumed"
    );
}
