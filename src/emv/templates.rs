//! Typed views of the templates inside a valid [`MerchantQr`](super::MerchantQr): merchant accounts
//! (02–51), additional data (62), the language template (64) and unreserved templates (80–99).
//! All borrow from the payload.

use super::ids;
use super::profiles::{NationalScheme, Role, registry};
use super::tlv::{Element, Tokens};

fn subs<'a>(value: &'a str, at: usize, ascii: bool) -> impl Iterator<Item = Element<'a>> + use<'a> {
    Tokens::new(value, at, ascii).valid()
}

fn sub(value: &str, at: usize, ascii: bool, id: u8) -> Option<&str> {
    subs(value, at, ascii).find(|e| e.id == id).map(|e| e.value)
}

/// A merchant account: a primitive 02–25 (card-network account data) or a template 26–51
/// (GUID in 00, scheme-specific sub-IDs).
#[derive(Clone, Copy, Debug)]
pub struct MerchantAccount<'a> {
    el: Element<'a>,
    ascii: bool,
    opaque: bool,
    scheme: Option<&'static NationalScheme>,
}

impl<'a> MerchantAccount<'a> {
    pub(crate) fn new(el: Element<'a>, country: Option<&str>, ascii: bool, opaque: bool) -> Self {
        let reg = registry();
        let scheme = if opaque {
            None
        } else if ids::is_root_template(el.id) {
            sub(el.value, el.value_at(), ascii, 0)
                .and_then(|g| reg.match_template(el.id, g, country))
        } else {
            reg.match_primitive(el.id)
        };
        MerchantAccount {
            el,
            ascii,
            opaque,
            scheme,
        }
    }

    /// True for a template whose content is not TLV (kept as raw text, warning `opaque_template`):
    /// it has no sub-IDs, no GUID and no scheme; [`value`](Self::value) is its text.
    pub fn is_opaque(&self) -> bool {
        self.opaque
    }

    /// The root ID (02–51).
    pub fn id(&self) -> u8 {
        self.el.id
    }

    /// True for a template (26–51), false for a primitive (02–25).
    pub fn is_template(&self) -> bool {
        ids::is_root_template(self.el.id)
    }

    /// The raw value.
    pub fn value(&self) -> &'a str {
        self.el.value
    }

    /// The GUID / AID (sub-ID 00) of a template; `None` for a primitive.
    pub fn guid(&self) -> Option<&'a str> {
        if self.is_template() {
            self.sub(0)
        } else {
            None
        }
    }

    /// The national scheme recognised from the GUID or ID, if the registry knows it.
    pub fn scheme(&self) -> Option<&'static NationalScheme> {
        self.scheme
    }

    /// The value of sub-ID `id` of a template.
    pub fn sub(&self, id: u8) -> Option<&'a str> {
        if !self.is_template() || self.opaque {
            return None;
        }
        sub(self.el.value, self.el.value_at(), self.ascii, id)
    }

    /// Sub-data objects of a template, in payload order.
    pub fn subs(&self) -> impl Iterator<Item = Element<'a>> + use<'a> {
        let (value, at) = if self.is_template() && !self.opaque {
            (self.el.value, self.el.value_at())
        } else {
            ("", 0)
        };
        subs(value, at, self.ascii)
    }

    /// The value the scheme says carries `role` (e.g. the merchant id), if known and present.
    /// A nested role (VietQR's 38.01.01) is looked up one level down by the caller via [`Self::nested`].
    pub fn role(&self, role: Role) -> Option<&'a str> {
        self.sub(self.scheme?.sub_for(role)?)
    }

    /// Sub-data objects of nested template `id` (e.g. VietQR 38.01).
    pub fn nested(&self, id: u8) -> impl Iterator<Item = Element<'a>> + use<'a> {
        let inner = if self.scheme.is_some_and(|s| s.is_nested(id)) {
            self.subs().find(|e| e.id == id)
        } else {
            None
        };
        let (value, at) = inner.map_or(("", 0), |e| (e.value, e.value_at()));
        subs(value, at, self.ascii)
    }
}

/// A value of the additional data template that may ask the app to prompt the payer ("***").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DataValue<'a> {
    /// The value is given.
    Given(&'a str),
    /// "***": the app must ask the payer for it.
    Prompt,
}

impl<'a> DataValue<'a> {
    fn of(s: &'a str) -> Self {
        if s == "***" {
            DataValue::Prompt
        } else {
            DataValue::Given(s)
        }
    }
}

/// Which payer data the merchant asks for (62.09).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ConsumerDataRequest {
    /// "A": address.
    pub address: bool,
    /// "M": mobile number.
    pub mobile: bool,
    /// "E": email.
    pub email: bool,
}

/// The additional data field template (62).
#[derive(Clone, Copy, Debug)]
pub struct AdditionalData<'a> {
    value: &'a str,
    at: usize,
    ascii: bool,
    opaque: u128,
}

