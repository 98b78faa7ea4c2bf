//! The 0200 a payment or refund becomes: our canonical [`Purchase`] from the decoded merchant, the
//! routing and the locked quote (DE4/49 merchant amount, DE6/10/51 payer amount and rate, DE42
//! merchant id, DE18 MCC, DE43 name/city/country, DE48 quote id, wallet client and request id).

use rust_decimal::Decimal;

use crate::acquirer::iso8583::Message;
use crate::acquirer::message::{
    self, Billing, ConversionRate, Kind, MessageError, PrivateData, Purchase, Stan, Terminal, Trace,
};
use crate::journal::{AcquirerData, Payment};
use crate::money::Amount;

use super::decode::Decoded;

/// DE10: the largest precision of `rate` that fits 7 digits (rate = digits / 10^decimals).
pub fn conversion_rate(rate: Decimal) -> Option<ConversionRate> {
    for decimals in (0u8..=7).rev() {
        let Some(scaled) = rate.checked_mul(Decimal::from(10u64.pow(u32::from(decimals)))) else {
            continue;
        };
        let scaled = scaled.round();
        if let Ok(digits) = u32::try_from(scaled.mantissa() / 10i128.pow(scaled.scale()))
            && digits <= 9_999_999
        {
            return ConversionRate::new(digits, decimals);
        }
    }
    None
}

/// DE43 text: printable ASCII (others become `?`), cut to `width` characters.
fn ascii(text: &str, width: usize) -> String {
    text.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(width)
        .collect()
}

/// What goes to the acquirer.
pub struct Request<'a> {
    /// Purchase or refund.
    pub kind: Kind,
    /// Merchant amount.
    pub merchant: Amount,
    /// Payer amount.
    pub payer: Amount,
    /// Merchant → payer rate (with markup).
    pub rate: Decimal,
    /// The decoded merchant and its routing.
    pub decoded: &'a Decoded,
    /// Quote id for DE48.
    pub quote_id: &'a str,
    /// Wallet client id.
    pub client_id: &'a str,
    /// Wallet request id.
    pub request_id: &'a str,
}

/// The canonical purchase for the link.
pub fn purchase(r: &Request<'_>) -> Purchase {
    let billing = (r.payer.currency() != r.merchant.currency())
        .then(|| conversion_rate(r.rate))
        .flatten()
        .map(|rate| Billing {
            amount: r.payer.minor(),
            currency: r.payer.currency(),
            rate,
        });
    let d = r.decoded;
    Purchase {
        kind: r.kind,
        amount: r.merchant.minor(),
        currency: r.merchant.currency(),
        billing,
        merchant_id: ascii(&d.routed.merchant_id, 15),
        mcc: d.mcc.clone(),
        merchant_name: ascii(&d.name, 25),
        merchant_city: ascii(&d.city, 13),
        merchant_country: d.country.clone(),
        private: PrivateData {
            quote_id: Some(ascii(r.quote_id, 99)),
            wallet_scheme: Some(ascii(r.client_id, 99)),
            wallet_request_id: Some(ascii(r.request_id, 99)),
            reference_label: d.reference_label.clone(),
            other: Vec::new(),
        },
    }
}

/// The trace journaled for a request (STAN, DE7, RRN), if complete.
pub fn trace_of(a: &AcquirerData) -> Option<Trace> {
    let stan = Stan::parse(a.stan.as_deref()?.as_bytes())?;
    let transmitted = a.transmitted.clone()?;
    if transmitted.len() != 10 || !transmitted.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Trace {
        stan,
        local_time: transmitted[4..].to_owned(),
        local_date: transmitted[..4].to_owned(),
        transmitted,
        rrn: a.rrn.clone()?,
    })
}

/// The trace to journal before sending.
pub fn data_of(trace: &Trace) -> AcquirerData {
    AcquirerData {
        stan: Some(trace.stan.de11()),
        transmitted: Some(trace.transmitted.clone()),
        rrn: Some(trace.rrn.clone()),
        ..AcquirerData::default()
    }
}

