//! ISO 20022 on the wire (the subset this scheme reads and writes), and its translation to and from
//! the canonical payment: quick-xml serde structs whose field names are the ISO 20022 XML element
//! names, the quote query and quote JSON, and the status / reason-code tables. The XML screen,
//! parse and render (and [`Iso20022Fault`]) are the codec's, `codec.rs`. Mapping:
//! `spec/schemes/iso20022.md`.
//!
//! ```text
//! (codec.rs)        screen, parse_document, render_document, Iso20022Fault
//! Iso20022Pacs008   FIToFICstmrCdtTrf          in   → Iso20022Payment (canonical pay + terms)
//! Iso20022Pacs028   FIToFIPmtStsReq            in   → Iso20022StatusRequest
//! Iso20022Camt056   FIToFIPmtCxlReq            in   → Iso20022CancelRequest
//! Iso20022Pacs002   FIToFIPmtStsRpt            out  ← payment / return status, refusals
//! Iso20022Camt029   RsltnOfInvstgtn            out  ← cancel result
//! Iso20022Pacs004   PmtRtr                     out  ← a refund credited to the payer (RefundCredit)
//! Iso20022QuoteQuery / Iso20022Quote           GET query in, JSON out
//! ```

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Amount, Currency};
use crate::payment::ApiError;
use crate::payment::{
    CodeValue, CustomerId, DecodeResponse, Money, PaymentResponse, PaymentStatus, QuoteResponse,
    RefundResponse, RefundStatus, RequestId,
};
use crate::scheme::native::auth::{AuthFault, body_digest};
use crate::time::{Syntax, parse_date_time};

pub use super::codec::{
    Iso20022Fault, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_ELEMENTS, parse_document, screen,
};
use super::codec::{excerpt, render_document};

/// `pacs.008.001.08`: FI to FI customer credit transfer.
pub const NS_PACS008: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08";
/// `pacs.002.001.10`: FI to FI payment status report.
pub const NS_PACS002: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10";
/// `pacs.028.001.03`: FI to FI payment status request.
pub const NS_PACS028: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.028.001.03";
/// `pacs.004.001.09`: payment return (we send it: a refund that started at the merchant).
pub const NS_PACS004: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.004.001.09";
/// `camt.056.001.08`: FI to FI payment cancellation request.
pub const NS_CAMT056: &str = "urn:iso:std:iso:20022:tech:xsd:camt.056.001.08";
/// `camt.029.001.09`: resolution of investigation.
pub const NS_CAMT029: &str = "urn:iso:std:iso:20022:tech:xsd:camt.029.001.09";

/// The message identifier of a pacs.008 (what `OrgnlMsgNmId` says).
pub const MSG_PACS008: &str = "pacs.008.001.08";
/// `pacs.008.001.11`: the version the BIS Nexus guidelines name (the `nexus` profile).
pub const NS_PACS008_NEXUS: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.11";
/// Its message identifier.
pub const MSG_PACS008_NEXUS: &str = "pacs.008.001.11";
/// `pacs.002.001.13`: the status report version the Nexus guidelines name.
pub const NS_PACS002_NEXUS: &str = "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.13";

/// A wallet client's message profile (`profile` in its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Iso20022Profile {
    /// CBPR+-style (the default): pacs.008.001.08 / pacs.002.001.10; `IntrBkSttlmAmt` in the
    /// merchant's currency, `XchgRate` payer units per merchant unit (`InstdAmt` = settlement ×
    /// rate).
    #[default]
    Cbpr,
    /// BIS Nexus-style: pacs.008.001.11 / pacs.002.001.13; `IntrBkSttlmAmt` in the *source*
    /// (payer's) currency and `XchgRate` destination units per source unit, applied to it to
    /// give what the merchant is credited.
    Nexus,
}

impl Iso20022Profile {
    /// From the configuration value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cbpr" => Some(Iso20022Profile::Cbpr),
            "nexus" => Some(Iso20022Profile::Nexus),
            _ => None,
        }
    }

    /// The pacs.008 namespace this profile reads.
    pub fn pacs008_namespace(self) -> &'static str {
        match self {
            Iso20022Profile::Cbpr => NS_PACS008,
            Iso20022Profile::Nexus => NS_PACS008_NEXUS,
        }
    }

    /// The pacs.008 message identifier this profile reads.
    pub fn pacs008_message(self) -> &'static str {
        match self {
            Iso20022Profile::Cbpr => MSG_PACS008,
            Iso20022Profile::Nexus => MSG_PACS008_NEXUS,
        }
    }

    /// The profile of a journaled original message identifier.
    pub fn of_message(msg_nm_id: &str) -> Self {
        if msg_nm_id == MSG_PACS008_NEXUS {
            Iso20022Profile::Nexus
        } else {
            Iso20022Profile::Cbpr
        }
    }
}

/// The pacs.002 namespace answering a message: pacs.002.001.13 for the Nexus pacs.008, else
/// pacs.002.001.10.
pub fn pacs002_namespace(orgnl_msg_nm_id: &str) -> &'static str {
    match Iso20022Profile::of_message(orgnl_msg_nm_id) {
        Iso20022Profile::Nexus => NS_PACS002_NEXUS,
        Iso20022Profile::Cbpr => NS_PACS002,
    }
}
/// The message identifier of a pacs.004 (what the wallet's pacs.002 about it says).
pub const MSG_PACS004: &str = "pacs.004.001.09";
/// The message identifier of a pacs.028.
pub const MSG_PACS028: &str = "pacs.028.001.03";
/// The message identifier of a camt.056.
pub const MSG_CAMT056: &str = "camt.056.001.08";

/// The prefix of the quote reference in `RmtInf/Strd/AddtlRmtInf` (our extension: Nexus carries
/// its quote id in `AddtlRmtInf` too, the `QUOTE/` form is ours).
pub const QUOTE_PREFIX: &str = "QUOTE/";
/// `OrgnlMsgId` when the original message could not be read.
pub const NOT_PROVIDED: &str = "NOTPROVIDED";

// ---------------------------------------------------------------------------------------------
// Shared element types.

/// An amount with its currency: `<IntrBkSttlmAmt Ccy="SGD">12.50</IntrBkSttlmAmt>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Amount {
    /// ISO 4217 alpha-3.
    #[serde(rename = "@Ccy")]
    pub ccy: String,
    /// Decimal in major units.
    #[serde(rename = "$text")]
    pub value: String,
}

impl Iso20022Amount {
    /// The exact amount: a known currency and a decimal with at most its exponent of decimals.
    pub fn to_amount(&self, path: &str) -> Result<Amount, Iso20022Fault> {
        let currency = Currency::from_code(&self.ccy)
            .map_err(|e| Iso20022Fault::content(format!("{path}/@Ccy"), e.to_string()))?;
        Amount::parse(&self.value, currency)
            .map_err(|e| Iso20022Fault::content(path, e.to_string()))
    }
}

impl From<Amount> for Iso20022Amount {
    fn from(a: Amount) -> Self {
        Iso20022Amount {
            ccy: a.currency().code().to_owned(),
            value: a.to_decimal_string(),
        }
    }
}

/// `Othr/Id` inside an account `Id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Other {
    /// The identification.
    #[serde(rename = "Id")]
    pub id: String,
}

/// An account identification: `Id/Othr/Id` (IBAN is not used by QR merchants or wallets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022AccountId {
    /// `Othr`.
    #[serde(rename = "Othr")]
    pub othr: Iso20022Other,
}

/// An account: `DbtrAcct`, `CdtrAcct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Account {
    /// `Id`.
    #[serde(rename = "Id")]
    pub id: Iso20022AccountId,
}

/// `FinInstnId` (the elements we read and echo, in schema order; all optional in the schema).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022FinInstnId {
    /// `BICFI`.
    #[serde(rename = "BICFI", default, skip_serializing_if = "Option::is_none")]
    pub bicfi: Option<String>,
    /// `LEI`.
    #[serde(rename = "LEI", default, skip_serializing_if = "Option::is_none")]
    pub lei: Option<String>,
    /// `Nm`.
    #[serde(rename = "Nm", default, skip_serializing_if = "Option::is_none")]
    pub nm: Option<String>,
    /// `Othr` (`Id`).
    #[serde(rename = "Othr", default, skip_serializing_if = "Option::is_none")]
    pub othr: Option<Iso20022Other>,
}

/// A party or an agent (`Party40Choice`): `Assgnr`, `Assgne` of a case assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022PartyOrAgent {
    /// `Pty`.
    #[serde(rename = "Pty", default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<Iso20022Party>,
    /// `Agt`.
    #[serde(rename = "Agt", default, skip_serializing_if = "Option::is_none")]
    pub agt: Option<Iso20022Agent>,
}

impl Iso20022PartyOrAgent {
    /// Exactly one of `Pty` and `Agt` (the schema's choice).
    fn check(&self, path: &str) -> Result<(), Iso20022Fault> {
        match (&self.pty, &self.agt) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(Iso20022Fault::format(
                path,
                "must hold exactly one of Pty and Agt",
            )),
        }
    }
}

/// An agent: `DbtrAgt`, `CdtrAgt`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022Agent {
    /// `FinInstnId`.
    #[serde(rename = "FinInstnId")]
    pub fin_instn_id: Iso20022FinInstnId,
}

