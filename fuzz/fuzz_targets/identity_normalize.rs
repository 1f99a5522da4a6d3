//! cargo-fuzz target `identity_normalize`: see `fuzz/checks.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::identity_normalize(data));
