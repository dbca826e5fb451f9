//! The native scenario format as plain serde data. Deserialization checks shape
//! and types only; what the values mean (durations, URLs, templates, ranges) is
//! checked when the [`crate::build`] step turns this into a Plan. The JSON Schema
//! of the format is generated from these types.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

pub use loadline_doc::de::Items;
use loadline_doc::de::{Entries, Lenient, Raw, Spanned};

/// Named lists of phases.
pub type Profiles = Entries<Lenient<Items<PhaseDoc>>>;

/// Named scenarios, each read on its own.
pub type NamedScenarios = Spanned<Entries<Lenient<Spanned<NamedScenarioDoc>>>>;

/// A metric's threshold conditions.
pub type Conditions = Lenient<Vec<Spanned<ThresholdDoc>>>;

/// A loadline scenario: phases of load driving weighted flows of steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "loadline scenario")]
#[schemars(extend("anyOf" = [
    {"required": ["phases", "flows"]},
    {"required": ["profiles", "flows"]},
    {"required": ["scenarios"]}
]))]
pub struct ScenarioDoc {
    /// A name for the scenario, shown in reports.
    pub name: Option<Lenient<Spanned<String>>>,
    /// The base URL that step URLs starting with `/` are joined to.
    pub target: Option<Lenient<Spanned<String>>>,
    /// Data files: each iteration draws one row from each.
    pub data: Option<Lenient<Entries<Lenient<Spanned<DataDoc>>>>>,
    /// Constants, usable in templates as `{{ name }}`.
    pub vars: Option<Lenient<Entries<serde_json::Value>>>,
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
    /// Pass/fail criteria: metric (optionally `metric{step:NAME}`, `metric{phase:NAME}` or
    /// both), or a monitor series (`process.cpu_percent{name=nginx}`), to conditions.
    pub thresholds: Option<Lenient<Entries<Conditions>>>,
    /// The flows an iteration picks from, by weight.
    #[schemars(with = "Option<Vec<FlowDoc>>", length(min = 1))]
    pub flows: Option<Lenient<Items<FlowDoc>>>,
    /// Named scenarios that run at once, each with its own `phases` and
    /// `flows` (instead of the top-level `phases`, `profiles` and `flows`).
    #[schemars(with = "Option<std::collections::BTreeMap<String, NamedScenarioDoc>>")]
    pub scenarios: Option<Lenient<NamedScenarios>>,
    /// How long in-flight iterations may run on after the load ends (default 10s).
    pub graceful_stop: Option<Lenient<Spanned<String>>>,
    /// Monitors of the system under test, the host and loadline itself, sampled
    /// on the load's timeline.
    pub monitor: Option<Lenient<Spanned<loadline_monitor::MonitorConfig>>>,
    /// What the summary reports of caches the load meets.
    pub cache: Option<Lenient<Spanned<CacheDoc>>>,
}

/// One of the `scenarios:`: its own phases and flows, run alongside the others.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedScenarioDoc {
    /// Its phases of load, run one after the other.
    #[schemars(with = "Vec<PhaseDoc>", length(min = 1))]
    pub phases: Option<Lenient<Items<PhaseDoc>>>,
    /// The flows its iterations pick from, by weight.
    #[schemars(with = "Vec<FlowDoc>", length(min = 1))]
    pub flows: Option<Lenient<Items<FlowDoc>>>,
    /// How long after the start of the run its first phase starts, e.g. `10s`
    /// (default 0s).
    pub start_after: Option<Spanned<String>>,
}

/// The `cache:` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheDoc {
    /// The hit ratio at which a cache counts as warm, e.g. `90%` (the default)
    /// or `0.9`: the summary gives the time a one-second interval first reached
    /// it.
    pub warm_at: Option<Spanned<loadline_doc::value::JsonDoc>>,
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
    /// Open model: how arrivals are spaced: `uniform` (evenly, the default) or
    /// `poisson` (independent arrivals, exponential gaps at the planned mean
    /// rate; reproducible with `--seed`).
    #[schemars(with = "Option<ArrivalsSchema>")]
    pub arrivals: Option<Spanned<String>>,
    /// Closed model: this many virtual users, each looping.
    pub vus: Option<Spanned<i64>>,
    /// Closed model: the total number of iterations.
    pub iterations: Option<Spanned<i64>>,
    /// Shown in reports (default `phase N`).
    pub name: Option<Spanned<String>>,
}

/// The arrival processes, for the schema.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ArrivalsSchema {
    Uniform,
    Poisson,
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
    #[schemars(with = "Vec<StepSchema>", length(min = 1))]
    pub steps: Option<Items<Raw>>,
}

/// One step, as the schema describes it: the union of the format's own steps
/// (`think`, `loop`) and every protocol's, assembled into the schema at
/// `#/$defs/Step` by [`crate::json_schema`]. A step is read as a [`Raw`] node and
/// handed to whoever owns its kind key.
pub struct StepSchema;

impl JsonSchema for StepSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::from(true)
    }
}
