//! Property tests: the value languages of scenario files — templates, durations,
//! ranges, thresholds — accept or reject any input without panicking, hanging or
//! blowing up, and what they accept round-trips sensibly.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use loadline_core::duration::{parse_duration, DurationRange};
use loadline_core::template::{JsonTemplate, PathSeg, Scope, Template, VarRef, Vars};
use loadline_core::threshold::{parse_condition, parse_selector, MetricName};
use proptest::prelude::*;

struct AnyScope;

impl Scope for AnyScope {
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
        match name {
            "known" => Ok(VarRef::Capture {
                slot: 0,
                path: path.to_vec(),
            }),
            "konst" => Ok(VarRef::Const(serde_json::json!({"a": [1, 2]}))),
            _ => Err(format!("unknown {name}")),
        }
    }
    fn env(&self, name: &str) -> Option<String> {
        (name == "HOME").then(|| "/root".into())
    }
}

/// Strings built from the pieces templates are made of, so the parser's edges
/// are reached far more often than with uniform random text.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{ known }}".to_string()),
        Just("{{ konst.a[1] }}".to_string()),
        Just("$randint(".to_string()),
        Just("$random_string(".to_string()),
        Just("$env.".to_string()),
        Just("$uuid()".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(".".to_string()),
        "[a-z0-9 _-]{0,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn templates_compile_or_fail_cleanly(src in template_text()) {
        if let Ok(t) = Template::compile(&src, &AnyScope) {
            let mut vars = Vars::new(1, Arc::new(Vec::new()), 1, 1);
            vars.captures[0] = Some(serde_json::json!({"x": 1}));
            let out = t.render(&mut vars);
            prop_assert!(out.len() <= src.len() * 64 + 4096);
        } else {
            let e = Template::compile(&src, &AnyScope).unwrap_err();
            prop_assert!(e.offset <= src.len());
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn json_templates_render_valid_json(key in "[a-z]{1,5}", src in template_text()) {
        let body = serde_json::json!({ key: src, "n": [1, "{{ known }}"] });
        if let Ok(t) = JsonTemplate::compile(&body, &AnyScope) {
            let mut vars = Vars::new(1, Arc::new(Vec::new()), 1, 1);
            vars.captures[0] = Some(serde_json::json!("q\"uote"));
            let mut out = String::new();
            t.render_into(&mut vars, &mut out);
            prop_assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "{}", out);
        }
    }

    #[test]
    fn durations_parse_or_fail_cleanly(s in "[0-9.]{0,8}(us|ms|s|m|h|x|)[0-9]{0,3}(ms|s|)|\\PC{0,16}") {
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d.as_secs() <= 366 * 24 * 3600);
        }
        if let Ok(r) = DurationRange::parse(&s) {
            prop_assert!(r.min <= r.max);
        }
    }

    #[test]
    fn ranges_parse_or_fail_cleanly(a in "[0-9]{1,4}(ms|s)", b in "[0-9]{1,4}(ms|s)", junk in "\\PC{0,6}") {
        let text = format!("{a}..{b}{junk}");
        if let Ok(r) = DurationRange::parse(&text) {
            prop_assert!(r.min <= r.max);
        }
    }

    #[test]
    fn thresholds_parse_or_fail_cleanly(
        stat in "(p[0-9]{1,3}(\\.[0-9]{1,2})?|p\\([0-9.]{1,5}\\)|avg|min|max|med|rate|count|\\PC{0,4})",
        op in "(<|<=|>|>=|==|!=|=<|)",
        value in "[0-9.]{0,6}(ms|s|%|/s|x|)",
        metric in 0usize..8,
    ) {
        let m = MetricName::parse(MetricName::NAMES[metric]).unwrap();
        let expr = format!("{stat} {op} {value}");
        if let Ok(c) = parse_condition(m, &expr) {
            prop_assert!(c.bound.is_finite() && c.bound >= 0.0);
        }
    }

    #[test]
    fn selectors_parse_or_fail_cleanly(s in "\\PC{0,24}") {
        let _ = parse_selector(&s);
    }
}
