#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wsis_protocol::fuzz::op(data));
