//! A reader of Prometheus' text exposition format (version 0.0.4, which
//! OpenMetrics text also reads as): `name{label="value",...} value [timestamp]`
//! lines, `# TYPE name kind` lines giving each family its kind, every other
//! comment skipped. Label values may hold escaped quotes, backslashes and
//! newlines; values may be `+Inf`, `-Inf` or `NaN`. A line that cannot be read is
//! reported and skipped; the rest of the page is kept.

use std::collections::HashMap;
use std::fmt;

/// A metric family's kind, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    fn from_word(word: &str) -> MetricType {
        match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" | "gaugehistogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            _ => MetricType::Untyped,
        }
    }
}

/// One line of a scraped page.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// The family the sample belongs to: its own name, or for `x_bucket`,
    /// `x_sum`, `x_count`, `x_total` the `x` of a `# TYPE x` line.
    pub family: String,
    pub kind: MetricType,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line has a timestamp.
    pub timestamp_ms: Option<i64>,
}

/// What a page held.
#[derive(Debug, Default)]
pub struct Page {
    pub samples: Vec<Sample>,
    /// The lines that could not be read (`line 12: …`).
    pub problems: Vec<String>,
}

/// Reads a whole page. Never fails: a line that cannot be read is one of
/// [`Page::problems`], and every other non-blank, non-comment line one of
/// [`Page::samples`].
pub fn parse(text: &str) -> Page {
    let mut types: HashMap<&str, MetricType> = HashMap::new();
    let mut page = Page::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    types.insert(name, MetricType::from_word(kind));
                }
            }
            continue;
        }
        match parse_sample(line) {
            Ok((name, labels, value, timestamp_ms)) => {
                let (family, kind) = family_of(&name, &types);
                page.samples.push(Sample {
                    name,
                    family,
                    kind,
                    labels,
                    value,
                    timestamp_ms,
                });
            }
            Err(problem) => page.problems.push(format!("line {}: {problem}", index + 1)),
        }
    }
    page
}

fn family_of(name: &str, types: &HashMap<&str, MetricType>) -> (String, MetricType) {
    if let Some(&kind) = types.get(name) {
        return (name.to_owned(), kind);
    }
    for suffix in ["_bucket", "_sum", "_count", "_total", "_created"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if let Some(&kind) = types.get(stem) {
                return (stem.to_owned(), kind);
            }
        }
    }
    (name.to_owned(), MetricType::Untyped)
}

type Labels = Vec<(String, String)>;

fn parse_sample(line: &str) -> Result<(String, Labels, f64, Option<i64>), String> {
    let mut cursor = Cursor { rest: line };
    let (name, labels) = cursor.name_and_labels()?;
    // Label values are behind us, so a `#` can only open an OpenMetrics exemplar
    // (`# {trace_id="…"} 1.0`), which is not kept.
    let rest = cursor.rest.split('#').next().unwrap_or_default();
    let mut words = rest.split_whitespace();
    let value = words
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))
        .and_then(parse_value)?;
    let timestamp_ms = words.next().map(parse_timestamp).transpose()?;
    match words.next() {
        Some(word) => Err(format!("unexpected `{word}` after the value of `{name}`")),
        None => Ok((name, labels, value, timestamp_ms)),
    }
}

fn parse_value(word: &str) -> Result<f64, String> {
    match word {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => word
            .parse()
            .map_err(|_| format!("`{word}` is not a number")),
    }
}

/// Milliseconds (the 0.0.4 format) or, with a fraction, seconds (OpenMetrics).
fn parse_timestamp(word: &str) -> Result<i64, String> {
    if let Ok(ms) = word.parse::<i64>() {
        return Ok(ms);
    }
    match word.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => Ok((seconds * 1000.0).round() as i64),
        _ => Err(format!("`{word}` is not a timestamp")),
    }
}

/// Reads a line from left to right.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A name whose first character passes `first` and the others `other`.
    fn ident(&mut self, first: fn(char) -> bool, other: fn(char) -> bool) -> Option<&'a str> {
        let mut chars = self.rest.char_indices();
        match chars.next() {
            Some((_, c)) if first(c) => {}
            _ => return None,
        }
        let end = chars
            .find(|&(_, c)| !other(c))
            .map_or(self.rest.len(), |(i, _)| i);
        let (ident, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(ident)
    }

    /// The rest of a quoted label value, after its opening quote.
    fn quoted(&mut self, label: &str) -> Result<String, String> {
        let mut value = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(format!("the value of label `{label}` has no closing `\"`"))
    }

    /// `name` or `name{label="value",...}`.
    fn name_and_labels(&mut self) -> Result<(String, Labels), String> {
        let name = self
            .ident(is_name_start, is_name_char)
            .ok_or_else(|| "expected a metric name".to_string())?
            .to_owned();
        self.skip_spaces();
        let mut labels = Vec::new();
        if !self.eat('{') {
            return Ok((name, labels));
        }
        loop {
            self.skip_spaces();
            if self.eat('}') {
                break;
            }
            let label = self
                .ident(is_label_start, is_label_char)
                .ok_or_else(|| format!("expected a label name or `}}` in `{name}`"))?;
            self.skip_spaces();
            if !self.eat('=') {
                return Err(format!("expected `=` after label `{label}` of `{name}`"));
            }
            self.skip_spaces();
            if !self.eat('"') {
                return Err(format!(
                    "expected `\"` to open the value of label `{label}` of `{name}`"
                ));
            }
            let value = self.quoted(label)?;
            labels.push((label.to_owned(), value));
            self.skip_spaces();
            if self.eat('}') {
                break;
            }
            if !self.eat(',') {
                return Err(format!(
                    "expected `,` or `}}` after the value of label `{label}` of `{name}`"
                ));
            }
        }
        Ok((name, labels))
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Which series to keep: a metric name (of a sample or of a whole family), and
/// labels the sample must have with those values, written like a sample:
/// `demo_shop_queue_depth{route="/orders"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    name: String,
    labels: Labels,
    text: String,
}

