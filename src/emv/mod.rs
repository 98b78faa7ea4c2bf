//! EMVCo merchant-presented QR codes (MPM).
//!
//! (Being written by the QR core issue.)
