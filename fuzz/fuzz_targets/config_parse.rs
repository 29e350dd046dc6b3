//! Any text as a configuration file: parsing and validation must return an
//! error naming a field, never panic.
#![no_main]

use lanegate_common::config::{Config, HostInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text) {
        Ok(config) => {
            let _ = config.validate(&HostInfo { cores: 2 });
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
