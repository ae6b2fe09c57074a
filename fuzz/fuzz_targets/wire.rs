#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wsis_node::fuzz::wire(data));