/// The 0200 a journaled payment was sent as, rebuilt from the journal (amounts, rate, merchant
/// id, DE48 and the trace): what a reversal after a restart reverses. DE18/DE43 come from
/// `decoded` when this process still holds it; otherwise they are placeholders (a 0400 does not
/// carry them).
pub fn rebuild(
    p: &Payment,
    decoded: Option<&Decoded>,
    country: &str,
    terminal: &Terminal,
) -> Result<Message, MessageError> {
    let trace = trace_of(&p.acquirer).ok_or(MessageError::Field {
        field: 11,
        reason: "no STAN / DE7 / RRN journaled",
    })?;
    let q = &p.quote;
    let billing = (q.payer_amount.currency() != q.merchant_amount.currency())
        .then(|| conversion_rate(q.rate))
        .flatten()
        .map(|rate| Billing {
            amount: q.payer_amount.minor(),
            currency: q.payer_amount.currency(),
            rate,
        });
    let purchase = Purchase {
        kind: Kind::Purchase,
        amount: q.merchant_amount.minor(),
        currency: q.merchant_amount.currency(),
        billing,
        merchant_id: ascii(&p.routing.merchant_id, 15),
        mcc: decoded.map_or_else(|| "0000".to_owned(), |d| d.mcc.clone()),
        merchant_name: decoded.map_or_else(String::new, |d| ascii(&d.name, 25)),
        merchant_city: decoded.map_or_else(String::new, |d| ascii(&d.city, 13)),
        merchant_country: country.to_owned(),
        private: PrivateData {
            quote_id: Some(ascii(&q.quote_id, 99)),
            wallet_scheme: Some(ascii(&p.client_id, 99)),
            wallet_request_id: Some(ascii(&p.request_id, 99)),
            reference_label: p.routing.qr_reference.clone(),
            other: Vec::new(),
        },
    };
    message::purchase_request(&purchase, terminal, &trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// What a reversal after a restart sends must reverse exactly what was sent: the rebuilt 0200
    /// carries the same fields a 0400 copies (and DE7/DE11 for DE90) as the original.
    #[test]
    fn a_rebuilt_request_matches_the_original_in_every_field_a_reversal_uses() {
        use crate::fx::source::StaticSource;
        use crate::fx::{CacheConfig, Pricing, QuotePolicy, Quoter, RateCache, parse_ecb};
        use crate::journal::{CustomerId, PaymentId, PaymentState, QuoteSnapshot, Routing};
        use crate::money::Currency;
        use crate::payment::CodeType;
        use crate::time::SystemClock;
        use std::sync::Arc;

        let table =
            parse_ecb(include_bytes!("../../testdata/fx/eurofxref-daily.xml"), "t").unwrap();
        let clock = Arc::new(SystemClock);
        let rates = RateCache::new(
            StaticSource::new(table),
            clock.clone(),
            CacheConfig {
                max_age: std::time::Duration::MAX,
                ..CacheConfig::daily_feed()
            },
        );
        let quoter = Quoter::new(rates, QuotePolicy::default(), clock);
        let sgd = Currency::from_code("SGD").unwrap();
        let myr = Currency::from_code("MYR").unwrap();
        let quote = quoter
            .quote(
                Amount::from_minor(1250, sgd).unwrap(),
                myr,
                Pricing::markup(150),
            )
            .unwrap();
        let decoded = Decoded {
            client_id: "wallet-my".to_owned(),
            code_type: CodeType::Static,
            routed: super::super::Routed {
                acquirer: "sg".to_owned(),
                merchant_id: "111116866140003".to_owned(),
                terminal_id: Some("86866140".to_owned()),
                scheme: "NETS".to_owned(),
                matched: "SG.COM.NETS".to_owned(),
            },
            name: "SOBA NOODLE HOUSE".to_owned(),
            city: "Singapore".to_owned(),
            country: "SG".to_owned(),
            mcc: "5812".to_owned(),
            amount: None,
            reference_label: Some("REF-1".to_owned()),
            fee: None,
        };
        let quote_id = quote.id.to_string();
        let original_purchase = purchase(&Request {
            kind: Kind::Purchase,
            merchant: quote.merchant_amount,
            payer: quote.payer_amount,
            rate: quote.rate,
            decoded: &decoded,
            quote_id: &quote_id,
            client_id: "wallet-my",
            request_id: "pay-1",
        });
        let terminal = Terminal {
            acquiring_institution: "70200001".to_owned(),
            terminal_id: "QRB00001".to_owned(),
        };
        let trace = Trace {
            stan: Stan::new(42).unwrap(),
            transmitted: "1121101500".to_owned(),
            local_time: "101500".to_owned(),
            local_date: "1121".to_owned(),
            rrn: "632510000042".to_owned(),
        };
        let original = message::purchase_request(&original_purchase, &terminal, &trace).unwrap();
        let payment = Payment {
            id: "01a1fdd6-efb2-740c-98db-67a1ace616e9"
                .parse::<PaymentId>()
                .unwrap(),
            client_id: "wallet-my".to_owned(),
            request_id: "pay-1".to_owned(),
            customer: CustomerId::new("c"),
            quote: QuoteSnapshot::of(&quote),
            origin: crate::journal::Origin::default(),
            routing: Routing {
                acquirer: "sg".to_owned(),
                merchant_id: "111116866140003".to_owned(),
                terminal_id: Some("86866140".to_owned()),
                scheme: "SG.COM.NETS".to_owned(),
                qr_reference: Some("REF-1".to_owned()),
            },
            acquirer: data_of(&trace),
            state: PaymentState::Sent,
            reversal: None,
            note: None,
            refunded: Amount::zero(sgd),
            refunds_reserved: Amount::zero(sgd),
            created_at_ms: 0,
            updated_at_ms: 0,
            history: Vec::new(),
        };
        for held in [Some(&decoded), None] {
            let rebuilt = rebuild(&payment, held, "SG", &terminal).unwrap();
            for de in [3u8, 4, 6, 7, 10, 11, 32, 37, 41, 42, 48, 49, 51] {
                assert_eq!(rebuilt.get(de), original.get(de), "DE{de}");
            }
            assert_eq!(
                message::original_data(&rebuilt).unwrap(),
                message::original_data(&original).unwrap()
            );
        }
        assert_eq!(
            rebuild(&payment, Some(&decoded), "SG", &terminal).unwrap(),
            original
        );
    }

    #[test]
    fn conversion_rate_keeps_seven_significant_digits() {
        let r = conversion_rate(Decimal::from_str("3.21712345").unwrap()).unwrap();
        assert_eq!(r, ConversionRate::new(3_217_123, 6).unwrap());
        let r = conversion_rate(Decimal::from_str("162.84").unwrap()).unwrap();
        assert_eq!(r, ConversionRate::new(1_628_400, 4).unwrap());
    }
}