/// A party: `Dbtr`, `Cdtr` (the name is what we read).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022Party {
    /// `Nm`.
    #[serde(rename = "Nm", default, skip_serializing_if = "Option::is_none")]
    pub nm: Option<String>,
}

/// `SttlmInf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022SttlmInf {
    /// `SttlmMtd`: `CLRG` (clearing system) is what this gateway does.
    #[serde(rename = "SttlmMtd")]
    pub sttlm_mtd: String,
}

/// A group header of a request (`GrpHdr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022GrpHdr {
    /// `MsgId`.
    #[serde(rename = "MsgId")]
    pub msg_id: String,
    /// `CreDtTm`.
    #[serde(rename = "CreDtTm")]
    pub cre_dt_tm: String,
    /// `NbOfTxs` (pacs.008, pacs.004).
    #[serde(rename = "NbOfTxs", default, skip_serializing_if = "Option::is_none")]
    pub nb_of_txs: Option<String>,
    /// `SttlmInf` (pacs.008, pacs.004).
    #[serde(rename = "SttlmInf", default, skip_serializing_if = "Option::is_none")]
    pub sttlm_inf: Option<Iso20022SttlmInf>,
}

/// A reason: `Rsn/Cd` (an ISO external code) or `Rsn/Prtry` (ours).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022Rsn {
    /// `Cd`.
    #[serde(rename = "Cd", default, skip_serializing_if = "Option::is_none")]
    pub cd: Option<String>,
    /// `Prtry`.
    #[serde(rename = "Prtry", default, skip_serializing_if = "Option::is_none")]
    pub prtry: Option<String>,
}

impl Iso20022Rsn {
    /// The code, whichever form it has.
    pub fn code(&self) -> Option<&str> {
        self.cd.as_deref().or(self.prtry.as_deref())
    }
}

/// `StsRsnInf`, `CxlStsRsnInf`, `RtrRsnInf`, `CxlRsnInf`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022RsnInf {
    /// `Rsn`.
    #[serde(rename = "Rsn", default, skip_serializing_if = "Option::is_none")]
    pub rsn: Option<Iso20022Rsn>,
    /// `AddtlInf`.
    #[serde(rename = "AddtlInf", default, skip_serializing_if = "Option::is_none")]
    pub addtl_inf: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// pacs.008

/// `Document` of a pacs.008.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Pacs008 {
    /// `xmlns` (checked by [`screen`]).
    #[serde(rename = "@xmlns", default)]
    pub xmlns: String,
    /// `FIToFICstmrCdtTrf`.
    #[serde(rename = "FIToFICstmrCdtTrf")]
    pub transfer: Iso20022CdtTrf,
}

/// `FIToFICstmrCdtTrf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022CdtTrf {
    /// `GrpHdr`.
    #[serde(rename = "GrpHdr")]
    pub grp_hdr: Iso20022GrpHdr,
    /// `CdtTrfTxInf` (exactly one in our profile).
    #[serde(rename = "CdtTrfTxInf", default)]
    pub tx: Vec<Iso20022CdtTrfTxInf>,
}

/// `PmtId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022PmtId {
    /// `InstrId`.
    #[serde(rename = "InstrId", default, skip_serializing_if = "Option::is_none")]
    pub instr_id: Option<String>,
    /// `EndToEndId`.
    #[serde(rename = "EndToEndId")]
    pub end_to_end_id: String,
    /// `TxId`.
    #[serde(rename = "TxId", default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<String>,
    /// `UETR`.
    #[serde(rename = "UETR")]
    pub uetr: String,
}

/// `Strd` remittance information.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022Strd {
    /// `AddtlRmtInf` (up to three).
    #[serde(rename = "AddtlRmtInf", default)]
    pub addtl_rmt_inf: Vec<String>,
}

/// `RmtInf`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Iso20022RmtInf {
    /// `Ustrd`.
    #[serde(rename = "Ustrd", default)]
    pub ustrd: Vec<String>,
    /// `Strd`.
    #[serde(rename = "Strd", default)]
    pub strd: Vec<Iso20022Strd>,
}

/// `CdtTrfTxInf`: the one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022CdtTrfTxInf {
    /// `PmtId`.
    #[serde(rename = "PmtId")]
    pub pmt_id: Iso20022PmtId,
    /// `IntrBkSttlmAmt`: what the merchant receives (merchant currency).
    #[serde(rename = "IntrBkSttlmAmt")]
    pub intr_bk_sttlm_amt: Iso20022Amount,
    /// `AccptncDtTm`: when the payer accepted the quote.
    #[serde(rename = "AccptncDtTm")]
    pub accptnc_dt_tm: String,
    /// `InstdAmt`: what the payer pays (payer currency).
    #[serde(rename = "InstdAmt")]
    pub instd_amt: Iso20022Amount,
    /// `XchgRate`: the quoted rate.
    #[serde(rename = "XchgRate")]
    pub xchg_rate: String,
    /// `ChrgBr`.
    #[serde(rename = "ChrgBr")]
    pub chrg_br: String,
    /// `Dbtr`.
    #[serde(rename = "Dbtr")]
    pub dbtr: Iso20022Party,
    /// `DbtrAcct`: `Id/Othr/Id` is the payer's id at the wallet.
    #[serde(rename = "DbtrAcct")]
    pub dbtr_acct: Iso20022Account,
    /// `DbtrAgt`.
    #[serde(rename = "DbtrAgt")]
    pub dbtr_agt: Iso20022Agent,
    /// `CdtrAgt`.
    #[serde(rename = "CdtrAgt")]
    pub cdtr_agt: Iso20022Agent,
    /// `Cdtr`: the merchant's name as quoted.
    #[serde(rename = "Cdtr")]
    pub cdtr: Iso20022Party,
    /// `CdtrAcct`: `Id/Othr/Id` is the merchant account from the QR code as quoted.
    #[serde(rename = "CdtrAcct")]
    pub cdtr_acct: Iso20022Account,
    /// `RmtInf`: carries `QUOTE/<quoteId>`.
    #[serde(rename = "RmtInf", default)]
    pub rmt_inf: Iso20022RmtInf,
}

/// A quote's terms as the scheme gave them to the wallet; a pacs.008 naming the quote must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022Terms {
    /// Merchant currency.
    pub merchant_amount: Amount,
    /// Payer currency.
    pub payer_amount: Amount,
    /// The quoted `exchangeRate` (payer units per merchant unit).
    pub rate: Decimal,
    /// The BaseOneRate in the source direction (merchant units per payer unit), for Nexus-profile
    /// documents; `None` when no such rate gives the merchant amount back.
    pub source_rate: Option<Decimal>,
    /// The creditor account (merchant id from the QR).
    pub account: String,
    /// The creditor name.
    pub name: String,
}

/// A validated pacs.008: the canonical pay and what it must agree with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022Payment {
    /// `GrpHdr/MsgId`.
    pub msg_id: String,
    /// `PmtId/EndToEndId`.
    pub end_to_end_id: String,
    /// `PmtId/UETR`: the canonical payment request id.
    pub uetr: RequestId,
    /// `AccptncDtTm`, verbatim.
    pub accepted_at: String,
    /// The quote id from `RmtInf`.
    pub quote_id: RequestId,
    /// `DbtrAcct/Id/Othr/Id`.
    pub customer_id: CustomerId,
    /// `IntrBkSttlmAmt`.
    pub settlement: Amount,
    /// `InstdAmt`.
    pub instructed: Amount,
    /// `XchgRate`.
    pub rate: Decimal,
    /// `CdtrAcct/Id/Othr/Id`.
    pub creditor_account: String,
    /// `Cdtr/Nm`.
    pub creditor_name: String,
}

const TX: &str = "FIToFICstmrCdtTrf/CdtTrfTxInf";

