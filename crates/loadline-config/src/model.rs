//! The native scenario format as plain serde data. Deserialization checks shape
//! and types only; what the values mean (durations, URLs, templates, ranges) is
//! checked when the [`crate::build`] step turns this into a Plan. The JSON Schema
//! of the format is generated from these types.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::de::{Entries, Lenient, Spanned};

mod sql;
pub use sql::{DatabaseDoc, IsolationDoc, PoolModeDoc, QueryDoc, SetupDoc};

/// A list whose items are checked one by one, each remembering where it was
/// written.
pub type Items<T> = Spanned<Vec<Lenient<Spanned<T>>>>;

/// Named lists of phases.
pub type Profiles = Entries<Lenient<Items<PhaseDoc>>>;

/// A metric's threshold conditions.
pub type Conditions = Lenient<Vec<Spanned<ThresholdDoc>>>;

/// A loadline scenario: phases of load driving weighted flows of steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "loadline scenario")]
#[schemars(extend("anyOf" = [{"required": ["phases"]}, {"required": ["profiles"]}]))]
pub struct ScenarioDoc {
    /// A name for the scenario, shown in reports.
    pub name: Option<Lenient<Spanned<String>>>,
    /// The base URL that step URLs starting with `/` are joined to.
    pub target: Option<Lenient<Spanned<String>>>,
    /// Settings for every HTTP step.
    pub defaults: Option<Lenient<DefaultsDoc>>,
    /// Data files: each iteration draws one row from each.
    pub data: Option<Lenient<Entries<Lenient<Spanned<DataDoc>>>>>,
    /// Constants, usable in templates as `{{ name }}`.
    pub vars: Option<Lenient<Entries<serde_json::Value>>>,
    /// SQL databases, by the name `sql:` and `transaction:` steps use.
    pub databases: Option<Lenient<Entries<Lenient<Spanned<DatabaseDoc>>>>>,
    /// SQL statements run once, in order, before the load.
    pub setup: Option<Lenient<Items<SetupDoc>>>,
    /// SQL statements run once, in order, after the load (also after a failed or
    /// interrupted one).
    pub teardown: Option<Lenient<Items<SetupDoc>>>,
    /// Phases of load, run one after the other (what runs without `--profile`).
    #[schemars(with = "Option<Vec<PhaseDoc>>", length(min = 1))]
    pub phases: Option<Lenient<Items<PhaseDoc>>>,
    /// Named alternatives to `phases` (`normal`, `peak`, `stress`…), each a list of
    /// phases; `loadline run FILE --profile NAME` runs one.
    #[schemars(with = "Option<std::collections::BTreeMap<String, Vec<PhaseDoc>>>")]
    pub profiles: Option<Lenient<Spanned<Profiles>>>,
    /// The profile that runs when `--profile` is not given (only without `phases`).
    pub default_profile: Option<Lenient<Spanned<String>>>,
    /// Settings of the capacity search (`loadline capacity`, `--profile capacity`).
    pub capacity: Option<Lenient<Spanned<CapacityDoc>>>,
    /// Pass/fail criteria: metric (optionally `metric{step:NAME}`) to conditions.
    pub thresholds: Option<Lenient<Entries<Conditions>>>,
    /// The flows an iteration picks from, by weight.
    #[schemars(with = "Vec<FlowDoc>", length(min = 1))]
    pub flows: Option<Lenient<Items<FlowDoc>>>,
    /// How long in-flight iterations may run on after the load ends (default 10s).
    pub graceful_stop: Option<Lenient<Spanned<String>>>,
    /// Monitors of the system under test, the host and loadline itself, sampled
    /// on the load's timeline.
    pub monitor: Option<Lenient<Spanned<loadline_monitor::MonitorConfig>>>,
}

/// Settings for every HTTP step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsDoc {
    /// Headers sent with every request; a step's headers override them.
    pub headers: Option<Entries<Spanned<String>>>,
    /// Request timeout, e.g. `5s` (default 30s).
    pub timeout: Option<Spanned<String>>,
    /// Accept any TLS certificate (default false).
    pub insecure: Option<bool>,
    /// Keep cookies per virtual user (default true).
    pub cookies: Option<bool>,
    /// Follow redirects (default true).
    pub follow_redirects: Option<bool>,
    /// At most this many redirects per request (default 10).
    pub max_redirects: Option<Spanned<i64>>,
    /// At most this many bytes of a response body are kept for checks (default 1 MiB).
    pub max_body: Option<Spanned<i64>>,
}

/// A data file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataDoc {
    /// A `.csv` file with a header row, or `.jsonl`/`.ndjson`; relative to the scenario.
    pub file: Spanned<String>,
    /// How rows are handed out (default sequential).
    pub order: Option<Spanned<OrderDoc>>,
}

/// How a data file's rows are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderDoc {
    /// Row after row, wrapping around.
    Sequential,
    /// A random row each time.
    Random,
    /// Each row once; the run stops starting iterations when all are used.
    Unique,
}

