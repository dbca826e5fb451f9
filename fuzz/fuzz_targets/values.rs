//! Durations, pauses, threshold expressions and metric selectors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadline_core::duration::{parse_duration, DurationRange};
use loadline_core::threshold::{parse_condition, parse_selector, MetricName};

fuzz_target!(|text: &str| {
    let _ = parse_duration(text);
    if let Ok(r) = DurationRange::parse(text) {
        assert!(r.min <= r.max);
    }
    let _ = parse_selector(text);
    for name in MetricName::NAMES {
        if let Some(m) = MetricName::parse(name) {
            if let Ok(c) = parse_condition(m, text) {
                assert!(c.bound.is_finite());
            }
        }
    }
});