impl TryFrom<Iso20022Pacs008> for Iso20022Payment {
    type Error = Iso20022Fault;
    fn try_from(doc: Iso20022Pacs008) -> Result<Self, Iso20022Fault> {
        let t = doc.transfer;
        let hdr = "FIToFICstmrCdtTrf/GrpHdr";
        let msg_id = max35(&t.grp_hdr.msg_id, &format!("{hdr}/MsgId"))?;
        date_time(&t.grp_hdr.cre_dt_tm, &format!("{hdr}/CreDtTm"))?;
        match t.grp_hdr.nb_of_txs.as_deref() {
            Some("1") => {}
            Some(n) => {
                return Err(Iso20022Fault::format(
                    format!("{hdr}/NbOfTxs"),
                    format!("must be 1 (one transaction per message), got {n:?}"),
                ));
            }
            None => return Err(Iso20022Fault::format(format!("{hdr}/NbOfTxs"), "missing")),
        }
        match &t.grp_hdr.sttlm_inf {
            Some(s) if s.sttlm_mtd == "CLRG" => {}
            Some(s) => {
                return Err(Iso20022Fault::content(
                    format!("{hdr}/SttlmInf/SttlmMtd"),
                    format!("must be CLRG, got {:?}", s.sttlm_mtd),
                ));
            }
            None => return Err(Iso20022Fault::format(format!("{hdr}/SttlmInf"), "missing")),
        }
        let Some(tx) = exactly_one(t.tx) else {
            return Err(Iso20022Fault::format(
                TX,
                "exactly one CdtTrfTxInf is required",
            ));
        };
        let end_to_end_id = max35(&tx.pmt_id.end_to_end_id, &format!("{TX}/PmtId/EndToEndId"))?;
        let uetr = uetr(&tx.pmt_id.uetr, &format!("{TX}/PmtId/UETR"))?;
        let settlement = tx
            .intr_bk_sttlm_amt
            .to_amount(&format!("{TX}/IntrBkSttlmAmt"))?;
        let instructed = tx.instd_amt.to_amount(&format!("{TX}/InstdAmt"))?;
        date_time(&tx.accptnc_dt_tm, &format!("{TX}/AccptncDtTm"))?;
        let rate = rate(&tx.xchg_rate, &format!("{TX}/XchgRate"))?;
        if !matches!(tx.chrg_br.as_str(), "DEBT" | "CRED" | "SHAR" | "SLEV") {
            return Err(Iso20022Fault::content(
                format!("{TX}/ChrgBr"),
                format!("must be DEBT, CRED, SHAR or SLEV, got {:?}", tx.chrg_br),
            ));
        }
        let customer_id = CustomerId::new(tx.dbtr_acct.id.othr.id.clone())
            .map_err(|e| Iso20022Fault::content(format!("{TX}/DbtrAcct/Id/Othr/Id"), e))?;
        let creditor_account = tx.cdtr_acct.id.othr.id.clone();
        if creditor_account.is_empty() {
            return Err(Iso20022Fault::content(
                format!("{TX}/CdtrAcct/Id/Othr/Id"),
                "empty",
            ));
        }
        let creditor_name = match tx.cdtr.nm {
            Some(n) if !n.is_empty() => n,
            _ => return Err(Iso20022Fault::format(format!("{TX}/Cdtr/Nm"), "missing")),
        };
        let quote_id = quote_reference(&tx.rmt_inf)?;
        Ok(Iso20022Payment {
            msg_id,
            end_to_end_id,
            uetr,
            accepted_at: tx.accptnc_dt_tm,
            quote_id,
            customer_id,
            settlement,
            instructed,
            rate,
            creditor_account,
            creditor_name,
        })
    }
}

impl Iso20022Payment {
    /// Checks the transaction against the quote's terms in `profile`'s directions; the first
    /// disagreement is the refusal.
    pub fn agrees_with(
        &self,
        terms: &Iso20022Terms,
        profile: Iso20022Profile,
    ) -> Result<(), Iso20022Fault> {
        let amount = |path: &str, got: Amount, want: Amount| {
            if got.currency() != want.currency() {
                return Err(Iso20022Fault::terms(
                    "AM03",
                    format!("{TX}/{path}/@Ccy"),
                    format!(
                        "the quote is in {}, got {}",
                        want.currency(),
                        got.currency()
                    ),
                ));
            }
            if got != want {
                return Err(Iso20022Fault::terms(
                    "AM09",
                    format!("{TX}/{path}"),
                    format!(
                        "the quote says {}, got {}",
                        want.to_decimal_string(),
                        got.to_decimal_string()
                    ),
                ));
            }
            Ok(())
        };
        let (settlement, rate) = match profile {
            Iso20022Profile::Cbpr => (terms.merchant_amount, Some(terms.rate)),
            Iso20022Profile::Nexus => (terms.payer_amount, terms.source_rate),
        };
        amount("IntrBkSttlmAmt", self.settlement, settlement)?;
        amount("InstdAmt", self.instructed, terms.payer_amount)?;
        if Some(self.rate) != rate {
            return Err(Iso20022Fault::terms(
                "AM09",
                format!("{TX}/XchgRate"),
                format!(
                    "the quote's rate is {}, got {}",
                    rate.map_or_else(|| "not expressible".to_owned(), |r| r.to_string()),
                    self.rate
                ),
            ));
        }
        if self.creditor_account != terms.account {
            return Err(Iso20022Fault::terms(
                "AC03",
                format!("{TX}/CdtrAcct/Id/Othr/Id"),
                format!(
                    "the quoted merchant account is {:?}, got {:?}",
                    terms.account, self.creditor_account
                ),
            ));
        }
        if self.creditor_name != terms.name {
            return Err(Iso20022Fault::terms(
                "BE01",
                format!("{TX}/Cdtr/Nm"),
                format!(
                    "the quoted merchant is {:?}, got {:?}",
                    terms.name, self.creditor_name
                ),
            ));
        }
        Ok(())
    }

    /// What the gateway journals with the payment for its notifications.
    pub fn scheme_ref(&self, profile: Iso20022Profile) -> String {
        Iso20022Ref {
            msg_id: self.msg_id.clone(),
            msg_nm_id: profile.pacs008_message().to_owned(),
            end_to_end_id: Some(self.end_to_end_id.clone()),
            uetr: self.uetr.as_str().to_owned(),
            rtr_id: None,
        }
        .to_json()
    }
}

fn quote_reference(rmt: &Iso20022RmtInf) -> Result<RequestId, Iso20022Fault> {
    let path = format!("{TX}/RmtInf/Strd/AddtlRmtInf");
    let found = rmt
        .strd
        .iter()
        .flat_map(|s| s.addtl_rmt_inf.iter())
        .filter_map(|s| s.strip_prefix(QUOTE_PREFIX));
    let Some(id) = exactly_one(found) else {
        return Err(Iso20022Fault::format(
            path,
            format!("exactly one {QUOTE_PREFIX}<quoteId> is required"),
        ));
    };
    RequestId::new(id).map_err(|e| Iso20022Fault::content(path, format!("quote id: {e}")))
}

/// What the scheme keeps with a payment or return (JSON in `scheme_ref`): the original message and
/// transaction identification for its notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Iso20022Ref {
    /// The original `GrpHdr/MsgId`.
    pub msg_id: String,
    /// `pacs.008.001.08` or `pacs.004.001.09`.
    pub msg_nm_id: String,
    /// The original `EndToEndId` (pacs.008).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end_id: Option<String>,
    /// The payment's UETR.
    pub uetr: String,
    /// The return's `RtrId` (pacs.004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtr_id: Option<String>,
}

impl Iso20022Ref {
    /// As journaled.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a journaled reference; `None` when absent or not ours.
    pub fn from_json(s: Option<&str>) -> Option<Self> {
        serde_json::from_str(s?).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Field checks.

fn max35(s: &str, path: &str) -> Result<String, Iso20022Fault> {
    let n = s.chars().count();
    if n == 0 || n > 35 || s.chars().any(char::is_control) {
        return Err(Iso20022Fault::content(
            path,
            format!("must be 1 to 35 characters without control characters, got {n}"),
        ));
    }
    Ok(s.to_owned())
}

/// A UETR: a UUID version 4 in lower-case hyphenated form (the ISO 20022 `UUIDv4Identifier`).
pub fn uetr(s: &str, path: &str) -> Result<RequestId, Iso20022Fault> {
    let ok = uuid::Uuid::try_parse(s).is_ok_and(|u| {
        u.get_version_num() == 4
            && u.get_variant() == uuid::Variant::RFC4122
            && u.hyphenated().to_string() == s
    });
    if !ok {
        return Err(Iso20022Fault::content(
            path,
            format!(
                "must be a version 4 UUID in lower case (xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx), got {:?}",
                excerpt(s)
            ),
        ));
    }
    RequestId::new(s).map_err(|e| Iso20022Fault::content(path, e))
}

/// An ISO date-time (`ISODateTime`): `YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]`, a real calendar date
/// and time of day (the time leaf's [`Syntax::ISO_DATE_TIME`]).
pub fn date_time(s: &str, path: &str) -> Result<(), Iso20022Fault> {
    match parse_date_time(s, Syntax::ISO_DATE_TIME) {
        Some(_) => Ok(()),
        None => Err(Iso20022Fault::content(
            path,
            format!(
                "must be an ISO date-time like 2026-11-21T10:40:00Z, got {:?}",
                excerpt(s)
            ),
        )),
    }
}

/// A positive decimal rate: digits with at most one '.', no sign or exponent.
pub fn rate(s: &str, path: &str) -> Result<Decimal, Iso20022Fault> {
    let bad = |why: &str| Iso20022Fault::content(path, format!("{why}, got {:?}", excerpt(s)));
    let mut parts = s.split('.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    if parts.next().is_some()
        || int.is_empty()
        || frac.is_some_and(str::is_empty)
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !frac.unwrap_or("").bytes().all(|c| c.is_ascii_digit())
    {
        return Err(bad(
            "must be a decimal number like 3.2336 (digits, at most one '.')",
        ));
    }
    if int.len() + frac.map_or(0, str::len) > 18 {
        return Err(bad("more than 18 digits"));
    }
    let d = Decimal::from_str(s).map_err(|_| bad("not a decimal number"))?;
    if d.is_zero() {
        return Err(bad("must be greater than zero"));
    }
    if !crate::fx::fits_base_one_rate(d) {
        return Err(bad(
            "not a BaseOneRate (at most 11 digits, at most 10 of them after the point)",
        ));
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// pacs.028, camt.056 (inbound).

/// `Document` of a pacs.028.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Pacs028 {
    /// `FIToFIPmtStsReq`.
    #[serde(rename = "FIToFIPmtStsReq")]
    pub request: Iso20022StsReq,
}

/// `FIToFIPmtStsReq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022StsReq {
    /// `GrpHdr`.
    #[serde(rename = "GrpHdr")]
    pub grp_hdr: Iso20022GrpHdr,
    /// `TxInf` (exactly one).
    #[serde(rename = "TxInf", default)]
    pub tx: Vec<Iso20022OrgnlTx>,
}

/// `OrgnlGrpInf` (of a pacs.028 / camt.056 transaction, and of a pacs.004 return).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022OrgnlGrpInf {
    /// `OrgnlMsgId`.
    #[serde(rename = "OrgnlMsgId")]
    pub orgnl_msg_id: String,
    /// `OrgnlMsgNmId`.
    #[serde(rename = "OrgnlMsgNmId")]
    pub orgnl_msg_nm_id: String,
}

/// A transaction reference to an original pacs.008 (`TxInf` of pacs.028 / camt.056).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022OrgnlTx {
    /// `CxlId` (camt.056).
    #[serde(rename = "CxlId", default, skip_serializing_if = "Option::is_none")]
    pub cxl_id: Option<String>,
    /// `OrgnlGrpInf`.
    #[serde(
        rename = "OrgnlGrpInf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_grp_inf: Option<Iso20022OrgnlGrpInf>,
    /// `OrgnlEndToEndId`.
    #[serde(
        rename = "OrgnlEndToEndId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_end_to_end_id: Option<String>,
    /// `OrgnlUETR`: the payment.
    #[serde(rename = "OrgnlUETR")]
    pub orgnl_uetr: String,
    /// `CxlRsnInf` (camt.056).
    #[serde(rename = "CxlRsnInf", default, skip_serializing_if = "Option::is_none")]
    pub cxl_rsn_inf: Option<Iso20022RsnInf>,
}

/// A validated pacs.028: which payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022StatusRequest {
    /// `GrpHdr/MsgId`.
    pub msg_id: String,
    /// `TxInf/OrgnlUETR`.
    pub uetr: RequestId,
    /// `TxInf/OrgnlGrpInf/OrgnlMsgId`, when given.
    pub orgnl_msg_id: Option<String>,
    /// `TxInf/OrgnlEndToEndId`, when given.
    pub orgnl_end_to_end_id: Option<String>,
}

