#![no_main]
libfuzzer_sys::fuzz_target!(
    // As envelope_changes: Automerge's parser runs behind a panic firewall, so print a caught panic and let it
    // unwind; only a panic that escapes the target (a failed assertion) is a crash.
    init: std::panic::set_hook(Box::new(|info| eprintln!("{info}"))),
    |data: &[u8]| {
        wsis_protocol::fuzz::change_ops(data);
    }
);