impl Selector {
    /// Reads `name` or `name{label="value",...}`, with nothing after it.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut cursor = Cursor { rest: text.trim() };
        let (name, labels) = cursor.name_and_labels()?;
        cursor.skip_spaces();
        if !cursor.rest.is_empty() {
            return Err(format!(
                "unexpected `{}` after the series `{name}`: expected a metric name, \
                 optionally with labels such as `{name}{{route=\"/orders\"}}`",
                cursor.rest
            ));
        }
        Ok(Selector {
            name,
            labels,
            text: text.trim().to_owned(),
        })
    }

    /// Whether `sample` is of the series: its name or family, and at least
    /// these labels with these values.
    pub fn matches(&self, sample: &Sample) -> bool {
        (sample.name == self.name || sample.family == self.name)
            && self
                .labels
                .iter()
                .all(|wanted| sample.labels.iter().any(|have| have == wanted))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP demo_shop_requests_total Requests served.
# TYPE demo_shop_requests_total counter
demo_shop_requests_total{route="/orders",code="200"} 1027 1395066363000
demo_shop_requests_total{route="/items",code="500"} 3
# A comment that is not a TYPE line.
# TYPE demo_shop_queue_depth gauge
demo_shop_queue_depth{route="/orders"} 4.5
demo_shop_queue_depth { route = "/weird \"quoted\" \\ path\n" , } -7e-1
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 5
latency_seconds_bucket{le="+Inf"} 9
latency_seconds_sum 2.5
latency_seconds_count 9
up NaN
temperature -Inf
broken{label=unquoted} 1
also_broken 12 34 56
"#;

    #[test]
    fn reads_names_labels_values_and_timestamps() {
        let page = parse(PAGE);
        let s = &page.samples;
        assert_eq!(s.len(), 10);
        assert_eq!(s[0].name, "demo_shop_requests_total");
        assert_eq!(s[0].kind, MetricType::Counter);
        assert_eq!(
            s[0].labels,
            vec![
                ("route".to_string(), "/orders".to_string()),
                ("code".to_string(), "200".to_string())
            ]
        );
        assert_eq!(s[0].value, 1027.0);
        assert_eq!(s[0].timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(s[1].timestamp_ms, None);
        assert_eq!(s[2].kind, MetricType::Gauge);
        assert_eq!(s[3].labels[0].1, "/weird \"quoted\" \\ path\n");
        assert_eq!(s[3].value, -0.7);
        assert_eq!(s[5].labels[0].1, "+Inf");
        assert_eq!(s[6].family, "latency_seconds");
        assert_eq!(s[6].kind, MetricType::Histogram);
        assert!(s[8].value.is_nan());
        assert_eq!(s[9].value, f64::NEG_INFINITY);
        assert_eq!(s[9].kind, MetricType::Untyped);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_skipped() {
        let page = parse(PAGE);
        assert_eq!(page.problems.len(), 2, "{:?}", page.problems);
        assert!(page.problems[0].starts_with("line 16: expected `\"`"));
        assert!(page.problems[1].starts_with("line 17: unexpected `56`"));
    }

    #[test]
    fn open_metrics_counters_and_exemplars() {
        let page = parse(
            "# TYPE jobs counter\njobs_total 12 # {trace_id=\"abc\"} 1.0\njobs_created 1.7e9\n# EOF\n",
        );
        assert!(page.problems.is_empty(), "{:?}", page.problems);
        assert_eq!(page.samples[0].family, "jobs");
        assert_eq!(page.samples[0].kind, MetricType::Counter);
        assert_eq!(page.samples[0].value, 12.0);
        assert_eq!(page.samples[0].timestamp_ms, None);
    }

    #[test]
    fn selectors_match_by_name_family_and_labels() {
        let page = parse(PAGE);
        let all = Selector::parse("demo_shop_requests_total").unwrap();
        let orders = Selector::parse(r#"demo_shop_requests_total{route="/orders"}"#).unwrap();
        let family = Selector::parse("latency_seconds").unwrap();
        let count = |sel: &Selector| page.samples.iter().filter(|s| sel.matches(s)).count();
        assert_eq!(count(&all), 2);
        assert_eq!(count(&orders), 1);
        assert_eq!(count(&family), 4);
        assert_eq!(
            orders.to_string(),
            r#"demo_shop_requests_total{route="/orders"}"#
        );
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        assert!(Selector::parse("").unwrap_err().contains("metric name"));
        assert!(Selector::parse("x{route=/a}")
            .unwrap_err()
            .contains("expected `\"`"));
        assert!(Selector::parse("x y")
            .unwrap_err()
            .contains("unexpected `y`"));
        assert!(Selector::parse("x{a=\"b\"")
            .unwrap_err()
            .contains("expected `,` or `}`"));
    }
}