/// The one item, or `None` when there are none or several.
fn exactly_one<I: IntoIterator>(items: I) -> Option<I::Item> {
    let mut it = items.into_iter();
    match (it.next(), it.next()) {
        (Some(item), None) => Some(item),
        _ => None,
    }
}

fn one_tx(txs: Vec<Iso20022OrgnlTx>, path: &str) -> Result<Iso20022OrgnlTx, Iso20022Fault> {
    exactly_one(txs).ok_or_else(|| Iso20022Fault::format(path, "exactly one is required"))
}

impl TryFrom<Iso20022Pacs028> for Iso20022StatusRequest {
    type Error = Iso20022Fault;
    fn try_from(doc: Iso20022Pacs028) -> Result<Self, Iso20022Fault> {
        let r = doc.request;
        let msg_id = max35(&r.grp_hdr.msg_id, "FIToFIPmtStsReq/GrpHdr/MsgId")?;
        date_time(&r.grp_hdr.cre_dt_tm, "FIToFIPmtStsReq/GrpHdr/CreDtTm")?;
        let tx = one_tx(r.tx, "FIToFIPmtStsReq/TxInf")?;
        Ok(Iso20022StatusRequest {
            msg_id,
            uetr: uetr(&tx.orgnl_uetr, "FIToFIPmtStsReq/TxInf/OrgnlUETR")?,
            orgnl_msg_id: tx.orgnl_grp_inf.map(|g| g.orgnl_msg_id),
            orgnl_end_to_end_id: tx.orgnl_end_to_end_id,
        })
    }
}

/// `Document` of a camt.056.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Camt056 {
    /// `FIToFIPmtCxlReq`.
    #[serde(rename = "FIToFIPmtCxlReq")]
    pub request: Iso20022CxlReq,
}

/// `Assgnmt` (`CaseAssignment5`): all four elements are mandatory in the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Assgnmt {
    /// `Id`.
    #[serde(rename = "Id")]
    pub id: String,
    /// `Assgnr`: who assigns the case (the sender of the message).
    #[serde(rename = "Assgnr")]
    pub assgnr: Iso20022PartyOrAgent,
    /// `Assgne`: to whom (the receiver).
    #[serde(rename = "Assgne")]
    pub assgne: Iso20022PartyOrAgent,
    /// `CreDtTm`.
    #[serde(rename = "CreDtTm")]
    pub cre_dt_tm: String,
}

/// `Undrlyg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Undrlyg {
    /// `TxInf` (exactly one).
    #[serde(rename = "TxInf", default)]
    pub tx: Vec<Iso20022OrgnlTx>,
}

/// `FIToFIPmtCxlReq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022CxlReq {
    /// `Assgnmt`.
    #[serde(rename = "Assgnmt")]
    pub assgnmt: Iso20022Assgnmt,
    /// `Undrlyg`.
    #[serde(rename = "Undrlyg")]
    pub undrlyg: Iso20022Undrlyg,
}

/// A validated camt.056: which payment to cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022CancelRequest {
    /// `Assgnmt/Id`.
    pub assignment_id: String,
    /// `Assgnmt/Assgnr`: the wallet's side (the camt.029 is assigned back to it).
    pub assigner: Iso20022PartyOrAgent,
    /// `Assgnmt/Assgne`: us, as the wallet names us (the camt.029's assigner).
    pub assignee: Iso20022PartyOrAgent,
    /// `TxInf/CxlId`, when given.
    pub cxl_id: Option<String>,
    /// `TxInf/OrgnlUETR`.
    pub uetr: RequestId,
    /// `TxInf/OrgnlEndToEndId`, when given.
    pub orgnl_end_to_end_id: Option<String>,
}

