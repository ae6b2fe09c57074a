//! The store's own unit tests (the behaviour is tested through the public API in `node/tests/store.rs`).

use super::*;

#[test]
fn errors_are_small() {
    // Callers wrap these in their own enums; clippy's `result_large_err` fires above 128 bytes.
    for (name, size) in [
        ("StoreError", std::mem::size_of::<StoreError>()),
        ("StoreOpenError", std::mem::size_of::<StoreOpenError>()),
    ] {
        eprintln!("{name}: {size} bytes");
        assert!(size <= 96, "{name} is {size} bytes");
    }
}
