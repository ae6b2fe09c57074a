#![no_main]
libfuzzer_sys::fuzz_target!(
    // libfuzzer-sys aborts on any panic, also one the code under test catches (stage 2 runs Automerge's parser
    // behind a panic firewall): print the panic instead and let it unwind, so only a panic that escapes the
    // target is a crash.
    init: std::panic::set_hook(Box::new(|info| eprintln!("{info}"))),
    |data: &[u8]| wsis_protocol::fuzz::envelope_header(data)
);