impl TryFrom<Iso20022Camt056> for Iso20022CancelRequest {
    type Error = Iso20022Fault;
    fn try_from(doc: Iso20022Camt056) -> Result<Self, Iso20022Fault> {
        let r = doc.request;
        let assignment_id = max35(&r.assgnmt.id, "FIToFIPmtCxlReq/Assgnmt/Id")?;
        r.assgnmt.assgnr.check("FIToFIPmtCxlReq/Assgnmt/Assgnr")?;
        r.assgnmt.assgne.check("FIToFIPmtCxlReq/Assgnmt/Assgne")?;
        date_time(&r.assgnmt.cre_dt_tm, "FIToFIPmtCxlReq/Assgnmt/CreDtTm")?;
        let tx = one_tx(r.undrlyg.tx, "FIToFIPmtCxlReq/Undrlyg/TxInf")?;
        Ok(Iso20022CancelRequest {
            assignment_id,
            assigner: r.assgnmt.assgnr,
            assignee: r.assgnmt.assgne,
            cxl_id: tx.cxl_id,
            uetr: uetr(&tx.orgnl_uetr, "FIToFIPmtCxlReq/Undrlyg/TxInf/OrgnlUETR")?,
            orgnl_end_to_end_id: tx.orgnl_end_to_end_id,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Status and reason codes.

/// `TxSts` / `GrpSts` values this scheme sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iso20022TxSts {
    /// Settlement completed: the acquirer approved.
    Accc,
    /// Rejected: nothing was charged (or it was undone).
    Rjct,
    /// Pending, outcome not known yet (U): query with a pacs.028 or wait for the notification.
    Pdng,
}

impl Iso20022TxSts {
    /// The code.
    pub fn as_str(self) -> &'static str {
        match self {
            Iso20022TxSts::Accc => "ACCC",
            Iso20022TxSts::Rjct => "RJCT",
            Iso20022TxSts::Pdng => "PDNG",
        }
    }
}

/// A status reason: an ISO 20022 external code (`Rsn/Cd`) or one of ours (`Rsn/Prtry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iso20022Reason {
    /// `Rsn/Cd`: a code of the ISO external code set the element names (spec §10).
    Code(&'static str),
    /// `Rsn/Prtry`: our extension, a Wallet API result code (or a finer one of ours).
    Proprietary(&'static str),
}

impl Iso20022Reason {
    /// The code text.
    pub fn as_str(self) -> &'static str {
        match self {
            Iso20022Reason::Code(c) | Iso20022Reason::Proprietary(c) => c,
        }
    }

    fn to_rsn(self) -> Iso20022Rsn {
        match self {
            Iso20022Reason::Code(c) => Iso20022Rsn {
                cd: Some(c.to_owned()),
                prtry: None,
            },
            Iso20022Reason::Proprietary(p) => Iso20022Rsn {
                cd: None,
                prtry: Some(p.to_owned()),
            },
        }
    }
}

/// The reason code for an acquirer decline (ISO 8583 DE39).
pub fn decline_reason(response_code: &str) -> Iso20022Reason {
    match response_code {
        "51" => Iso20022Reason::Code("AM04"),
        "05" | "57" | "62" => Iso20022Reason::Code("AG01"),
        "14" => Iso20022Reason::Code("AC01"),
        "13" => Iso20022Reason::Code("AM12"),
        "61" | "65" => Iso20022Reason::Code("AM02"),
        "91" | "96" => Iso20022Reason::Code("AB09"),
        _ => Iso20022Reason::Code("MS03"),
    }
}

/// Reversed after an unknown outcome (acquirer timeout): settlement aborted on time-out.
pub const REASON_REVERSED: Iso20022Reason = Iso20022Reason::Code("AB03");
/// Cancelled by the wallet's camt.056.
pub const REASON_CANCELLED: Iso20022Reason = Iso20022Reason::Code("FOCR");

/// The status and reason for every canonical error (the table of `spec/schemes/iso20022.md`).
pub fn reason_for(error: &ApiError) -> (Iso20022TxSts, Iso20022Reason) {
    use Iso20022Reason::{Code, Proprietary};
    use Iso20022TxSts::{Pdng, Rjct};
    match error {
        ApiError::ParamIllegal { .. } => (Rjct, Code("FF01")),
        ApiError::AccessDenied { .. } => (Rjct, Code("AG01")),
        ApiError::InvalidSignature(AuthFault::StaleRequestTime { .. }) => {
            (Rjct, Proprietary("STALE_REQUEST_TIME"))
        }
        ApiError::InvalidSignature(
            AuthFault::MissingHeader(_)
            | AuthFault::MalformedHeader { .. }
            | AuthFault::UnknownClient(_)
            | AuthFault::UnknownKey { .. }
            | AuthFault::Mismatch
            | AuthFault::Replayed,
        ) => (Rjct, Proprietary("INVALID_SIGNATURE")),
        // Turned into ApiError::Unavailable by From<AuthFault>; mapped as that is.
        ApiError::InvalidSignature(AuthFault::ReplayMemoryFull) => {
            (Rjct, Proprietary("SERVICE_UNAVAILABLE"))
        }
        ApiError::RepeatRequestInconsistent { .. } => (Rjct, Code("AM05")),
        ApiError::RetryLater { .. } => (Pdng, Proprietary("RETRY_LATER")),
        ApiError::QrInvalid { .. } => (Rjct, Proprietary("QR_INVALID")),
        ApiError::QrNotSupported { .. } => (Rjct, Code("AG03")),
        ApiError::MerchantNotRoutable { .. } => (Rjct, Code("CNOR")),
        ApiError::QuoteExpired { .. } => (Rjct, Proprietary("QUOTE_EXPIRED")),
        ApiError::QuoteConsumed { .. } => (Rjct, Code("DUPL")),
        ApiError::RateUnavailable { .. } => (Rjct, Proprietary("RATE_UNAVAILABLE")),
        ApiError::AmountExceedLimit { .. } => (Rjct, Code("AM02")),
        ApiError::AcquirerDeclined { response_code } => (Rjct, decline_reason(response_code)),
        ApiError::AcquirerTimeout { .. } => (Pdng, Proprietary("ACQUIRER_TIMEOUT")),
        ApiError::CancelWindowExceed { .. } => (Rjct, Code("TM01")),
        ApiError::RefundAmountExceed { .. } => (Rjct, Code("AM09")),
        ApiError::OrderNotFound {
            what: "payment", ..
        } => (Rjct, Code("AG09")),
        ApiError::OrderNotFound { .. } => (Rjct, Proprietary("ORDER_NOT_FOUND")),
        ApiError::RequestTooLarge { .. } => (Rjct, Proprietary("REQUEST_TOO_LARGE")),
        ApiError::RequestTimeout { .. } => (Rjct, Proprietary("REQUEST_TIMEOUT")),
        ApiError::NotFound { .. } => (Rjct, Proprietary("NOT_FOUND")),
        ApiError::MethodNotAllowed { .. } => (Rjct, Proprietary("METHOD_NOT_ALLOWED")),
        ApiError::Unavailable { .. } => (Rjct, Proprietary("SERVICE_UNAVAILABLE")),
        ApiError::Unknown { .. } => (Pdng, Proprietary("UNKNOWN_EXCEPTION")),
    }
}

/// A payment's status as `TxSts` and reason (no reason for ACCC and plain PDNG).
pub fn payment_status(p: &PaymentResponse) -> (Iso20022TxSts, Option<Iso20022Reason>) {
    match p.payment_status {
        PaymentStatus::Success => (Iso20022TxSts::Accc, None),
        PaymentStatus::Fail => (
            Iso20022TxSts::Rjct,
            Some(
                p.acquirer
                    .as_ref()
                    .map_or(Iso20022Reason::Code("MS03"), |a| {
                        decline_reason(&a.response_code)
                    }),
            ),
        ),
        PaymentStatus::Processing => (Iso20022TxSts::Pdng, None),
        PaymentStatus::Reversed => (Iso20022TxSts::Rjct, Some(REASON_REVERSED)),
        PaymentStatus::Cancelled => (Iso20022TxSts::Rjct, Some(REASON_CANCELLED)),
    }
}

/// A refund's status as `TxSts` and reason.
pub fn refund_status(r: &RefundResponse) -> (Iso20022TxSts, Option<Iso20022Reason>) {
    match r.refund_status {
        RefundStatus::Success => (Iso20022TxSts::Accc, None),
        RefundStatus::Fail => (Iso20022TxSts::Rjct, Some(Iso20022Reason::Code("MS03"))),
        RefundStatus::Processing => (Iso20022TxSts::Pdng, None),
    }
}

// ---------------------------------------------------------------------------------------------
// pacs.002 (outbound).

/// `Document` of a pacs.002.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Pacs002 {
    /// `xmlns`.
    #[serde(rename = "@xmlns", default)]
    pub xmlns: String,
    /// `FIToFIPmtStsRpt`.
    #[serde(rename = "FIToFIPmtStsRpt")]
    pub report: Iso20022StsRpt,
}

/// The group header of a report: `MsgId`, `CreDtTm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022RptHdr {
    /// `MsgId`.
    #[serde(rename = "MsgId")]
    pub msg_id: String,
    /// `CreDtTm`.
    #[serde(rename = "CreDtTm")]
    pub cre_dt_tm: String,
}

/// `FIToFIPmtStsRpt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022StsRpt {
    /// `GrpHdr`.
    #[serde(rename = "GrpHdr")]
    pub grp_hdr: Iso20022RptHdr,
    /// `OrgnlGrpInfAndSts`.
    #[serde(rename = "OrgnlGrpInfAndSts")]
    pub orgnl_grp_inf_and_sts: Iso20022OrgnlGrpInfAndSts,
    /// `TxInfAndSts` (absent for a group-level refusal).
    #[serde(
        rename = "TxInfAndSts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tx_inf_and_sts: Option<Iso20022TxInfAndSts>,
}

/// `OrgnlGrpInfAndSts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022OrgnlGrpInfAndSts {
    /// `OrgnlMsgId`.
    #[serde(rename = "OrgnlMsgId")]
    pub orgnl_msg_id: String,
    /// `OrgnlMsgNmId`.
    #[serde(rename = "OrgnlMsgNmId")]
    pub orgnl_msg_nm_id: String,
    /// `GrpSts` (group-level refusals only).
    #[serde(rename = "GrpSts", default, skip_serializing_if = "Option::is_none")]
    pub grp_sts: Option<String>,
    /// `StsRsnInf` (group-level refusals only).
    #[serde(rename = "StsRsnInf", default, skip_serializing_if = "Option::is_none")]
    pub sts_rsn_inf: Option<Iso20022RsnInf>,
}

/// `OrgnlTxRef`: the amount the status is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022OrgnlTxRef {
    /// `IntrBkSttlmAmt`.
    #[serde(rename = "IntrBkSttlmAmt")]
    pub intr_bk_sttlm_amt: Iso20022Amount,
}

/// `TxInfAndSts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022TxInfAndSts {
    /// `OrgnlInstrId`: a return's `RtrId`.
    #[serde(
        rename = "OrgnlInstrId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_instr_id: Option<String>,
    /// `OrgnlEndToEndId`.
    #[serde(
        rename = "OrgnlEndToEndId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_end_to_end_id: Option<String>,
    /// `OrgnlUETR`.
    #[serde(rename = "OrgnlUETR", default, skip_serializing_if = "Option::is_none")]
    pub orgnl_uetr: Option<String>,
    /// `TxSts`.
    #[serde(rename = "TxSts")]
    pub tx_sts: String,
    /// `StsRsnInf`.
    #[serde(rename = "StsRsnInf", default, skip_serializing_if = "Option::is_none")]
    pub sts_rsn_inf: Option<Iso20022RsnInf>,
    /// `AccptncDtTm`.
    #[serde(
        rename = "AccptncDtTm",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub accptnc_dt_tm: Option<String>,
    /// `ClrSysRef`: our payment (or refund) id without hyphens.
    #[serde(rename = "ClrSysRef", default, skip_serializing_if = "Option::is_none")]
    pub clr_sys_ref: Option<String>,
    /// `OrgnlTxRef`.
    #[serde(
        rename = "OrgnlTxRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_tx_ref: Option<Iso20022OrgnlTxRef>,
}

/// Which original a transaction status is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022Original {
    /// `OrgnlMsgId`.
    pub msg_id: String,
    /// `OrgnlMsgNmId`.
    pub msg_nm_id: &'static str,
    /// `OrgnlInstrId` (a return's `RtrId`).
    pub instr_id: Option<String>,
    /// `OrgnlEndToEndId`.
    pub end_to_end_id: Option<String>,
    /// `OrgnlUETR`.
    pub uetr: Option<String>,
}

