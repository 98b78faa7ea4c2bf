#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| qrbridge::fuzzing::iso8583_decode(data));
