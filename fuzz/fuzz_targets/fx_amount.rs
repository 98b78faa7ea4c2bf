#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| qrbridge::fuzzing::fx_amount(data));