impl Iso20022Original {
    /// From a journaled [`Iso20022Ref`]; `fallback_uetr` when there is none.
    pub fn from_ref(r: Option<Iso20022Ref>, fallback_uetr: &str, msg_nm_id: &'static str) -> Self {
        match r {
            Some(r) => Iso20022Original {
                msg_id: r.msg_id,
                msg_nm_id,
                instr_id: r.rtr_id,
                end_to_end_id: r.end_to_end_id,
                uetr: Some(r.uetr),
            },
            None => Iso20022Original {
                msg_id: NOT_PROVIDED.to_owned(),
                msg_nm_id,
                instr_id: None,
                end_to_end_id: None,
                uetr: Some(fallback_uetr.to_owned()),
            },
        }
    }
}

/// A transaction status to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022Status {
    /// `TxSts`.
    pub tx_sts: Iso20022TxSts,
    /// `StsRsnInf/Rsn`.
    pub reason: Option<Iso20022Reason>,
    /// `StsRsnInf/AddtlInf`.
    pub info: Option<String>,
    /// `AccptncDtTm`.
    pub accepted_at: Option<String>,
    /// `ClrSysRef` (our id; hyphens are removed to fit 35 characters).
    pub reference: Option<String>,
    /// `OrgnlTxRef/IntrBkSttlmAmt`.
    pub amount: Option<Amount>,
}

/// `GrpHdr/MsgId` of a report: `QRB` and 32 hex digits of a SHA-256 over what it says, so the same
/// answer always has the same id.
pub fn report_msg_id(parts: &[&str]) -> String {
    let digest = body_digest(parts.join("\n").as_bytes());
    format!("QRB{}", &digest[..32])
}

/// `Rsn` and `AddtlInf` (cut to its 105 characters, `Max105Text`); `None` when neither is given.
fn rsn_inf(reason: Option<Iso20022Reason>, info: Option<String>) -> Option<Iso20022RsnInf> {
    if reason.is_none() && info.is_none() {
        return None;
    }
    Some(Iso20022RsnInf {
        rsn: reason.map(Iso20022Reason::to_rsn),
        addtl_inf: info.map(|s| s.chars().take(105).collect()),
    })
}

/// Renders a pacs.002 reporting `status` of `original`, created at `created_at`.
pub fn render_pacs002(
    original: &Iso20022Original,
    status: &Iso20022Status,
    created_at: &str,
) -> Result<Vec<u8>, ApiError> {
    let msg_id = report_msg_id(&[
        &original.msg_id,
        original.uetr.as_deref().unwrap_or(""),
        original.instr_id.as_deref().unwrap_or(""),
        status.tx_sts.as_str(),
        status.reason.map_or("", Iso20022Reason::as_str),
        status.reference.as_deref().unwrap_or(""),
    ]);
    let doc = Iso20022Pacs002 {
        xmlns: pacs002_namespace(original.msg_nm_id).to_owned(),
        report: Iso20022StsRpt {
            grp_hdr: Iso20022RptHdr {
                msg_id,
                cre_dt_tm: created_at.to_owned(),
            },
            orgnl_grp_inf_and_sts: Iso20022OrgnlGrpInfAndSts {
                orgnl_msg_id: original.msg_id.clone(),
                orgnl_msg_nm_id: original.msg_nm_id.to_owned(),
                grp_sts: None,
                sts_rsn_inf: None,
            },
            tx_inf_and_sts: Some(Iso20022TxInfAndSts {
                orgnl_instr_id: original.instr_id.clone(),
                orgnl_end_to_end_id: original.end_to_end_id.clone(),
                orgnl_uetr: original.uetr.clone(),
                tx_sts: status.tx_sts.as_str().to_owned(),
                sts_rsn_inf: rsn_inf(status.reason, status.info.clone()),
                accptnc_dt_tm: status.accepted_at.clone(),
                clr_sys_ref: status.reference.as_deref().map(|r| r.replace('-', "")),
                orgnl_tx_ref: status.amount.map(|a| Iso20022OrgnlTxRef {
                    intr_bk_sttlm_amt: a.into(),
                }),
            }),
        },
    };
    render_document(&doc)
}

/// Renders a group-level refusal (the document could not be read or authenticated).
pub fn render_group_refusal(
    msg_nm_id: &str,
    reason: Iso20022Reason,
    info: &str,
    created_at: &str,
) -> Result<Vec<u8>, ApiError> {
    let doc = Iso20022Pacs002 {
        xmlns: pacs002_namespace(msg_nm_id).to_owned(),
        report: Iso20022StsRpt {
            grp_hdr: Iso20022RptHdr {
                msg_id: report_msg_id(&[NOT_PROVIDED, msg_nm_id, reason.as_str(), created_at]),
                cre_dt_tm: created_at.to_owned(),
            },
            orgnl_grp_inf_and_sts: Iso20022OrgnlGrpInfAndSts {
                orgnl_msg_id: NOT_PROVIDED.to_owned(),
                orgnl_msg_nm_id: msg_nm_id.to_owned(),
                grp_sts: Some(Iso20022TxSts::Rjct.as_str().to_owned()),
                sts_rsn_inf: rsn_inf(Some(reason), Some(info.to_owned())),
            },
            tx_inf_and_sts: None,
        },
    };
    render_document(&doc)
}

/// Reads a pacs.002 (the wallet's side: tests, the driver): version 10, or 13 (Nexus).
pub fn parse_pacs002(body: &[u8]) -> Result<Iso20022Pacs002, Iso20022Fault> {
    parse_document(body, NS_PACS002, "FIToFIPmtStsRpt")
        .or_else(|e| parse_document(body, NS_PACS002_NEXUS, "FIToFIPmtStsRpt").map_err(|_| e))
}

// ---------------------------------------------------------------------------------------------
// camt.029 (outbound).

/// `Document` of a camt.029.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Camt029 {
    /// `xmlns`.
    #[serde(rename = "@xmlns", default)]
    pub xmlns: String,
    /// `RsltnOfInvstgtn`.
    #[serde(rename = "RsltnOfInvstgtn")]
    pub resolution: Iso20022Rsltn,
}

/// `RsltnOfInvstgtn`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Rsltn {
    /// `Assgnmt`.
    #[serde(rename = "Assgnmt")]
    pub assgnmt: Iso20022Assgnmt,
    /// `Sts`.
    #[serde(rename = "Sts")]
    pub sts: Iso20022InvstgtnSts,
    /// `CxlDtls`.
    #[serde(rename = "CxlDtls")]
    pub cxl_dtls: Iso20022CxlDtls,
}

/// `Sts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022InvstgtnSts {
    /// `Conf`: `CNCL`, `RJCR`, `PDCR`.
    #[serde(rename = "Conf")]
    pub conf: String,
}

/// `CxlDtls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022CxlDtls {
    /// `TxInfAndSts`.
    #[serde(rename = "TxInfAndSts")]
    pub tx: Iso20022CxlTxInfAndSts,
}

/// `CxlDtls/TxInfAndSts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022CxlTxInfAndSts {
    /// `CxlStsId`: the camt.056's `CxlId`, when it had one.
    #[serde(rename = "CxlStsId", default, skip_serializing_if = "Option::is_none")]
    pub cxl_sts_id: Option<String>,
    /// `OrgnlEndToEndId`.
    #[serde(
        rename = "OrgnlEndToEndId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_end_to_end_id: Option<String>,
    /// `OrgnlUETR`.
    #[serde(rename = "OrgnlUETR")]
    pub orgnl_uetr: String,
    /// `TxCxlSts`.
    #[serde(rename = "TxCxlSts")]
    pub tx_cxl_sts: String,
    /// `CxlStsRsnInf`.
    #[serde(
        rename = "CxlStsRsnInf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cxl_sts_rsn_inf: Option<Iso20022RsnInf>,
}

/// A cancellation's resolution: `CNCL` (reversed), `PDCR` (reversal not yet acknowledged),
/// `RJCR` (refused, with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iso20022Resolution {
    /// Cancelled.
    Cncl,
    /// Pending.
    Pdcr,
    /// Rejected.
    Rjcr(Iso20022Reason),
}

/// The resolution for a canonical payment status after a cancel, and what `AddtlInf` says when
/// the cancellation is rejected. Rejection reasons come from ExternalPaymentCancellationRejection1Code
/// (`spec/schemes/iso20022.md` §10): a payment that was already undone or never settled has no
/// code of its own there, so it is `NARR` with the narrative.
pub fn resolution(status: PaymentStatus) -> (Iso20022Resolution, Option<&'static str>) {
    match status {
        PaymentStatus::Cancelled => (Iso20022Resolution::Cncl, None),
        PaymentStatus::Processing => (Iso20022Resolution::Pdcr, None),
        PaymentStatus::Reversed => (
            Iso20022Resolution::Rjcr(Iso20022Reason::Code("NARR")),
            Some("the payment was already reversed after an unknown outcome: nothing to cancel"),
        ),
        PaymentStatus::Fail => (
            Iso20022Resolution::Rjcr(Iso20022Reason::Code("NARR")),
            Some("the payment was rejected: nothing to cancel"),
        ),
        PaymentStatus::Success => (
            Iso20022Resolution::Rjcr(Iso20022Reason::Code("AGNT")),
            Some("the payment stays settled"),
        ),
    }
}

