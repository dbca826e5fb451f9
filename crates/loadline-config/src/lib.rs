//! Scenario files to a runnable [`Plan`]: loadline's native YAML format, checked
//! with precise positions, and the JSON Schema of that format.
//!
//! Loading happens in three passes. The YAML text becomes a tree of nodes that
//! remember their line and column ([`yaml`]); serde deserializes the tree into the
//! format's model ([`model`]), recording every shape or type error and carrying on;
//! then the builder checks what the values mean (durations, URLs, templates, data
//! files, thresholds) and assembles the [`Plan`], every template compiled. Every
//! problem found by any pass is reported, in file order.
//!
//! ```no_run
//! let loaded = loadline_config::load_file(std::path::Path::new("scenario.yaml"))
//!     .map_err(|errors| eprintln!("{errors}"))
//!     .ok();
//! ```
//!
//! # Adding a protocol
//!
//! A step kind the format does not know is a protocol's: its entry in a
//! [`Registry`] names the key (`ping:` here), reads its step document with the
//! lenient deserializer, and builds an executor through core's build context.
//! This toy protocol records one sample per `ping` step:
//!
//! ```
//! use std::any::Any;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use loadline_config::{load_str_in, Overrides, Registry};
//! use loadline_core::build::BuildCtx;
//! use loadline_core::metrics::{GroupId, RequestSample};
//! use loadline_core::protocol::{BoxFuture, Protocol, StepExec, StepOutcome};
//! use loadline_core::runner::{run, NoObserver, RunOptions};
//! use loadline_core::vu::Vu;
//! use loadline_doc::de::{read, Raw, Spanned};
//! use loadline_protocols::registry::{ProtocolBuilder, ProtocolEntry, Scenario, StepDocument, StepKind};
//!
//! /// `ping: TEXT`: one sample each.
//! struct Ping;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct PingDoc {
//!     ping: Spanned<String>,
//! }
//!
//! #[derive(Debug)]
//! struct PingProtocol;
//!
//! impl Protocol for PingProtocol {
//!     fn name(&self) -> &'static str { "ping" }
//!     fn new_vu_state(&self) -> Box<dyn Any + Send> { Box::new(()) }
//! }
//!
//! #[derive(Debug)]
//! struct PingStep { group: GroupId }
//!
//! impl StepExec for PingStep {
//!     fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
//!         Box::pin(async move {
//!             vu.metrics.record_request(&RequestSample {
//!                 group: self.group,
//!                 latency: Duration::from_micros(50),
//!                 status: None,
//!                 failed: false,
//!                 error: None,
//!                 bytes_sent: 4,
//!                 bytes_received: 4,
//!                 cache: loadline_core::cache::CacheOutcome::None,
//!             });
//!             StepOutcome::Continue
//!         })
//!     }
//! }
//!
//! struct PingBuilder { joined: bool }
//!
//! impl ProtocolEntry for Ping {
//!     fn name(&self) -> &'static str { "ping" }
//!     fn steps(&self, generator: &mut schemars::SchemaGenerator) -> Vec<StepDocument> {
//!         vec![StepDocument {
//!             kinds: vec![StepKind { key: "ping", described: "a `ping` step" }],
//!             schema: generator.subschema_for::<PingDoc>(),
//!         }]
//!     }
//!     fn begin(&self, _: &Scenario, _: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
//!         Box::new(PingBuilder { joined: false })
//!     }
//! }
//!
//! impl ProtocolBuilder for PingBuilder {
//!     fn step(&mut self, _kind: &str, step: &Raw, ctx: &mut dyn BuildCtx) -> Option<Arc<dyn StepExec>> {
//!         if !self.joined {
//!             ctx.add_protocol(Arc::new(PingProtocol));
//!             self.joined = true;
//!         }
//!         let doc: PingDoc = read(step, ctx)?;
//!         let group = ctx.group(format!("ping {}", doc.ping.value), "ping", &doc.ping.span)?;
//!         Some(Arc::new(PingStep { group }))
//!     }
//! }
//!
//! // One line adds it; the scenario uses it like any other step.
//! let registry = Registry::builtin().with(Ping);
//! let text = "phases: [ { vus: 2, iterations: 6 } ]\nflows: [ { steps: [ { ping: pong } ] } ]\n";
//! let loaded = load_str_in(&registry, "ping.yaml", text, ".".as_ref(), &Overrides::default())
//!     .expect("a valid scenario");
//! let plan = Arc::new(loaded.plan);
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let result = runtime.block_on(run(plan, RunOptions::default(), Box::new(NoObserver)));
//! assert_eq!(result.total.groups[0].requests, 6);
//!
//! // A misspelt key of its step is reported where it is written.
//! let bad = "phases: [ { vus: 1, iterations: 1 } ]\nflows: [ { steps: [ { ping: a, pnig: b } ] } ]\n";
//! let errors = load_str_in(&registry, "bad.yaml", bad, ".".as_ref(), &Overrides::default())
//!     .unwrap_err()
//!     .to_string();
//! assert!(errors.starts_with("bad.yaml:2:32: flows[0].steps[0].pnig: unknown key `pnig`"), "{errors}");
//! ```

