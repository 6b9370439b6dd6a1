//! The config loader (TOML parse, then the one validation step `moatd serve` and `check-config`
//! run) over arbitrary text: an error for anything wrong, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        moat_gateway::fuzzing::config(text);
    }
});