/// The ExternalPaymentCancellationRejection1Code for a canonical error answering a cancel.
pub fn cancellation_reason_for(error: &ApiError) -> Iso20022Reason {
    match error {
        ApiError::OrderNotFound { .. } => Iso20022Reason::Code("NOOR"),
        ApiError::CancelWindowExceed { .. } => Iso20022Reason::Code("AGNT"),
        _ => Iso20022Reason::Code("NARR"),
    }
}

/// Renders a camt.029 answering `request`.
pub fn render_camt029(
    request: &Iso20022CancelRequest,
    result: Iso20022Resolution,
    info: Option<String>,
    created_at: &str,
) -> Result<Vec<u8>, ApiError> {
    // `Sts/Conf` is an ExternalInvestigationExecutionConfirmation1Code (CNCL, PDCR, RJCR);
    // `TxCxlSts` a CancellationIndividualStatus1Code (ACCR, PDCR, RJCR).
    let (conf, tx_cxl_sts, reason) = match result {
        Iso20022Resolution::Cncl => ("CNCL", "ACCR", None),
        Iso20022Resolution::Pdcr => ("PDCR", "PDCR", None),
        Iso20022Resolution::Rjcr(r) => ("RJCR", "RJCR", Some(r)),
    };
    let doc = Iso20022Camt029 {
        xmlns: NS_CAMT029.to_owned(),
        resolution: Iso20022Rsltn {
            assgnmt: Iso20022Assgnmt {
                id: report_msg_id(&[
                    &request.assignment_id,
                    request.uetr.as_str(),
                    conf,
                    reason.map_or("", Iso20022Reason::as_str),
                ]),
                assgnr: request.assignee.clone(),
                assgne: request.assigner.clone(),
                cre_dt_tm: created_at.to_owned(),
            },
            sts: Iso20022InvstgtnSts {
                conf: conf.to_owned(),
            },
            cxl_dtls: Iso20022CxlDtls {
                tx: Iso20022CxlTxInfAndSts {
                    cxl_sts_id: request.cxl_id.clone(),
                    orgnl_end_to_end_id: request.orgnl_end_to_end_id.clone(),
                    orgnl_uetr: request.uetr.as_str().to_owned(),
                    tx_cxl_sts: tx_cxl_sts.to_owned(),
                    cxl_sts_rsn_inf: rsn_inf(reason, info),
                },
            },
        },
    };
    render_document(&doc)
}

/// Reads a camt.029 (the wallet's side).
pub fn parse_camt029(body: &[u8]) -> Result<Iso20022Camt029, Iso20022Fault> {
    parse_document(body, NS_CAMT029, "RsltnOfInvstgtn")
}

// ---------------------------------------------------------------------------------------------
// Quotes: the GET query and the JSON answer.

/// `GET /schemes/iso20022/v1/quotes?codeValue=..&customerId=..&sourceCurrency=MYR
/// [&amount=12.50&destinationCurrency=SGD]` (our extension, spec §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso20022QuoteQuery {
    /// The scanned code.
    pub code_value: CodeValue,
    /// The payer.
    pub customer_id: CustomerId,
    /// The payer's currency.
    pub source_currency: Currency,
    /// The merchant-currency amount (static codes).
    pub amount: Option<Amount>,
}

/// One query component: `form_decode` (`+` is a space, `%XX` a byte, strict) and `form_encode`
/// (everything but unreserved characters as `%XX`).
pub use crate::scheme::percent::{decode_form as form_decode, encode as form_encode};

impl TryFrom<&str> for Iso20022QuoteQuery {
    type Error = Iso20022Fault;
    fn try_from(query: &str) -> Result<Self, Iso20022Fault> {
        let mut code = None;
        let mut customer = None;
        let mut source = None;
        let mut amount = None;
        let mut destination = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = form_decode(k).map_err(|e| Iso20022Fault::format("query", e))?;
            let value = form_decode(v).map_err(|e| Iso20022Fault::format(key.clone(), e))?;
            let slot = match key.as_str() {
                "codeValue" => &mut code,
                "customerId" => &mut customer,
                "sourceCurrency" => &mut source,
                "amount" => &mut amount,
                "destinationCurrency" => &mut destination,
                other => {
                    return Err(Iso20022Fault::format(
                        format!("query/{}", excerpt(other)),
                        "unknown parameter (codeValue, customerId, sourceCurrency, amount, destinationCurrency)",
                    ));
                }
            };
            if slot.replace(value).is_some() {
                return Err(Iso20022Fault::format(format!("query/{key}"), "given twice"));
            }
        }
        let need = |v: Option<String>, name: &str| {
            v.ok_or_else(|| Iso20022Fault::format(format!("query/{name}"), "missing"))
        };
        let code_value = CodeValue::try_from(need(code, "codeValue")?)
            .map_err(|e| Iso20022Fault::content("query/codeValue", e))?;
        let customer_id = CustomerId::new(need(customer, "customerId")?)
            .map_err(|e| Iso20022Fault::content("query/customerId", e))?;
        let source_currency = Currency::from_code(&need(source, "sourceCurrency")?)
            .map_err(|e| Iso20022Fault::content("query/sourceCurrency", e.to_string()))?;
        let amount = match (amount, destination) {
            (None, None) => None,
            (Some(a), Some(d)) => {
                let currency = Currency::from_code(&d).map_err(|e| {
                    Iso20022Fault::content("query/destinationCurrency", e.to_string())
                })?;
                Some(
                    Amount::parse(&a, currency)
                        .map_err(|e| Iso20022Fault::content("query/amount", e.to_string()))?,
                )
            }
            (Some(_), None) => {
                return Err(Iso20022Fault::format(
                    "query/destinationCurrency",
                    "required with amount (the amount's currency: the merchant's)",
                ));
            }
            (None, Some(_)) => {
                return Err(Iso20022Fault::format(
                    "query/amount",
                    "destinationCurrency given without an amount",
                ));
            }
        };
        Ok(Iso20022QuoteQuery {
            code_value,
            customer_id,
            source_currency,
            amount,
        })
    }
}

/// `{ccy, value}` with a decimal value in major units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022JsonAmount {
    /// ISO 4217 alpha-3.
    pub ccy: String,
    /// Decimal in major units, with the currency's exponent of decimals.
    pub value: String,
}

impl From<Amount> for Iso20022JsonAmount {
    fn from(a: Amount) -> Self {
        Iso20022JsonAmount {
            ccy: a.currency().code().to_owned(),
            value: a.to_decimal_string(),
        }
    }
}

/// The creditor as the quote gives it (from the merchant QR code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Iso20022Creditor {
    /// `Cdtr/Nm`.
    pub name: String,
    /// The merchant's city.
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Merchant category code.
    pub mcc: String,
    /// `CdtrAcct/Id/Othr/Id`: the merchant id of the routed template.
    pub account: String,
}

/// The quote, as JSON (our extension, spec §4; the amounts and rate are those the pacs.008
/// must carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Iso20022Quote {
    /// Single use; goes into `RmtInf/Strd/AddtlRmtInf` as `QUOTE/<quoteId>`.
    pub quote_id: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
    /// The payer's currency.
    pub source_currency: String,
    /// The merchant's currency.
    pub destination_currency: String,
    /// `XchgRate`: payer units per merchant unit, the BaseOneRate that gives `instructedAmount`
    /// back from `interbankSettlementAmount` (`crate::fx::message_rate`).
    pub exchange_rate: String,
    /// The reference mid rate.
    pub mid_rate: String,
    /// The wallet's markup.
    pub markup_bps: u32,
    /// `InstdAmt`: what the payer pays.
    pub instructed_amount: Iso20022JsonAmount,
    /// `IntrBkSttlmAmt`: what the merchant receives.
    pub interbank_settlement_amount: Iso20022JsonAmount,
    /// `Cdtr`, `CdtrAcct`.
    pub creditor: Iso20022Creditor,
    /// Nexus profile: what the merchant is credited, in its currency (`IntrBkSttlmAmt` ×
    /// `XchgRate`); absent in the CBPR+ profile, where it is `interbankSettlementAmount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_amount: Option<Iso20022JsonAmount>,
    /// The exact `AddtlRmtInf` text to send.
    pub remittance_information: String,
}

impl Iso20022Quote {
    /// The quote from the canonical decode and quote. `exchangeRate` is the BaseOneRate that
    /// turns the merchant amount into the payer amount (`crate::fx::message_rate`): a quote whose
    /// amounts no such rate reproduces is refused (`AmountExceedLimit`; only amounts far beyond a
    /// QR payment get there).
    pub fn new(
        decode: &DecodeResponse,
        quote: &QuoteResponse,
        profile: Iso20022Profile,
    ) -> Result<Self, ApiError> {
        let Money(merchant) = quote.merchant_amount;
        let Money(payer) = quote.payer_amount;
        let (from, to, settlement) = match profile {
            Iso20022Profile::Cbpr => (merchant, payer, merchant),
            Iso20022Profile::Nexus => (payer, merchant, payer),
        };
        let rate = crate::fx::message_rate(from, to).ok_or_else(|| {
            ApiError::AmountExceedLimit {
                limit: format!(
                    "{from} → {to}: no exchange rate of at most 11 digits (BaseOneRate) gives this amount back"
                ),
            }
        })?;
        Ok(Iso20022Quote {
            quote_id: quote.quote_id.to_string(),
            expires_at: quote.expires_at.clone(),
            source_currency: payer.currency().code().to_owned(),
            destination_currency: merchant.currency().code().to_owned(),
            exchange_rate: rate.to_string(),
            mid_rate: quote.mid_rate.clone(),
            markup_bps: quote.markup_bps,
            instructed_amount: payer.into(),
            interbank_settlement_amount: settlement.into(),
            destination_amount: (profile == Iso20022Profile::Nexus).then(|| merchant.into()),
            creditor: Iso20022Creditor {
                name: decode.merchant.name.clone(),
                city: decode.merchant.city.clone(),
                country: decode.merchant.country.clone(),
                mcc: decode.merchant.mcc.clone(),
                account: decode.merchant.merchant_id.clone(),
            },
            remittance_information: format!("{QUOTE_PREFIX}{}", quote.quote_id),
        })
    }

