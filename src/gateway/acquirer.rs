//! The 0200 a payment or refund becomes: our canonical [`Purchase`] from the journaled payment
//! record (its merchant, routing and locked quote) (DE4/49 merchant amount, DE6/10/51 payer amount and rate, DE42
//! merchant id, DE18 MCC, DE43 name/city/country, DE48 quote id, wallet client and request id).

use rust_decimal::Decimal;

use crate::acquirer::iso8583::Message;
use crate::acquirer::message::{
    self, Billing, ConversionRate, Kind, MessageError, PrivateData, Purchase, Stan, Terminal, Trace,
};
use crate::journal::{AcquirerData, Payment};
use crate::money::Amount;

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

/// The ONE canonical purchase for the link, built from the journaled payment record: a payment's
/// 0200 (`Kind::Purchase`, the quote's amounts), a refund's 0200 (`Kind::Refund`, the refund's
/// amounts) and, after a restart, the 0200 a reversal reverses all come from here.
/// `request_id` is the wallet's request id of the operation (the payment's, or the refund's).
pub fn purchase(
    p: &Payment,
    kind: Kind,
    merchant: Amount,
    payer: Amount,
    request_id: &str,
) -> Purchase {
    let billing = (payer.currency() != merchant.currency())
        .then(|| conversion_rate(p.quote.rate))
        .flatten()
        .map(|rate| Billing {
            amount: payer.minor(),
            currency: payer.currency(),
            rate,
        });
    let m = &p.merchant;
    Purchase {
        kind,
        amount: merchant.minor(),
        currency: merchant.currency(),
        billing,
        merchant_id: ascii(&p.routing.merchant_id, 15),
        mcc: m.mcc.clone(),
        merchant_name: ascii(&m.name, 25),
        merchant_city: ascii(&m.city, 13),
        merchant_country: m.country.clone(),
        private: PrivateData {
            quote_id: Some(ascii(&p.quote.quote_id, 99)),
            wallet_scheme: Some(ascii(&p.client_id, 99)),
            wallet_request_id: Some(ascii(request_id, 99)),
            reference_label: p.routing.qr_reference.clone(),
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

/// The 0200 a journaled payment was sent as, rebuilt from the record (amounts, rate, merchant,
/// DE48 and the trace): what a reversal after a restart reverses.
pub fn rebuild(p: &Payment, terminal: &Terminal) -> Result<Message, MessageError> {
    let trace = trace_of(&p.acquirer).ok_or(MessageError::Field {
        field: 11,
        reason: "no STAN / DE7 / RRN journaled",
    })?;
    let q = &p.quote;
    let purchase = purchase(
        p,
        Kind::Purchase,
        q.merchant_amount,
        q.payer_amount,
        &p.request_id,
    );
    message::purchase_request(&purchase, terminal, &trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// What a reversal after a restart sends must reverse exactly what was sent: the 0200 rebuilt
    /// from the record as the journal stores it (encoded, decoded) equals the 0200 sent, in every
    /// field — DE18 and DE43 included, which a restart used to replace with placeholders.
    #[test]
    fn a_rebuilt_request_from_the_stored_record_equals_the_one_sent() {
        use crate::fx::source::StaticSource;
        use crate::fx::{CacheConfig, Pricing, QuotePolicy, Quoter, RateCache, parse_ecb};
        use crate::journal::{CustomerId, PaymentId, PaymentState, QuoteSnapshot, Routing};
        use crate::money::Currency;
        use crate::payment::Merchant;
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
            merchant: Merchant {
                name: "SOBA NOODLE HOUSE".to_owned(),
                city: "Singapore".to_owned(),
                country: "SG".to_owned(),
                mcc: "5812".to_owned(),
                merchant_id: "111116866140003".to_owned(),
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
        let sent = purchase(
            &payment,
            Kind::Purchase,
            quote.merchant_amount,
            quote.payer_amount,
            "pay-1",
        );
        let original = message::purchase_request(&sent, &terminal, &trace).unwrap();
        // The merchant as the code named it, in the fields acquirers show the cardholder.
        assert_eq!(original.text(18), Some("5812"));
        let de43 = original.text(43).unwrap();
        assert!(de43.starts_with("SOBA NOODLE HOUSE"), "{de43}");
        assert!(de43.contains("Singapore"), "{de43}");
        assert!(de43.ends_with("SG"), "{de43}");

        let kind = crate::journal::RecordKind::Payment;
        let stored = crate::journal::codec::encode(kind, &payment).unwrap();
        let restored: Payment = crate::journal::codec::decode(kind, b"p", &stored).unwrap();
        let rebuilt = rebuild(&restored, &terminal).unwrap();
        assert_eq!(rebuilt, original);
        assert_eq!(
            message::original_data(&rebuilt).unwrap(),
            message::original_data(&original).unwrap()
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
