//! Any text as a scraped Prometheus page. Besides never panicking, the reader must
//! account for every line (each non-blank, non-comment line is a sample or a
//! reported problem, and problems name a line of the page), give well-formed
//! names, and read back exactly what a sample written out again says: the same
//! name, labels (escapes undone once), value and timestamp. A selector written
//! from a sample matches that sample.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadline_monitor::exposition::{parse, Sample, Selector};

fn is_name(name: &str, first: fn(char) -> bool, other: fn(char) -> bool) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(first) && chars.all(other)
}

fn metric_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn metric_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn label_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn label_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A label value between quotes, escaped as the format says.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `name{label="value",...}`.
fn series(sample: &Sample) -> String {
    let labels: Vec<String> = sample
        .labels
        .iter()
        .map(|(name, value)| format!("{name}={}", quoted(value)))
        .collect();
    format!("{}{{{}}}", sample.name, labels.join(","))
}

/// The sample as one line of a page.
fn line(sample: &Sample) -> String {
    let value = match sample.value {
        v if v.is_nan() => "NaN".to_owned(),
        v if v == f64::INFINITY => "+Inf".to_owned(),
        v if v == f64::NEG_INFINITY => "-Inf".to_owned(),
        v => v.to_string(),
    };
    match sample.timestamp_ms {
        Some(ms) => format!("{} {value} {ms}", series(sample)),
        None => format!("{} {value}", series(sample)),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fuzz_target!(|text: &str| {
    let page = parse(text);

    let lines = text.lines().count();
    let readable = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(
        page.samples.len() + page.problems.len(),
        readable,
        "every line is a sample or a problem"
    );
    for problem in &page.problems {
        let number = problem
            .strip_prefix("line ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok());
        assert!(
            number.is_some_and(|n| (1..=lines).contains(&n)),
            "a problem names a line of the page: {problem:?}"
        );
    }

    for sample in &page.samples {
        assert!(
            is_name(&sample.name, metric_name_start, metric_name_char),
            "{sample:?}"
        );
        assert!(
            sample.name.starts_with(&sample.family),
            "the family is the name or a stem of it: {sample:?}"
        );
        for (label, _) in &sample.labels {
            assert!(
                is_name(label, label_name_start, label_name_char),
                "{sample:?}"
            );
        }

        let again = parse(&line(sample));
        assert!(
            again.problems.is_empty(),
            "{sample:?} → {:?}",
            again.problems
        );
        assert_eq!(again.samples.len(), 1, "{sample:?}");
        let back = &again.samples[0];
        assert_eq!(back.name, sample.name);
        assert_eq!(back.labels, sample.labels);
        assert_eq!(back.timestamp_ms, sample.timestamp_ms);
        assert!(
            same_value(back.value, sample.value),
            "{sample:?} → {back:?}"
        );

        let selector = Selector::parse(&series(sample));
        assert!(
            selector.as_ref().is_ok_and(|s| s.matches(sample)),
            "{sample:?} → {selector:?}"
        );
    }
});