mod build;
mod error;
mod model;

use std::path::Path;
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors};
use loadline_core::capacity::SearchSpec;
pub use loadline_core::plan::Arrivals;
use loadline_core::plan::{Phase, Plan};
pub use loadline_protocols::registry::{Dump, Registry};

/// The profile name that means "the capacity search" rather than a list of phases
/// (`loadline run FILE --profile capacity` is `loadline capacity FILE`). A
/// scenario cannot define a profile of this name; its settings go under
/// `capacity:`.
pub const CAPACITY_PROFILE: &str = "capacity";

/// A loaded scenario: the plan and any non-fatal remarks about it.
#[derive(Debug)]
pub struct Loaded {
    /// The plan, with the phases chosen (`phases`, the `--profile`, or the
    /// `default_profile`, scaled to `--scale-to` when asked), or the one phase
    /// the command line gives instead.
    pub plan: Plan,
    /// Things that are allowed but probably unintended, one line each.
    pub warnings: Vec<String>,
    /// The profile whose phases the plan has; `None` for `phases` (or no phases).
    pub profile: Option<String>,
    /// Every profile the scenario defines, in written order (unscaled).
    pub profiles: Vec<Profile>,
    /// The scenario's `capacity:` settings (all `None` when absent).
    pub capacity: SearchSpec,
    /// The scenario's `monitor:` settings, when given.
    pub monitor: Option<loadline_monitor::MonitorConfig>,
    /// The base URL the load goes to (after `--target`), for monitors that watch
    /// the process serving it.
    pub target: Option<url::Url>,
}

/// A named list of phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub phases: Vec<Phase>,
}

impl Profile {
    /// The planned duration, when every phase has one.
    pub fn planned_duration(&self) -> Option<Duration> {
        self.phases.iter().map(Phase::planned_duration).sum()
    }
}

/// What the command line changes in a scenario. Defaults change nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Run this profile instead of `phases` (or the `default_profile`).
    pub profile: Option<String>,
    /// Scale every phase with a duration so that together they last this long
    /// (phases ended by `iterations` are left as they are): `--scale-to`.
    pub scale_to: Option<Duration>,
    /// One phase that replaces the scenario's phases and profiles (k6's
    /// `--vus`, `--duration`, `--iterations`), when given.
    pub load: Option<LoadOverride>,
    /// Replace the scenario's `target`.
    pub target: Option<String>,
    /// Values of `{{ $env.NAME }}` that win over the process environment
    /// (`-e NAME=VALUE`), in the order given (a later one wins).
    pub env: Vec<(String, String)>,
    /// How the open-model phases space their arrivals, over what each phase says.
    pub arrivals: Option<Arrivals>,
    /// Thresholds added to the scenario's, each `METRIC: EXPR` as a scenario
    /// writes them (`latency: p95 < 200ms`, `errors{step:login}: rate < 1%`).
    pub thresholds: Vec<String>,
    /// Accept any TLS certificate, whatever the protocols' own settings say
    /// (`--insecure`).
    pub insecure: bool,
    /// What the protocols print of each exchange on stderr (`--http-debug`).
    pub dump: Dump,
    /// The caller will not run the phases (it validates, or searches capacity), so
    /// a scenario with only `profiles` and no `default_profile` loads without
    /// phases instead of asking for `--profile`.
    pub phases_optional: bool,
}

/// The load of the command line, which replaces the scenario's phases with one
/// phase, as k6's flags do: `vus` (closed model) or `rate` (open model), ended by
/// `duration` and/or `iterations`. `iterations` alone means one VU running them;
/// with a `duration` too, the iterations must be done within it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOverride {
    /// Virtual users, each looping (`--vus`).
    pub vus: Option<u64>,
    /// Iterations started per second (`--rate`).
    pub rate: Option<f64>,
    /// How long the phase lasts (`--duration`).
    pub duration: Option<Duration>,
    /// The iterations the VUs share out (`--iterations`).
    pub iterations: Option<u64>,
}

