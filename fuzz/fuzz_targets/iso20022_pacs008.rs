#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| qrbridge::fuzzing::iso20022_request(data));
