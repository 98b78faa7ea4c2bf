//! Domestic acquirer link: ISO 8583:1987 ASCII codec, TLS link, reversals and the simulator.
//!
//! In: canonical authorisation requests ([`message::Purchase`]: amount in minor units + currency,
//! merchant, DE48 private data). Out: [`link::Outcome`] — approved / declined (a value) / unknown (a
//! reversal is running). Errors: [`iso8583::CodecError`] names the field and byte offset;
//! [`link::LinkError`] knows which side failed ([`link::LinkSide`]) and answers `is_timeout()`; a
//! `LinkError` from `authorise` means nothing reached the acquirer.
//! Spec: `spec/acquirer-iso8583.md` (our profile, written as an acquirer integration guide).
//!
//! Layout (codecs apart from state machines and I/O; only `link` and `sim` do I/O):
//!
//! ```text
//! iso8583/   field layout as data (Spec, loadable from TOML), bitmaps, nom decoder, encoder, JSON view
//! frame      length framing: 2-byte big-endian (default) or 4 ASCII digits; FrameReader
//! message    typed messages: 0800/0810, 0200/0210, 0400/0401/0410, DE48 sub-fields, response codes
//! advice     acquirer-originated refund advices (0220/0221) and our 0230; the AdviceHandler trait
//! reversal   store-and-forward queue behind the ReversalStore trait; in-memory store; retry policy
//! settlement the acquirer's end-of-day settlement file (CSV with trailer totals): write, parse
//! link/      TLS client (a pool of 1..16 connections): sign-on, echo, reconnect, matching, STAN,
//!            deadlines, reversal driver
//! sim/       acquirer simulator: TLS server, behaviours, ledger (JSON)
//! ```
//!
//! The TLS configurations and the private CA are the `tls` leaf's; DE7/DE12/DE13 calendar fields
//! are the `time` leaf's (`time::fields`).
//!
//! A whole round trip against the simulator:
//!
//! ```
//! # use std::{sync::Arc, time::Duration};
//! use qrbridge::acquirer::{link::*, message::*, reversal::MemoryReversalStore, sim::*};
//! use qrbridge::tls::{self, pki::Pki};
//! use qrbridge::money::Currency;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Runtime::new()?;
//! rt.block_on(async {
//!     let pki = Pki::generate(&["localhost"], "qrbridge")?;
//!     let server = tls::server_config(&pki.ca_cert, &pki.server_cert, &pki.server_key)?;
//!     let sim = Simulator::start("127.0.0.1:0".parse()?, server, SimConfig::default()).await?;
//!
//!     let client = tls::client_config(&pki.ca_cert, &pki.client_cert, &pki.client_key)?;
//!     let terminal = Terminal { acquiring_institution: "12345678".into(), terminal_id: "QRB00001".into() };
//!     let config = LinkConfig::new(sim.addr().to_string(), "localhost", client, terminal);
//!     let link = Link::start(config, Arc::new(MemoryReversalStore::new()))?;
//!
//!     let purchase = Purchase {
//!         kind: Kind::Purchase,
//!         amount: 35_000, // MYR 350.00
//!         currency: Currency::from_code("MYR")?,
//!         billing: None,
//!         merchant_id: "M0001".into(),
//!         mcc: "5812".into(),
//!         merchant_name: "Nasi Lemak Stall".into(),
//!         merchant_city: "Kuala Lumpur".into(),
//!         merchant_country: "MY".into(),
//!         private: PrivateData { quote_id: Some("Q-1".into()), ..PrivateData::default() },
//!     };
//!     match link.authorise_within(&purchase, Duration::from_secs(10)).await? {
//!         Outcome::Approved(a) => assert_eq!(sim.ledger().by_rrn(&a.rrn).map(|e| e.amount), Some(35_000)),
//!         other => panic!("{other:?}"),
//!     }
//!     Ok(())
//! })
//! # }
//! ```

pub mod advice;
pub mod frame;
pub mod iso8583;
pub mod link;
pub mod message;
pub mod reversal;
pub mod settlement;
pub mod sim;
