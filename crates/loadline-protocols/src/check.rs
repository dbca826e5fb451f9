//! Tests on one value of a response (a JSONPath's first match, a header): equals,
//! not equals, `<` `<=` `>` `>=`, exists, matches a regex, one of a list, contains.
//! Written once in a step's document, compiled at load time, judged per
//! response; a failure says what the value was.

use std::fmt::Write as _;

use loadline_core::build::{BuildCtx, Span};
use loadline_core::template::{Template, Vars};
use loadline_doc::de::Spanned;
use loadline_doc::value::{plain_value, JsonDoc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// What a value must satisfy: one or more of these keys (all must hold).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueTestDoc {
    /// A JSONPath into the JSON body, e.g. `$.items[0].state` (JSON checks only).
    pub path: Option<Spanned<String>>,
    /// The value equals this one (any YAML value; a string may be a template,
    /// e.g. `"{{ order_id }}"`). Scalars of different types compare by their
    /// text: `equals: "5"` holds for the number 5.
    pub equals: Option<Spanned<JsonDoc>>,
    /// The value does not equal this one.
    pub not_equals: Option<Spanned<JsonDoc>>,
    /// The value is a number below this one.
    pub lt: Option<Spanned<f64>>,
    /// The value is a number at most this one.
    pub le: Option<Spanned<f64>>,
    /// The value is a number above this one.
    pub gt: Option<Spanned<f64>>,
    /// The value is a number at least this one.
    pub ge: Option<Spanned<f64>>,
    /// The value is there (`true`) or is not (`false`).
    pub exists: Option<Spanned<bool>>,
    /// The value's text matches this regular expression.
    pub matches: Option<Spanned<String>>,
    /// The value equals one of these.
    pub one_of: Option<Spanned<Vec<Spanned<JsonDoc>>>>,
    /// The value's text contains this text.
    pub contains: Option<Spanned<String>>,
}

/// A value to compare with: fixed, or rendered per response.
#[derive(Debug, Clone)]
pub enum Expected {
    Value(Value),
    /// A template, and its text as written.
    Template(Template, String),
}

/// One test on a value.
#[derive(Debug, Clone)]
pub enum ValueTest {
    Exists(bool),
    Equals(Expected),
    NotEquals(Expected),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Matches(regex::Regex),
    OneOf(Vec<Expected>),
    Contains(String),
}

impl ValueTest {
    /// Whether `actual` (`None`: the value is not there) passes.
    pub fn passes(&self, actual: Option<&Value>, vars: &mut Vars) -> bool {
        match (self, actual) {
            (ValueTest::Exists(want), a) => a.is_some() == *want,
            (_, None) => false,
            (ValueTest::Equals(e), Some(a)) => e.matches(a, vars),
            (ValueTest::NotEquals(e), Some(a)) => !e.matches(a, vars),
            (ValueTest::Lt(x), Some(a)) => number(a).is_some_and(|n| n < *x),
            (ValueTest::Le(x), Some(a)) => number(a).is_some_and(|n| n <= *x),
            (ValueTest::Gt(x), Some(a)) => number(a).is_some_and(|n| n > *x),
            (ValueTest::Ge(x), Some(a)) => number(a).is_some_and(|n| n >= *x),
            (ValueTest::Matches(re), Some(a)) => re.is_match(&text(a)),
            (ValueTest::OneOf(list), Some(a)) => list.iter().any(|e| e.matches(a, vars)),
            (ValueTest::Contains(part), Some(a)) => text(a).contains(part.as_str()),
        }
    }

    /// The test for people: `equals "confirmed"`, `< 100`, `exists`.
    pub fn describe(&self) -> String {
        match self {
            ValueTest::Exists(true) => "exists".into(),
            ValueTest::Exists(false) => "does not exist".into(),
            ValueTest::Equals(e) => format!("equals {}", e.describe()),
            ValueTest::NotEquals(e) => format!("not equals {}", e.describe()),
            ValueTest::Lt(x) => format!("< {x}"),
            ValueTest::Le(x) => format!("<= {x}"),
            ValueTest::Gt(x) => format!("> {x}"),
            ValueTest::Ge(x) => format!(">= {x}"),
            ValueTest::Matches(re) => format!("matches {:?}", re.as_str()),
            ValueTest::OneOf(list) => {
                let mut out = String::from("one of [");
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&e.describe());
                }
                out.push(']');
                out
            }
            ValueTest::Contains(part) => format!("contains {part:?}"),
        }
    }
}