    /// The terms a pacs.008 naming this quote must agree with (in both profiles' directions).
    pub fn terms(&self, quote: &QuoteResponse) -> Iso20022Terms {
        let rate = crate::fx::message_rate(quote.merchant_amount.0, quote.payer_amount.0)
            .unwrap_or_default();
        Iso20022Terms {
            merchant_amount: quote.merchant_amount.0,
            payer_amount: quote.payer_amount.0,
            rate,
            source_rate: crate::fx::message_rate(quote.payer_amount.0, quote.merchant_amount.0),
            account: self.creditor.account.clone(),
            name: self.creditor.name.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pacs.004 (outbound): a refund that started at the merchant, credited back to the payer. A
// payment return goes from the creditor's side (us) to the debtor's side (the wallet).

/// `Document` of a pacs.004.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022Pacs004 {
    /// `xmlns`.
    #[serde(rename = "@xmlns", default)]
    pub xmlns: String,
    /// `PmtRtr`.
    #[serde(rename = "PmtRtr")]
    pub rtr: Iso20022PmtRtr,
}

/// `PmtRtr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022PmtRtr {
    /// `GrpHdr` (`MsgId`, `CreDtTm`, `NbOfTxs` 1, `SttlmInf/SttlmMtd` CLRG).
    #[serde(rename = "GrpHdr")]
    pub grp_hdr: Iso20022GrpHdr,
    /// `TxInf`: the one return.
    #[serde(rename = "TxInf")]
    pub tx: Iso20022RtrTx,
}

/// `PmtRtr/TxInf` (the elements we write, in schema order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iso20022RtrTx {
    /// `RtrId`: our refund id without hyphens (the wallet's pacs.002 names it as `OrgnlInstrId`).
    #[serde(rename = "RtrId")]
    pub rtr_id: String,
    /// `OrgnlGrpInf`: the pacs.008 being returned.
    #[serde(
        rename = "OrgnlGrpInf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_grp_inf: Option<Iso20022OrgnlGrpInf>,
    /// `OrgnlEndToEndId`.
    #[serde(
        rename = "OrgnlEndToEndId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orgnl_end_to_end_id: Option<String>,
    /// `OrgnlUETR`.
    #[serde(rename = "OrgnlUETR", default, skip_serializing_if = "Option::is_none")]
    pub orgnl_uetr: Option<String>,
    /// `OrgnlClrSysRef`: our payment id without hyphens (the `ClrSysRef` of our pacs.002).
    #[serde(rename = "OrgnlClrSysRef")]
    pub orgnl_clr_sys_ref: String,
    /// `RtrdIntrBkSttlmAmt`: the refund in the merchant's currency.
    #[serde(rename = "RtrdIntrBkSttlmAmt")]
    pub rtrd_intr_bk_sttlm_amt: Iso20022Amount,
    /// `RtrdInstdAmt`: what the payer gets back, in the payer's currency.
    #[serde(rename = "RtrdInstdAmt")]
    pub rtrd_instd_amt: Iso20022Amount,
    /// `XchgRate`: the BaseOneRate from the merchant amount to the payer amount.
    #[serde(rename = "XchgRate", default, skip_serializing_if = "Option::is_none")]
    pub xchg_rate: Option<String>,
    /// `ChrgBr`: `SLEV`.
    #[serde(rename = "ChrgBr")]
    pub chrg_br: String,
    /// `RtrRsnInf`.
    #[serde(rename = "RtrRsnInf")]
    pub rtr_rsn_inf: Iso20022RsnInf,
}

/// Why we return money to the payer: the cause behind a pacs.004's `RtrRsnInf`
/// (ExternalReturnReason1Code, spec/schemes/iso20022.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iso20022ReturnCause<'a> {
    /// A refund the merchant made at its acquirer (the acquirer's advice, or an operator acting
    /// for it): `MS02` (reason not specified by the end customer — the merchant), or `NARR` with
    /// the merchant's reason when one is given.
    MerchantRefund {
        /// The merchant's reason, if any.
        reason: Option<&'a str>,
    },
    /// The wallet's cancellation request (camt.056) accepted for a settled payment: `FOCR`
    /// (return following a cancellation request) — the funds of the whole payment go back.
    Cancellation,
}

/// The ExternalReturnReason1Code (and `AddtlInf`) of a return with this cause.
pub fn return_reason(cause: Iso20022ReturnCause<'_>) -> (Iso20022Reason, Option<String>) {
    match cause {
        Iso20022ReturnCause::MerchantRefund { reason } => {
            match reason.map(str::trim).filter(|r| !r.is_empty()) {
                Some(r) => (Iso20022Reason::Code("NARR"), Some(r.to_owned())),
                None => (Iso20022Reason::Code("MS02"), None),
            }
        }
        Iso20022ReturnCause::Cancellation => (Iso20022Reason::Code("FOCR"), None),
    }
}

/// Renders the pacs.004 that credits `refund` back to the payer. `original` is what the scheme
/// journaled with the payment (`None`: only our ids are known). `MsgId` depends only on the
/// refund, so every retry carries the same one (the wallet dedupes on it).
pub fn render_pacs004(
    refund: &RefundResponse,
    original: Option<&Iso20022Ref>,
    reason: Option<&str>,
    created_at: &str,
) -> Result<Vec<u8>, ApiError> {
    render_return(
        refund.refund_id.as_str(),
        refund.payment_id.as_str(),
        (refund.refund_amount.0, refund.payer_refund_amount.0),
        Iso20022ReturnCause::MerchantRefund { reason },
        original,
        created_at,
    )
}

/// Renders the pacs.004 that returns a cancelled payment's funds to the payer after its camt.056
/// was accepted (`FOCR`): `RtrId` is the payment id without hyphens, the amounts the whole
/// payment's; `MsgId` depends only on the payment (as a refund's on the refund: the ids differ).
pub fn render_cancellation_return(
    payment: &PaymentResponse,
    original: Option<&Iso20022Ref>,
    created_at: &str,
) -> Result<Vec<u8>, ApiError> {
    render_return(
        payment.payment_id.as_str(),
        payment.payment_id.as_str(),
        (payment.merchant_amount.0, payment.payer_amount.0),
        Iso20022ReturnCause::Cancellation,
        original,
        created_at,
    )
}

/// One pacs.004: `id` (a refund's or a payment's id) gives `RtrId` and the `MsgId`; the amounts
/// are (merchant's currency, payer's currency).
fn render_return(
    id: &str,
    payment_id: &str,
    (merchant, payer): (Amount, Amount),
    cause: Iso20022ReturnCause<'_>,
    original: Option<&Iso20022Ref>,
    created_at: &str,
) -> Result<Vec<u8>, ApiError> {
    let (rsn, info) = return_reason(cause);
    let doc = Iso20022Pacs004 {
        xmlns: NS_PACS004.to_owned(),
        rtr: Iso20022PmtRtr {
            grp_hdr: Iso20022GrpHdr {
                msg_id: report_msg_id(&["pacs.004", id]),
                cre_dt_tm: created_at.to_owned(),
                nb_of_txs: Some("1".to_owned()),
                sttlm_inf: Some(Iso20022SttlmInf {
                    sttlm_mtd: "CLRG".to_owned(),
                }),
            },
            tx: Iso20022RtrTx {
                rtr_id: id.replace('-', ""),
                orgnl_grp_inf: original.map(|o| Iso20022OrgnlGrpInf {
                    orgnl_msg_id: o.msg_id.clone(),
                    orgnl_msg_nm_id: o.msg_nm_id.clone(),
                }),
                orgnl_end_to_end_id: original.and_then(|o| o.end_to_end_id.clone()),
                orgnl_uetr: original.map(|o| o.uetr.clone()),
                orgnl_clr_sys_ref: payment_id.replace('-', ""),
                rtrd_intr_bk_sttlm_amt: merchant.into(),
                rtrd_instd_amt: payer.into(),
                xchg_rate: crate::fx::message_rate(merchant, payer).map(|r| r.to_string()),
                chrg_br: "SLEV".to_owned(),
                rtr_rsn_inf: rsn_inf(Some(rsn), info).unwrap_or_default(),
            },
        },
    };
    render_document(&doc)
}

/// Reads a pacs.004 (the wallet's side: tests, the simulator).
pub fn parse_pacs004(body: &[u8]) -> Result<Iso20022Pacs004, Iso20022Fault> {
    parse_document(body, NS_PACS004, "PmtRtr")
}