/// A phase of load: `arrival_rate` (open model) or `vus` (closed model).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseDoc {
    /// How long the phase lasts, e.g. `30s`.
    pub duration: Option<Spanned<String>>,
    /// Open model: iterations started per second.
    pub arrival_rate: Option<Spanned<f64>>,
    /// Open model: the rate reached by the end of the phase.
    pub ramp_to: Option<Spanned<f64>>,
    /// Open model: at most this many iterations at once (default 10000).
    pub max_vus: Option<Spanned<i64>>,
    /// Closed model: this many virtual users, each looping.
    pub vus: Option<Spanned<i64>>,
    /// Closed model: the total number of iterations.
    pub iterations: Option<Spanned<i64>>,
    /// Shown in reports (default `phase N`).
    pub name: Option<Spanned<String>>,
}

/// How `loadline capacity` steps the arrival rate up; every key is optional and
/// the command line's flags win.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityDoc {
    /// The first step's arrival rate (default: the highest `arrival_rate` of the
    /// phases or profile chosen).
    pub start: Option<Spanned<f64>>,
    /// Each step's rate is the last one's times this (default 1.5).
    pub factor: Option<Spanned<f64>>,
    /// Or: each step's rate is the last one's plus this (instead of `factor`).
    pub step: Option<Spanned<f64>>,
    /// How long each step is held, e.g. `10s` (default 10s).
    pub step_duration: Option<Spanned<String>>,
    /// Never step above this rate (default 10000).
    pub max_rate: Option<Spanned<f64>>,
    /// Steps spent narrowing down between the last passing and the first failing
    /// rate (default 3; 0 = none).
    pub refine: Option<Spanned<i64>>,
    /// At most this many iterations at once in a step (default 10000).
    pub max_vus: Option<Spanned<i64>>,
    /// A pause between steps, so the system settles (default 0s).
    pub pause: Option<Spanned<String>>,
}

/// A threshold condition: `"p95 < 300ms"`, or the long form.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum ThresholdDoc {
    Short(String),
    Long(ThresholdLongDoc),
}

/// A threshold with options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdLongDoc {
    /// The condition, e.g. `rate < 5%`.
    pub expr: Spanned<String>,
    /// Stop the run as soon as the condition fails.
    pub abort_on_fail: Option<bool>,
    /// Judge an abort-on-fail threshold only after this long.
    pub delay: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for ThresholdDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThresholdDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition such as \"p95 < 300ms\" or { expr, abort_on_fail, delay }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ThresholdDoc::Short(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ThresholdLongDoc::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ThresholdDoc::Long)
            }
        }
        d.deserialize_any(V)
    }
}

/// A weighted sequence of steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowDoc {
    /// Shown in reports (default `flow N`); unique.
    pub name: Option<Spanned<String>>,
    /// Relative share of iterations (default 1).
    pub weight: Option<Spanned<i64>>,
    /// The steps, run in order.
    #[schemars(with = "Vec<StepDoc>", length(min = 1))]
    pub steps: Option<Items<StepDoc>>,
}

/// One step: an HTTP request (`get: /path` …), an SQL statement (`sql: DB`), a
/// `transaction`, a pause (`think`) or a `loop`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["get"]}, {"required": ["post"]}, {"required": ["put"]},
    {"required": ["patch"]}, {"required": ["delete"]}, {"required": ["head"]},
    {"required": ["think"]}, {"required": ["loop"]},
    {"required": ["sql"]}, {"required": ["transaction"]}
]))]
pub struct StepDoc {
    /// GET this URL: a path starting with `/` or an absolute http(s) URL.
    pub get: Option<Spanned<String>>,
    pub post: Option<Spanned<String>>,
    pub put: Option<Spanned<String>>,
    pub patch: Option<Spanned<String>>,
    pub delete: Option<Spanned<String>>,
    pub head: Option<Spanned<String>>,
    /// Pause: a duration (`1s`) or a range (`1s..3s`).
    pub think: Option<Spanned<String>>,
    /// Repeat `steps` this many times.
    #[serde(rename = "loop")]
    pub repeat: Option<Spanned<i64>>,
    /// Run the SQL statement `query` on this database (a name from `databases:`).
    pub sql: Option<Spanned<String>>,
    /// Run `steps` (`sql:` steps) as one transaction on this database: BEGIN,
    /// the statements, COMMIT; ROLLBACK when one fails.
    pub transaction: Option<Spanned<String>>,
    /// The steps of a `loop` or a `transaction`.
    pub steps: Option<Items<StepDoc>>,
    /// The metric group (default: `METHOD url`; `SQL ` and the query's first
    /// words; `transaction DB`).
    pub name: Option<Spanned<String>>,
    /// Request headers (templates), over the defaults' headers.
    pub headers: Option<Entries<Spanned<String>>>,
    /// HTTP: query parameters (templates), appended to the URL. `sql:` steps:
    /// the statement (a template), with placeholders `$1`, `$2`, ….
    pub query: Option<Spanned<QueryDoc>>,
    /// `sql:` steps: the values bound to `$1`, `$2`, … (templates, or plain
    /// numbers, booleans and null).
    #[schemars(with = "Option<Vec<sql::ParamValue>>")]
    pub params: Option<Spanned<Vec<Spanned<JsonDoc>>>>,
    /// A `transaction`'s isolation level (default: the database's).
    pub isolation: Option<Spanned<IsolationDoc>>,
    /// A JSON body; strings may hold templates.
    pub json: Option<Spanned<JsonDoc>>,
    /// A raw body (a template).
    pub body: Option<Spanned<String>>,
    /// A URL-encoded form body (templates).
    pub form: Option<Spanned<Entries<Spanned<String>>>>,
    /// Checks on the response.
    pub check: Option<CheckDoc>,
    /// Values to capture from the response, by name.
    pub capture: Option<Entries<Lenient<Spanned<CaptureDoc>>>>,
    /// Request timeout, overriding the default.
    pub timeout: Option<Spanned<String>>,
    /// Follow redirects, overriding the default.
    pub follow_redirects: Option<bool>,
    /// Repeat the request until this condition on the response holds (a polling
    /// step); the step's name then measures the time until it held.
    pub until: Option<Spanned<UntilDoc>>,
    /// How often and how long a polling step repeats (`until` required).
    pub poll: Option<Spanned<PollDoc>>,
}