/// Reads and loads a scenario file; data files are found relative to its folder.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_file_with(path, &Overrides::default())
}

/// [`load_file`] with command-line overrides.
pub fn load_file_with(path: &Path, overrides: &Overrides) -> Result<Loaded, ConfigErrors> {
    load_file_in(&Registry::builtin(), path, overrides)
}

/// [`load_file_with`] with the protocols of `registry` (loadline's own are
/// [`Registry::builtin`]).
pub fn load_file_in(
    registry: &Registry,
    path: &Path,
    overrides: &Overrides,
) -> Result<Loaded, ConfigErrors> {
    let source = path.display().to_string();
    let text = read_scenario(path).map_err(|message| ConfigErrors {
        errors: vec![ConfigError {
            file: source.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        }],
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    load_str_in(registry, &source, &text, base_dir, overrides)
}

/// The most a scenario file may hold. Real scenarios are a few KiB; the bound
/// keeps `/dev/zero` or a runaway generated file from exhausting memory.
pub const MAX_SCENARIO_BYTES: u64 = 16 << 20;

/// A scenario file's text: a regular file (or a link to one) of at most
/// [`MAX_SCENARIO_BYTES`], UTF-8, with no NUL byte.
fn read_scenario(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read the scenario file: {e}"))?;
    if !meta.is_file() {
        return Err(
            "the scenario is not a regular file (a folder, a device or a pipe): give the path of a YAML file"
                .into(),
        );
    }
    let too_big = || {
        format!(
            "the scenario file is over {} MiB: at most {} MiB is read",
            MAX_SCENARIO_BYTES >> 20,
            MAX_SCENARIO_BYTES >> 20
        )
    };
    if meta.len() > MAX_SCENARIO_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SCENARIO_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the scenario file: {e}"))?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(too_big());
    }
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(format!(
            "the scenario file is not text: it holds a NUL byte (at byte {at})"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the scenario file is not UTF-8 text (an invalid byte at byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The number of lines of `text` as YAML counts them (breaks at `\n`, `\r\n` and a
/// lone `\r`); at least 1.
fn text_lines(text: &str) -> usize {
    let breaks =
        text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    let unterminated = !text.is_empty() && !text.ends_with(['\n', '\r']);
    (breaks + usize::from(unterminated)).max(1)
}

/// Loads a scenario from text; `source_name` names it in messages and data files
/// are found relative to `base_dir`.
pub fn load_str(source_name: &str, text: &str, base_dir: &Path) -> Result<Loaded, ConfigErrors> {
    load_str_with(source_name, text, base_dir, &Overrides::default())
}

/// [`load_str`] with command-line overrides.
pub fn load_str_with(
    source_name: &str,
    text: &str,
    base_dir: &Path,
    overrides: &Overrides,
) -> Result<Loaded, ConfigErrors> {
    load_str_in(&Registry::builtin(), source_name, text, base_dir, overrides)
}

/// [`load_str_with`] with the protocols of `registry`.
pub fn load_str_in(
    registry: &Registry,
    source_name: &str,
    text: &str,
    base_dir: &Path,
    overrides: &Overrides,
) -> Result<Loaded, ConfigErrors> {
    let built = build::build_with(registry, text, base_dir, overrides);
    // The parser reports the end of a document on the line after its last one;
    // point at the last line that exists instead.
    let last_line = text_lines(text);
    let located = |p: build::Problem| ConfigError {
        file: source_name.to_string(),
        line: p.mark.line.min(last_line),
        column: p.mark.column,
        path: p.path,
        // One error per line, whatever a library's message looks like.
        message: p.message.replace('\n', " "),
    };
    match built.draft {
        Some(mut draft) if built.problems.is_empty() => {
            let profile = draft.profile.take();
            let profiles = std::mem::take(&mut draft.profiles);
            let capacity = std::mem::take(&mut draft.capacity);
            let monitor = draft.monitor.take();
            let target = draft.target.take();
            Ok(Loaded {
                plan: draft.into_plan(source_name.to_string()),
                warnings: built
                    .warnings
                    .into_iter()
                    .map(|w| located(w).to_string())
                    .collect(),
                profile,
                profiles,
                capacity,
                monitor,
                target,
            })
        }
        _ => Err(ConfigErrors {
            errors: built.problems.into_iter().map(located).collect(),
        }),
    }
}

/// The JSON Schema of the native scenario format with loadline's own protocols,
/// pretty-printed.
pub fn json_schema() -> String {
    json_schema_in(&Registry::builtin())
}

/// The JSON Schema of the native scenario format with the protocols of
/// `registry`: the skeleton (phases, flows, thresholds…), each protocol's
/// sections as top-level properties, and a step as any one of the format's own
/// steps or the protocols' step documents.
pub fn json_schema_in(registry: &Registry) -> String {
    let mut generator = schemars::SchemaGenerator::default();
    let root = generator.root_schema_for::<model::ScenarioDoc>();
    let mut root = root.to_value();
    let mut steps = vec![
        generator.subschema_for::<build::ThinkDoc>().to_value(),
        generator.subschema_for::<build::LoopDoc>().to_value(),
    ];
    let mut index = Vec::new();
    for entry in registry.entries() {
        index.push(match entry.docs() {
            Some(page) => format!("{} ({page})", entry.name()),
            None => entry.name().to_string(),
        });
        for document in entry.steps(&mut generator) {
            steps.push(document.schema.to_value());
        }
        for section in entry.sections(&mut generator) {
            if let Some(props) = root
                .get_mut("properties")
                .and_then(serde_json::Value::as_object_mut)
            {
                // Empty is as good as absent (`teardown:` with its items
                // commented out).
                props.insert(
                    section.key.to_string(),
                    serde_json::json!({
                        "description": section.description,
                        "anyOf": [section.schema.to_value(), {"type": "null"}],
                    }),
                );
            }
        }
    }
    let mut defs = serde_json::Map::new();
    for (name, schema) in generator.take_definitions(true) {
        defs.insert(name, schema);
    }
    defs.insert(
        "Step".into(),
        serde_json::json!({
            "description": format!(
                "One step: a pause (`think`), a `loop`, or a protocol's step (an HTTP request `get: /path`, a database statement, …): exactly one kind key. Protocols: {}.",
                index.join(", ")
            ),
            "anyOf": steps,
        }),
    );
    if let Some(obj) = root.as_object_mut() {
        let existing = obj
            .entry("$defs")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let Some(existing) = existing.as_object_mut() {
            existing.extend(defs);
        }
    }
    serde_json::to_string_pretty(&root).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_file_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.yaml");
        let errors = load_file(&path).unwrap_err().errors;
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (0, 0));
        assert!(errors[0]
            .message
            .starts_with("cannot read the scenario file"));
        assert!(errors[0].file.ends_with("missing.yaml"));
    }

    #[test]
    fn errors_and_warnings_name_file_line_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            "phases:\n  - { duration: 1s, vus: 0 }\nflows: [ { steps: [ { think: 1s } ] } ]\n",
        )
        .unwrap();
        let errors = load_file(&path).unwrap_err();
        let shown = errors.to_string();
        assert_eq!(
            shown,
            format!(
                "{}:2:26: phases[0].vus: expected an integer from 1 to 100000, found 0",
                path.display()
            )
        );

        let text = "phases: [ { duration: 1s, arrival_rate: 0 } ]\nflows: [ { steps: [ { think: 1s } ] } ]\n";
        let loaded = load_str("w.yaml", text, dir.path()).unwrap();
        assert!(loaded.plan.protocols.is_empty());
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].starts_with("w.yaml:1:41: phases[0].arrival_rate: "),
            "{}",
            loaded.warnings[0]
        );
    }

    #[test]
    fn the_schema_is_json_and_describes_the_format() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        let text = schema.to_string();
        assert!(text.contains("arrival_rate"));
        // `flows` beside `phases` or `profiles`, or `scenarios` with their own.
        assert_eq!(
            schema["anyOf"],
            serde_json::json!([
                {"required": ["phases", "flows"]},
                {"required": ["profiles", "flows"]},
                {"required": ["scenarios"]}
            ])
        );
        let scenario = &schema["$defs"]["NamedScenarioDoc"];
        assert_eq!(scenario["required"], serde_json::json!(["phases", "flows"]));
        assert!(scenario["properties"]["start_after"].is_object());
        assert!(text.contains("body_contains") && text.contains("default_profile"));
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["properties"]["phases"]["minItems"] == 1);
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn errors_at_the_end_of_a_document_point_at_its_last_line() {
        assert_eq!(text_lines(""), 1);
        assert_eq!(text_lines("a"), 1);
        assert_eq!(text_lines("a\nb\n"), 2);
        assert_eq!(text_lines("a\r\nb"), 2);
        assert_eq!(text_lines("\r\r3"), 3);
        let e = load_str("s.yaml", "!", Path::new("/nonexistent")).unwrap_err();
        assert!(e.errors.iter().all(|e| e.line == 1), "{e}");
    }
}
