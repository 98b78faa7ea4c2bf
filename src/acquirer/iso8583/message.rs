//! A generic ISO 8583 message: an MTI and data elements 2..=128 as raw bytes, kept in ascending order.

use std::fmt;

/// Message type indicator: four ASCII digits (version, class, function, origin), e.g. `0200`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti([u8; 4]);

impl Mti {
    /// Network management request.
    pub const NETWORK_REQUEST: Mti = Mti(*b"0800");
    /// Network management response.
    pub const NETWORK_RESPONSE: Mti = Mti(*b"0810");
    /// Financial transaction request.
    pub const FINANCIAL_REQUEST: Mti = Mti(*b"0200");
    /// Financial transaction response.
    pub const FINANCIAL_RESPONSE: Mti = Mti(*b"0210");
    /// Reversal request (first attempt).
    pub const REVERSAL: Mti = Mti(*b"0400");
    /// Reversal repeat.
    pub const REVERSAL_REPEAT: Mti = Mti(*b"0401");
    /// Reversal response.
    pub const REVERSAL_RESPONSE: Mti = Mti(*b"0410");
    /// Financial advice (acquirer-originated, store-and-forward; a refund advice).
    pub const ADVICE: Mti = Mti(*b"0220");
    /// Financial advice repeat.
    pub const ADVICE_REPEAT: Mti = Mti(*b"0221");
    /// Financial advice response.
    pub const ADVICE_RESPONSE: Mti = Mti(*b"0230");

    /// An MTI from four ASCII digits.
    pub fn new(digits: [u8; 4]) -> Option<Mti> {
        digits.iter().all(u8::is_ascii_digit).then_some(Mti(digits))
    }