impl Expected {
    fn matches(&self, actual: &Value, vars: &mut Vars) -> bool {
        match self {
            Expected::Value(want) => equal(actual, want),
            Expected::Template(t, _) => equal(actual, &Value::String(t.render(vars))),
        }
    }

    fn describe(&self) -> String {
        match self {
            Expected::Value(v) => v.to_string(),
            Expected::Template(_, source) => format!("{source:?}"),
        }
    }
}

/// Equal JSON values; numbers by value (`1` equals `1.0`), and a string and
/// another scalar by the string's meaning (`"5"` equals `5`, `"true"` equals
/// `true`, `"null"` equals null).
pub fn equal(actual: &Value, want: &Value) -> bool {
    match (actual, want) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        (Value::String(a), Value::String(b)) => a == b,
        (Value::String(s), other) | (other, Value::String(s)) => match other {
            Value::Number(n) => s.trim().parse::<f64>().ok() == n.as_f64(),
            Value::Bool(b) => s == if *b { "true" } else { "false" },
            Value::Null => s == "null",
            _ => false,
        },
        _ => actual == want,
    }
}

/// A number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value's text: a string as it is, anything else as JSON.
fn text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

/// A value for a failure message: `"pending"`, `42`, `missing`.
pub fn describe_actual(actual: Option<&Value>) -> String {
    match actual {
        None => "missing".into(),
        Some(v) => v.to_string(),
    }
}

/// Reads the tests of one document, in a fixed order; `None` when one is
/// wrong (reported). `what` names the checked value in messages (`a JSON
/// check`, `the header check of x-cache`).
pub fn read_tests(
    ctx: &mut dyn BuildCtx,
    doc: &ValueTestDoc,
    at: &Span,
    what: &str,
) -> Option<Vec<ValueTest>> {
    let before = ctx.error_count();
    let mut tests = Vec::new();
    if let Some(e) = &doc.exists {
        tests.push(ValueTest::Exists(e.value));
    }
    if let Some(e) = &doc.equals {
        if let Some(e) = expected(ctx, e) {
            tests.push(ValueTest::Equals(e));
        }
    }
    if let Some(e) = &doc.not_equals {
        if let Some(e) = expected(ctx, e) {
            tests.push(ValueTest::NotEquals(e));
        }
    }
    for (bound, make) in [
        (&doc.lt, ValueTest::Lt as fn(f64) -> ValueTest),
        (&doc.le, ValueTest::Le),
        (&doc.gt, ValueTest::Gt),
        (&doc.ge, ValueTest::Ge),
    ] {
        if let Some(b) = bound {
            if b.value.is_finite() {
                tests.push(make(b.value));
            } else {
                ctx.error(&b.span, "expected a finite number");
            }
        }
    }
    if let Some(m) = &doc.matches {
        match regex::Regex::new(&m.value) {
            Ok(re) => tests.push(ValueTest::Matches(re)),
            Err(e) => ctx.error(&m.span, format!("invalid regular expression: {e}")),
        }
    }
    if let Some(list) = &doc.one_of {
        if list.value.is_empty() {
            ctx.error(&list.span, "`one_of` needs at least one value");
        }
        let values: Option<Vec<Expected>> = list.value.iter().map(|v| expected(ctx, v)).collect();
        if let Some(values) = values {
            tests.push(ValueTest::OneOf(values));
        }
    }
    if let Some(c) = &doc.contains {
        tests.push(ValueTest::Contains(c.value.clone()));
    }
    if ctx.error_count() > before {
        return None;
    }
    if tests.is_empty() {
        ctx.missing(
            at,
            &[
                "equals",
                "not_equals",
                "lt",
                "le",
                "gt",
                "ge",
                "exists",
                "matches",
                "one_of",
                "contains",
            ],
            format!(
                "{what} needs a test: one of `equals`, `not_equals`, `lt`, `le`, `gt`, `ge`, `exists`, `matches`, `one_of` or `contains`"
            ),
        );
        return None;
    }
    Some(tests)
}