impl<'a> AdditionalData<'a> {
    pub(crate) fn new(value: &'a str, at: usize, ascii: bool, opaque: u128) -> Self {
        AdditionalData {
            value,
            at,
            ascii,
            opaque,
        }
    }

    /// True if payment-system specific template 62.`id` (50–99) is not TLV and was kept as raw
    /// text (warning `opaque_template`).
    pub fn is_opaque(&self, id: u8) -> bool {
        id < 100 && self.opaque & (1u128 << id) != 0
    }

    /// The raw value of sub-ID `id`.
    pub fn get(&self, id: u8) -> Option<&'a str> {
        sub(self.value, self.at, self.ascii, id)
    }

    /// Sub-data objects in payload order.
    pub fn subs(&self) -> impl Iterator<Item = Element<'a>> + use<'a> {
        subs(self.value, self.at, self.ascii)
    }

    fn data(&self, id: u8) -> Option<DataValue<'a>> {
        self.get(id).map(DataValue::of)
    }

    /// 62.01 bill number.
    pub fn bill_number(&self) -> Option<DataValue<'a>> {
        self.data(1)
    }
    /// 62.02 mobile number.
    pub fn mobile_number(&self) -> Option<DataValue<'a>> {
        self.data(2)
    }
    /// 62.03 store label.
    pub fn store_label(&self) -> Option<DataValue<'a>> {
        self.data(3)
    }
    /// 62.04 loyalty number.
    pub fn loyalty_number(&self) -> Option<DataValue<'a>> {
        self.data(4)
    }
    /// 62.05 reference label.
    pub fn reference_label(&self) -> Option<DataValue<'a>> {
        self.data(5)
    }
    /// 62.06 customer label.
    pub fn customer_label(&self) -> Option<DataValue<'a>> {
        self.data(6)
    }
    /// 62.07 terminal label.
    pub fn terminal_label(&self) -> Option<DataValue<'a>> {
        self.data(7)
    }
    /// 62.08 purpose of transaction.
    pub fn purpose(&self) -> Option<DataValue<'a>> {
        self.data(8)
    }
    /// 62.09 additional consumer data request.
    pub fn consumer_data_request(&self) -> Option<ConsumerDataRequest> {
        let v = self.get(9)?;
        Some(ConsumerDataRequest {
            address: v.contains('A'),
            mobile: v.contains('M'),
            email: v.contains('E'),
        })
    }
    /// 62.10 merchant tax ID (v1.1).
    pub fn merchant_tax_id(&self) -> Option<&'a str> {
        self.get(10)
    }
    /// 62.11 merchant channel (v1.1): three characters — media, transaction location, merchant presence.
    pub fn merchant_channel(&self) -> Option<&'a str> {
        self.get(11)
    }
}

/// The merchant information — language template (64).
#[derive(Clone, Copy, Debug)]
pub struct LanguageTemplate<'a> {
    value: &'a str,
    at: usize,
    ascii: bool,
}

impl<'a> LanguageTemplate<'a> {
    pub(crate) fn new(value: &'a str, at: usize, ascii: bool) -> Self {
        LanguageTemplate { value, at, ascii }
    }

    /// 64.00 language preference (ISO 639-1).
    pub fn language(&self) -> &'a str {
        sub(self.value, self.at, self.ascii, 0).unwrap_or_default()
    }
    /// 64.01 merchant name in that language.
    pub fn name(&self) -> &'a str {
        sub(self.value, self.at, self.ascii, 1).unwrap_or_default()
    }
    /// 64.02 merchant city in that language.
    pub fn city(&self) -> Option<&'a str> {
        sub(self.value, self.at, self.ascii, 2)
    }
}

/// An unreserved template (80–99): GUID in 00, the rest defined by its owner.
#[derive(Clone, Copy, Debug)]
pub struct Template<'a> {
    el: Element<'a>,
    ascii: bool,
    opaque: bool,
}

impl<'a> Template<'a> {
    pub(crate) fn new(el: Element<'a>, ascii: bool, opaque: bool) -> Self {
        Template { el, ascii, opaque }
    }
    /// True if the content is not TLV and was kept as raw text (warning `opaque_template`).
    pub fn is_opaque(&self) -> bool {
        self.opaque
    }
    /// The root ID.
    pub fn id(&self) -> u8 {
        self.el.id
    }
    /// The raw value.
    pub fn value(&self) -> &'a str {
        self.el.value
    }
    /// Sub-ID 00.
    pub fn guid(&self) -> Option<&'a str> {
        self.sub(0)
    }
    /// The value of sub-ID `id` (none in an opaque template).
    pub fn sub(&self, id: u8) -> Option<&'a str> {
        if self.opaque {
            return None;
        }
        sub(self.el.value, self.el.value_at(), self.ascii, id)
    }
}
