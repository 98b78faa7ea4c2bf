#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| qrbridge::fuzzing::emv_parse(data));
