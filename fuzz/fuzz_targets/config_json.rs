//! The configuration JSON: any bytes as the text given to `pw_cache_new`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pwcache_fuzz::input_checks::config::check_config_json;

fuzz_target!(|data: &[u8]| {
    // The C boundary refuses text that is not UTF-8 before parsing (PW_INVALID_JSON).
    if let Ok(text) = std::str::from_utf8(data) {
        check_config_json(text);
    }
});
