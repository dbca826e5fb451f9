//! Any text as a scenario file: loaded or rejected with located errors, never a
//! panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let base = std::path::Path::new("/nonexistent-loadline-fuzz");
    if let Err(errors) = loadline_config::load_str("fuzz.yaml", text, base) {
        assert!(!errors.errors.is_empty());
        // YAML breaks lines at \n, \r\n and a lone \r: an error's line is within
        // the text however it counts.
        let breaks = text.matches('\n').count() + text.matches('\r').count();
        for e in &errors.errors {
            assert!(e.line <= breaks + 1, "{e}");
        }
    }
});
