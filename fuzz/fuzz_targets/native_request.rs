#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| qrbridge::fuzzing::native_request(data));