/// A value to compare with: a string holding `{{` is a template.
fn expected(ctx: &mut dyn BuildCtx, doc: &Spanned<JsonDoc>) -> Option<Expected> {
    if let JsonDoc::Str(s) = &doc.value {
        if s.contains("{{") {
            return ctx
                .template(s, &doc.span)
                .map(|t| Expected::Template(t, s.clone()));
        }
    }
    plain_value(ctx, doc).map(Expected::Value)
}

/// `label` followed by each test: `json $.state equals "confirmed"`; several
/// tests are joined with `and`.
pub fn label(subject: &str, tests: &[ValueTest]) -> String {
    let mut out = String::from(subject);
    for (i, t) in tests.iter().enumerate() {
        if i > 0 {
            out.push_str(" and");
        }
        let _ = write!(out, " {}", t.describe());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        Vars::new(0, std::sync::Arc::new(Vec::new()), 1, 1)
    }

    #[test]
    fn equality_is_by_value_and_by_text_across_scalar_types() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(equal(&json!(5), &json!("5")));
        assert!(equal(&json!("true"), &json!(true)));
        assert!(equal(&json!(null), &json!("null")));
        assert!(!equal(&json!("5"), &json!(6)));
        assert!(equal(&json!({"a": [1]}), &json!({"a": [1]})));
        assert!(!equal(&json!([1]), &json!("[1]")));
    }

    #[test]
    fn each_test_passes_and_fails_where_it_should() {
        let mut v = vars();
        let re = regex::Regex::new("^ord-[0-9]+$").unwrap_or_else(|e| panic!("{e}"));
        let cases: Vec<(ValueTest, Option<Value>, bool)> = vec![
            (ValueTest::Exists(true), Some(json!(0)), true),
            (ValueTest::Exists(true), None, false),
            (ValueTest::Exists(false), None, true),
            (
                ValueTest::Equals(Expected::Value(json!("ok"))),
                Some(json!("ok")),
                true,
            ),
            (ValueTest::Equals(Expected::Value(json!("ok"))), None, false),
            (
                ValueTest::NotEquals(Expected::Value(json!("ok"))),
                Some(json!("no")),
                true,
            ),
            (
                ValueTest::NotEquals(Expected::Value(json!("ok"))),
                None,
                false,
            ),
            (ValueTest::Lt(10.0), Some(json!(9.5)), true),
            (ValueTest::Lt(10.0), Some(json!(10)), false),
            (ValueTest::Le(10.0), Some(json!(10)), true),
            (ValueTest::Gt(10.0), Some(json!("11")), true),
            (ValueTest::Ge(10.0), Some(json!("x")), false),
            (ValueTest::Matches(re.clone()), Some(json!("ord-12")), true),
            (ValueTest::Matches(re), Some(json!("ord-x")), false),
            (
                ValueTest::OneOf(vec![Expected::Value(json!(1)), Expected::Value(json!(2))]),
                Some(json!(2)),
                true,
            ),
            (
                ValueTest::OneOf(vec![Expected::Value(json!(1))]),
                Some(json!(3)),
                false,
            ),
            (
                ValueTest::Contains("ell".into()),
                Some(json!("hello")),
                true,
            ),
            (ValueTest::Contains("z".into()), Some(json!("hello")), false),
        ];
        for (test, actual, want) in cases {
            assert_eq!(
                test.passes(actual.as_ref(), &mut v),
                want,
                "{} on {actual:?}",
                test.describe()
            );
        }
    }

    #[test]
    fn labels_say_what_is_tested() {
        let tests = [
            ValueTest::Equals(Expected::Value(json!("confirmed"))),
            ValueTest::Lt(100.0),
        ];
        assert_eq!(
            label("json $.state", &tests),
            r#"json $.state equals "confirmed" and < 100"#
        );
        assert_eq!(describe_actual(None), "missing");
        assert_eq!(describe_actual(Some(&json!("x"))), r#""x""#);
    }
}