/// The condition a polling step waits for: exactly one of `status`,
/// `body_contains` or `json` (with an optional `equals`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["status"]}, {"required": ["body_contains"]}, {"required": ["json"]}
]))]
pub struct UntilDoc {
    /// The status is this one, or one of this list.
    pub status: Option<Spanned<StatusDoc>>,
    /// The body contains this text.
    pub body_contains: Option<Spanned<String>>,
    /// A JSONPath into the JSON body, e.g. `$.state`.
    pub json: Option<Spanned<String>>,
    /// The value the JSONPath's first match must equal (any YAML value); without
    /// it, the path only has to match something.
    pub equals: Option<Spanned<JsonDoc>>,
}

/// The pace of a polling step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollDoc {
    /// The pause between two requests (default 200ms).
    pub interval: Option<Spanned<String>>,
    /// Give up after this long, counted as a failure with error `timeout` (default 30s).
    pub timeout: Option<Spanned<String>>,
}

/// A query parameter's value as the schema describes it: the text of any scalar
/// (`page: 2` sends `page=2`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum QueryValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// Checks on a response (HTTP: `status`, `body_contains`, `header`) or on a
/// statement's result (SQL: `rows`, `rows_at_least`, `rows_at_most`, `column`
/// with `equals`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckDoc {
    /// The expected status code, or a list of them.
    pub status: Option<Spanned<StatusDoc>>,
    /// Text the body must contain.
    pub body_contains: Option<Spanned<String>>,
    /// A header the response must have.
    pub header: Option<Spanned<String>>,
    /// SQL: exactly this many rows returned (or, for a statement returning
    /// none, affected).
    pub rows: Option<Spanned<i64>>,
    /// SQL: at least this many rows.
    pub rows_at_least: Option<Spanned<i64>>,
    /// SQL: at most this many rows.
    pub rows_at_most: Option<Spanned<i64>>,
    /// SQL: a column of the first row, whose value must be `equals`.
    pub column: Option<Spanned<String>>,
    /// SQL: the value `column` must have (any YAML value).
    pub equals: Option<Spanned<JsonDoc>>,
}

/// One status code or a list.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum StatusDoc {
    One(i64),
    Many(Vec<i64>),
}

impl StatusDoc {
    pub fn codes(&self) -> Vec<i64> {
        match self {
            StatusDoc::One(c) => vec![*c],
            StatusDoc::Many(cs) => cs.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for StatusDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code such as 200, or a list such as [200, 201]")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StatusDoc::One(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StatusDoc::One(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut codes = Vec::new();
                while let Some(c) = seq.next_element::<i64>()? {
                    codes.push(c);
                }
                Ok(StatusDoc::Many(codes))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a captured value comes from: exactly one of `json`, `regex`, `header`
/// (HTTP) or `column` (SQL).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["json"]}, {"required": ["regex"]}, {"required": ["header"]},
    {"required": ["column"]}
]))]
pub struct CaptureDoc {
    /// A JSONPath into the JSON body, e.g. `$.items[0].id`.
    pub json: Option<Spanned<String>>,
    /// A regular expression run on the body.
    pub regex: Option<Spanned<String>>,
    /// The regex capture group (default 1 when the regex has one, else 0).
    pub group: Option<Spanned<i64>>,
    /// A response header's name.
    pub header: Option<Spanned<String>>,
    /// SQL: a column of the statement's first row (by the name the result set
    /// gives it).
    pub column: Option<Spanned<String>>,
}

/// Any YAML value, remembering where each string was written (for JSON bodies
/// whose strings are templates).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonDoc {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<JsonDoc>>),
    Map(Vec<(String, Spanned<JsonDoc>)>),
}

impl schemars::JsonSchema for JsonDoc {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::from(true)
    }
}

impl<'de> Deserialize<'de> for JsonDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JsonDoc::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JsonDoc::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonDoc::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonDoc::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JsonDoc::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonDoc::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(JsonDoc::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    entries.push((k, v));
                }
                Ok(JsonDoc::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}