    /// The four ASCII digits.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// The MTI as text.
    pub fn as_str(&self) -> &str {
        // Always four ASCII digits by construction.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The response MTI for a request or advice (function digit + 1, repeats answered as
    /// originals): 0200 → 0210, 0220/0221 → 0230, 0400/0401 → 0410, 0800 → 0810.
    pub fn response(&self) -> Mti {
        let mut d = self.0;
        if d[3] == b'1' {
            d[3] = b'0';
        }
        if matches!(d[2], b'0' | b'2' | b'4' | b'6' | b'8') {
            d[2] += 1;
        }
        Mti(d)
    }

    /// Whether this MTI is a response (third digit odd).
    pub fn is_response(&self) -> bool {
        (self.0[2] - b'0') % 2 == 1
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message: MTI plus data elements (numbers 2..=128; bitmaps are computed by the encoder).
///
/// Values live in one buffer (`data`) indexed by `fields` (ascending field numbers), so decoding costs
/// two allocations whatever the number of fields.
#[derive(Clone)]
pub struct Message {
    mti: Mti,
    data: Vec<u8>,
    fields: Vec<(u8, u32, u32)>,
}

impl Message {
    /// The heap memory this message holds (its buffers' capacities), for caches bounded by bytes.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.fields.capacity() * std::mem::size_of::<(u8, u32, u32)>()
    }

    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Self {
        Message {
            mti,
            data: Vec::with_capacity(256),
            fields: Vec::with_capacity(24),
        }
    }

    /// A message from values appended in ascending field order (used by the decoder).
    pub(crate) fn with_capacity(mti: Mti, bytes: usize, fields: usize) -> Self {
        Message {
            mti,
            data: Vec::with_capacity(bytes),
            fields: Vec::with_capacity(fields),
        }
    }

    /// Appends a field known to be above every field present (decoder fast path).
    pub(crate) fn push_ascending(&mut self, number: u8, value: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(value);
        self.fields.push((number, start, self.data.len() as u32));
    }

    /// The message type.
    pub fn mti(&self) -> Mti {
        self.mti
    }

    /// Changes the message type (e.g. 0400 → 0401 for a repeat).
    pub fn set_mti(&mut self, mti: Mti) {
        self.mti = mti;
    }

    /// Sets data element `number` (replacing any earlier value). Validity is checked by the encoder.
    pub fn set(&mut self, number: u8, value: impl AsRef<[u8]>) -> &mut Self {
        let value = value.as_ref();
        let start = self.data.len() as u32;
        self.data.extend_from_slice(value);
        let entry = (number, start, self.data.len() as u32);
        match self.fields.binary_search_by_key(&number, |f| f.0) {
            Ok(i) => self.fields[i] = entry,
            Err(i) => self.fields.insert(i, entry),
        }
        self
    }

    /// Builder form of [`Message::set`].
    pub fn with(mut self, number: u8, value: impl AsRef<[u8]>) -> Self {
        self.set(number, value);
        self
    }

    /// Removes data element `number`, returning its value.
    pub fn remove(&mut self, number: u8) -> Option<Vec<u8>> {
        let i = self.fields.binary_search_by_key(&number, |f| f.0).ok()?;
        let (_, a, b) = self.fields.remove(i);
        self.data.get(a as usize..b as usize).map(<[u8]>::to_vec)
    }

    /// The raw value of data element `number`.
    pub fn get(&self, number: u8) -> Option<&[u8]> {
        let i = self.fields.binary_search_by_key(&number, |f| f.0).ok()?;
        let (_, a, b) = self.fields[i];
        self.data.get(a as usize..b as usize)
    }

    /// The value of data element `number` as text (None if absent or not UTF-8).
    pub fn text(&self, number: u8) -> Option<&str> {
        self.get(number).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether data element `number` is present.
    pub fn has(&self, number: u8) -> bool {
        self.fields.binary_search_by_key(&number, |f| f.0).is_ok()
    }

    /// Data elements in ascending order.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &[u8])> {
        self.fields
            .iter()
            .map(|&(n, a, b)| (n, self.data.get(a as usize..b as usize).unwrap_or_default()))
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.mti == other.mti && self.fields().eq(other.fields())
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_struct("Message");
        m.field("mti", &self.mti);
        for (n, v) in self.fields() {
            // DE2 (PAN), DE35/45 (tracks) and DE52 (PIN) never reach logs.
            let shown = match n {
                2 | 35 | 36 | 45 | 52 => "<redacted>".to_owned(),
                _ => String::from_utf8_lossy(v).into_owned(),
            };
            m.field(&format!("de{n}"), &shown);
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_mti_answers_requests_and_repeats() {
        assert_eq!(Mti::FINANCIAL_REQUEST.response(), Mti::FINANCIAL_RESPONSE);
        assert_eq!(Mti::REVERSAL.response(), Mti::REVERSAL_RESPONSE);
        assert_eq!(Mti::REVERSAL_REPEAT.response(), Mti::REVERSAL_RESPONSE);
        assert_eq!(Mti::NETWORK_REQUEST.response(), Mti::NETWORK_RESPONSE);
        assert!(Mti::REVERSAL_RESPONSE.is_response());
        assert!(!Mti::REVERSAL_REPEAT.is_response());
    }

    #[test]
    fn set_keeps_fields_sorted_and_replaces() {
        let mut m = Message::new(Mti::FINANCIAL_REQUEST);
        m.set(41, "T1").set(3, "000000").set(41, "T2");
        let order: Vec<u8> = m.fields().map(|(n, _)| n).collect();
        assert_eq!(order, vec![3, 41]);
        assert_eq!(m.text(41), Some("T2"));
        assert_eq!(m.remove(3), Some(b"000000".to_vec()));
        assert!(!m.has(3));
    }

    #[test]
    fn equality_looks_at_values_not_at_replaced_bytes() {
        let mut a = Message::new(Mti::FINANCIAL_REQUEST);
        a.set(4, "000000000001").set(4, "000000000002");
        let b = Message::new(Mti::FINANCIAL_REQUEST).with(4, "000000000002");
        assert_eq!(a, b);
        assert_ne!(a, b.clone().with(11, "000001"));
        assert_ne!(a, Message::new(Mti::REVERSAL).with(4, "000000000002"));
    }

    #[test]
    fn debug_redacts_the_account_number() {
        let m = Message::new(Mti::FINANCIAL_REQUEST).with(2, "4111111111111111");
        assert!(!format!("{m:?}").contains("4111"));
    }
}
