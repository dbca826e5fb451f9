//! From the deserialized model to a Plan: checks what every value means,
//! compiles every template, and has each protocol build its own steps (see
//! [`loadline_protocols::registry`]) through the build context the [`Builder`]
//! implements, collecting each problem with its position.

mod data;
mod profiles;
mod scenarios;
mod scope;
mod steps;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadline_core::build::{BuildCtx, Severity};
use loadline_core::capacity::SearchSpec;
use loadline_core::duration::parse_duration;
use loadline_core::metrics::{generic_error_classes, CheckId, CounterId, ErrorClass, GroupId};
use loadline_core::plan::{
    Arrivals, Feeder, FeederOrder, Flow, GroupInfo, Pacing, Phase, Plan, ScenarioPlan, Stop,
    DEFAULT_GRACEFUL_STOP, DEFAULT_MAX_VUS, OUTCOME_KIND,
};
use loadline_core::protocol::Protocol;
use loadline_core::template::Scope;
use loadline_core::threshold::{parse_condition, parse_selector, MetricName, Threshold};
use loadline_doc::de::{self, DeError, Entries, Lenient, Raw, Sink, Span, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::yaml::{self, Mark};
use loadline_monitor::{DatabaseMonitorSpec, MonitorConfig, RedisMonitorSpec};
use loadline_protocols::registry::{ProtocolBuilder, Registry, Scenario, Target};

use crate::model::{
    Conditions, DataDoc, FlowDoc, Items, OrderDoc, PhaseDoc, ScenarioDoc, ThresholdDoc,
};
use crate::{Overrides, Profile};

use scope::{FeederInfo, NameScope, Names};
use steps::KindInfo;
pub(crate) use steps::{LoopDoc, ThinkDoc};

/// A problem (or a warning) at a position in the scenario text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub mark: Mark,
    pub path: String,
    pub message: String,
}

/// The outcome of building: a draft only when there were no problems.
#[derive(Debug)]
pub(crate) struct Built {
    pub draft: Option<Draft>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// A checked plan, with what the caller needs besides it.
#[derive(Debug)]
pub(crate) struct Draft {
    pub name: Option<String>,
    pub phases: Vec<Phase>,
    pub flows: Vec<Flow>,
    /// The named scenarios (empty for a file without `scenarios:`).
    pub scenarios: Vec<ScenarioPlan>,
    pub feeders: Vec<Feeder>,
    pub thresholds: Vec<Threshold>,
    pub groups: Vec<GroupInfo>,
    pub capture_slots: usize,
    pub graceful_stop: Duration,
    pub cache_warm_at: f64,
    pub protocols: Vec<Arc<dyn Protocol>>,
    pub error_classes: Vec<String>,
    pub counters: Vec<String>,
    pub checks: Vec<String>,
    /// The profile `phases` came from (`None`: the `phases` key, or none).
    pub profile: Option<String>,
    /// Every profile of the scenario.
    pub profiles: Vec<Profile>,
    /// The `capacity:` settings.
    pub capacity: SearchSpec,
    /// The `monitor:` settings, checked.
    pub monitor: Option<MonitorConfig>,
    /// The base URL requests go to (after `--target`), when it is a valid URL.
    pub target: Option<url::Url>,
}

impl Draft {
    /// Assembles the runnable plan.
    pub fn into_plan(self, source: String) -> Plan {
        Plan {
            name: self.name,
            source,
            phases: self.phases,
            flows: self.flows,
            scenarios: self.scenarios,
            feeders: Arc::new(self.feeders),
            thresholds: self.thresholds,
            groups: self.groups,
            protocols: self.protocols,
            capture_slots: self.capture_slots,
            graceful_stop: self.graceful_stop,
            cache_warm_at: self.cache_warm_at,
            error_classes: self.error_classes,
            counters: self.counters,
            checks: self.checks,
        }
    }
}

/// Parses, deserializes and checks a scenario text.
#[cfg(test)]
pub(crate) fn build(text: &str, base_dir: &Path) -> Built {
    build_with(&Registry::builtin(), text, base_dir, &Overrides::default())
}

/// Parses, deserializes and checks a scenario text, with command-line overrides.
pub(crate) fn build_with(
    registry: &Registry,
    text: &str,
    base_dir: &Path,
    overrides: &Overrides,
) -> Built {
    let (root, yaml_problems) = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Built {
                draft: None,
                problems: vec![Problem {
                    mark: e.mark,
                    path: String::new(),
                    message: e.message,
                }],
                warnings: Vec::new(),
            }
        }
    };
    let mut b = Builder::new(registry, base_dir, overrides);
    b.problems
        .extend(yaml_problems.into_iter().map(|e| Problem {
            mark: e.mark,
            path: String::new(),
            message: e.message,
        }));
    let draft = match &root {
        None => {
            b.error_at(
                Mark { line: 1, column: 1 },
                "",
                "the file is empty: expected a scenario with `phases` and `flows`",
            );
            None
        }
        Some(root) => {
            // The protocols' sections are theirs to read; an empty one (all its
            // items commented out) is as good as absent.
            let whole = Raw {
                node: root.clone(),
                path: String::new(),
            };
            let sections: Vec<(&'static str, Raw)> = b
                .sections
                .iter()
                .filter_map(|(key, _)| whole.get(key).map(|r| (*key, r)))
                .filter(|(_, r)| !is_null(&r.node))
                .collect();
            let section_keys: Vec<&'static str> = b.sections.iter().map(|(k, _)| *k).collect();
            let skeleton = whole.without(|k| section_keys.contains(&k));
            let sink = Sink::with_known_keys(root.mark, section_keys);
            let doc = de::from_node::<ScenarioDoc>(&skeleton.node, &sink);
            b.suggested = sink.take_suggestions();
            b.problems
                .extend(sink.into_errors().into_iter().map(problem_from_de));
            doc.and_then(|doc| b.scenario(&doc, root.mark, &sections))
        }
    };
    let Builder {
        mut problems,
        warnings,
        ..
    } = b;
    problems.sort_by_key(|p| p.mark);
    Built {
        draft: draft.filter(|_| problems.is_empty()),
        problems,
        warnings,
    }
}

/// Whether a node is a plain null (`key:` with nothing after it).
fn is_null(node: &yaml::Node) -> bool {
    matches!(&node.value, yaml::NodeValue::Scalar(sc) if sc.plain && matches!(sc.resolve(), yaml::Resolved::Null))
}

fn problem_from_de(e: DeError) -> Problem {
    Problem {
        mark: e.mark.unwrap_or_default(),
        path: e.path,
        message: e.message,
    }
}

fn lenient<T>(field: &Option<Lenient<T>>) -> Option<&T> {
    field.as_ref().and_then(Lenient::get)
}

/// Whether `name` can be used in a template: letters, digits and `_`, not
/// starting with a digit.
fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

const MAX_RATE: f64 = 1_000_000.0;
const MAX_VUS: i64 = 100_000;
const MAX_MAX_VUS: i64 = 1_000_000;
const MAX_ITERATIONS: i64 = 1_000_000_000;
const MAX_WEIGHT: i64 = 1_000_000;

struct Builder<'a> {
    registry: &'a Registry,
    base_dir: &'a Path,
    overrides: &'a Overrides,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    /// Metric groups in first-seen order.
    groups: Vec<GroupInfo>,
    /// Capture slot names; a name keeps its slot across flows.
    capture_slots: Vec<String>,
    any_check: bool,
    /// Keys suggested for misspelt keys, by the mark of their mapping.
    suggested: Vec<(Mark, String)>,
    /// Every kind of step, the format's own and the protocols'.
    kinds: Vec<KindInfo>,
    /// The protocols' top-level sections, with the index of their entry.
    sections: Vec<(&'static str, usize)>,
    /// The names a template in the current step may use.
    scope: NameScope,
    /// The names a template outside any iteration may use (no captures).
    fixed: Names,
    /// The plan's protocols, in the order they joined.
    protocols: Vec<Arc<dyn Protocol>>,
    /// Every error class counted: the generic ones, then the declared ones.
    error_classes: Vec<String>,
    /// The extra counters the protocols declared.
    counters: Vec<String>,
    /// What each declared check tests.
    checks: Vec<String>,
    /// The protocols' builders while the flows are built (a builder that is
    /// building a step is lent out, and a placeholder stands in).
    builders: Vec<Box<dyn ProtocolBuilder>>,
    /// The builders building a step, innermost last (a step nested in another
    /// is built while its parent is).
    running: Vec<usize>,
}

/// The keys a schema's object accepts (following a `$ref` into the generator's
/// definitions).
fn schema_keys(generator: &schemars::SchemaGenerator, schema: &schemars::Schema) -> Vec<String> {
    let value = schema.as_value();
    let resolved = match value.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| generator.definitions().get(name)),
        None => Some(value),
    };
    resolved
        .and_then(|v| v.get("properties"))
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

impl<'a> Builder<'a> {
    fn new(registry: &'a Registry, base_dir: &'a Path, overrides: &'a Overrides) -> Self {
        let mut generator = schemars::SchemaGenerator::default();
        let mut kinds = Vec::new();
        let mut sections = Vec::new();
        let own = [
            (
                steps::THINK,
                "a `think` step",
                generator.subschema_for::<steps::ThinkDoc>(),
            ),
            (
                steps::LOOP,
                "a `loop`",
                generator.subschema_for::<steps::LoopDoc>(),
            ),
        ];
        for (key, described, schema) in own {
            kinds.push(KindInfo {
                key,
                described,
                keys: schema_keys(&generator, &schema),
                builder: None,
            });
        }
        let skeleton = schema_keys(
            &generator,
            &schemars::SchemaGenerator::default().root_schema_for::<ScenarioDoc>(),
        );
        let mut clashes = Vec::new();
        for (i, entry) in registry.entries().iter().enumerate() {
            for document in entry.steps(&mut generator) {
                let keys = schema_keys(&generator, &document.schema);
                for kind in document.kinds {
                    if kinds.iter().any(|k: &KindInfo| k.key == kind.key) {
                        clashes.push(format!(
                            "protocol `{}` names a kind of step `{}` that is taken already",
                            entry.name(),
                            kind.key
                        ));
                        continue;
                    }
                    kinds.push(KindInfo {
                        key: kind.key,
                        described: kind.described,
                        keys: keys.clone(),
                        builder: Some(i),
                    });
                }
            }
            for section in entry.sections(&mut generator) {
                if skeleton.iter().any(|k| k == section.key)
                    || sections.iter().any(|(k, _)| *k == section.key)
                {
                    clashes.push(format!(
                        "protocol `{}` names a section `{}` that is taken already",
                        entry.name(),
                        section.key
                    ));
                    continue;
                }
                sections.push((section.key, i));
            }
        }
        // A registry whose protocols claim the same key is a programming error
        // of whoever assembled it: every scenario says so.
        let problems = clashes
            .into_iter()
            .map(|message| Problem {
                mark: Mark { line: 1, column: 1 },
                path: String::new(),
                message,
            })
            .collect();
        Self {
            registry,
            base_dir,
            overrides,
            problems,
            warnings: Vec::new(),
            groups: Vec::new(),
            capture_slots: Vec::new(),
            any_check: false,
            suggested: Vec::new(),
            kinds,
            sections,
            scope: NameScope::default(),
            fixed: Names::default(),
            protocols: Vec::new(),
            error_classes: generic_error_classes(),
            counters: Vec::new(),
            checks: Vec::new(),
            builders: Vec::new(),
            running: Vec::new(),
        }
    }

    fn error(&mut self, span: &Span, message: impl Into<String>) {
        self.error_at(span.mark, &span.path, message);
    }

    fn error_at(&mut self, mark: Mark, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            mark,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Reports `message` at `span` unless the mapping there has a misspelt key
    /// that was taken for one of `keys` (and is reported already).
    fn missing(&mut self, span: &Span, keys: &[&str], message: impl Into<String>) {
        let misspelt = self
            .suggested
            .iter()
            .any(|(mark, key)| *mark == span.mark && keys.contains(&key.as_str()));
        if !misspelt {
            self.error(span, message);
        }
    }

    fn warn(&mut self, span: &Span, message: impl Into<String>) {
        self.warnings.push(Problem {
            mark: span.mark,
            path: span.path.clone(),
            message: message.into(),
        });
    }

    fn scenario(
        &mut self,
        doc: &ScenarioDoc,
        root: Mark,
        sections: &[(&'static str, Raw)],
    ) -> Option<Draft> {
        let root_span = Span {
            mark: root,
            ..Span::default()
        };
        let (names, loaded) = self.names(doc);
        self.scope.names = names.clone();
        self.fixed = names;
        let target_override = self.overrides.target.as_ref().map(|t| Spanned {
            span: Span {
                path: "--target".into(),
                ..Span::default()
            },
            value: t.clone(),
        });
        let target = target_override.as_ref().or(lenient(&doc.target));
        let base = match target {
            None => Target::Missing,
            Some(t) => match self.target(t) {
                Some(url) => Target::Base(url),
                None => Target::Invalid,
            },
        };
        // Every protocol reads its sections before any step is built.
        let registry = self.registry;
        let mut builders: Vec<Box<dyn ProtocolBuilder>> = Vec::new();
        for (i, entry) in registry.entries().iter().enumerate() {
            let scenario = Scenario {
                sections: self
                    .sections
                    .iter()
                    .filter(|(_, owner)| *owner == i)
                    .filter_map(|(key, _)| {
                        sections
                            .iter()
                            .find(|(k, _)| k == key)
                            .map(|(k, r)| (*k, r.clone()))
                    })
                    .collect(),
                target: base.clone(),
                insecure: self.overrides.insecure,
                dump: self.overrides.dump,
            };
            builders.push(entry.begin(&scenario, self));
        }

        let capacity = lenient(&doc.capacity)
            .map(|c| self.capacity(c))
            .unwrap_or_default();
        // The builders are the format's while the flows are built (a step may
        // nest steps of other protocols).
        self.builders = std::mem::take(&mut builders);
        let (profile, profiles, phases, flows, scenarios) = if scenarios::has_scenarios(doc) {
            let laid = match scenarios::entries(doc) {
                Some(entries) => self.named_scenarios(doc, entries),
                None => scenarios::Laid::default(),
            };
            (None, Vec::new(), laid.phases, laid.flows, laid.scenarios)
        } else {
            let (profile, profiles, phases, flows) = self.unnamed_scenario(doc, &root_span);
            (profile, profiles, phases, flows, Vec::new())
        };
        builders = std::mem::take(&mut self.builders);

        let mut thresholds = lenient(&doc.thresholds)
            .map(|t| self.thresholds(t, &phases, &profiles, &scenarios))
            .unwrap_or_default();
        let flags = self.threshold_flags();
        thresholds.extend(self.thresholds(&flags, &phases, &profiles, &scenarios));

        let monitor = lenient(&doc.monitor).and_then(|m| match m.value.validate() {
            Ok(()) => Some(m.value.clone()),
            Err(loadline_monitor::MonitorError::Invalid(problems)) => {
                for p in problems {
                    self.error(&m.span, format!("monitor.{}: {}", p.path, p.message));
                }
                None
            }
            Err(e) => {
                self.error(&m.span, format!("monitor: {e}"));
                None
            }
        });
        let monitor = match (monitor, lenient(&doc.monitor)) {
            (Some(config), Some(m)) => self.monitor_databases(config, &m.span, &builders),
            (config, _) => config,
        };
        let target_url = target.and_then(|t| url::Url::parse(&t.value).ok());

        let graceful_stop = match lenient(&doc.graceful_stop) {
            Some(s) => self.duration(s, true)?,
            None => DEFAULT_GRACEFUL_STOP,
        };
        let cache_warm_at = lenient(&doc.cache)
            .and_then(|c| c.value.warm_at.as_ref())
            .and_then(|w| self.warm_level(w))
            .unwrap_or(loadline_core::plan::DEFAULT_CACHE_WARM_AT);

        if let Some(t) = thresholds.iter().find(|t| t.metric == MetricName::Checks) {
            if !self.any_check {
                let key = lenient(&doc.thresholds)
                    .and_then(|e| e.0.iter().find(|(k, _)| k.value == t.metric_key))
                    .map(|(k, _)| k.span.clone())
                    .unwrap_or_default();
                self.warn(
                    &key,
                    "a `checks` threshold is set but no step has a `check:`, so it has nothing to judge",
                );
            }
        }

        let feeders = loaded.into_iter().flatten().collect();
        Some(Draft {
            name: lenient(&doc.name).map(|n| n.value.clone()),
            phases,
            flows,
            scenarios,
            feeders,
            thresholds,
            groups: std::mem::take(&mut self.groups),
            capture_slots: self.capture_slots.len(),
            graceful_stop,
            cache_warm_at,
            protocols: std::mem::take(&mut self.protocols),
            error_classes: std::mem::take(&mut self.error_classes),
            counters: std::mem::take(&mut self.counters),
            checks: std::mem::take(&mut self.checks),
            profile,
            profiles,
            capacity,
            monitor,
            target: target_url,
        })
    }

    /// The phases (chosen and scaled) and flows of a file without `scenarios:`.
    fn unnamed_scenario(
        &mut self,
        doc: &ScenarioDoc,
        root_span: &Span,
    ) -> (Option<String>, Vec<Profile>, Vec<Phase>, Vec<Flow>) {
        let phases = match &doc.phases {
            // Phases from the command line need none in the file.
            None if doc.profiles.is_none() && self.overrides.load.is_none() => {
                self.missing(
                    root_span,
                    &["phases", "profiles"],
                    "missing key `phases`: expected a list of phases, e.g. `phases: [{ duration: 30s, vus: 10 }]` (or named lists of phases under `profiles:`)",
                );
                None
            }
            None => None,
            Some(list) => Some(
                list.get()
                    .map(|l| self.phases(l, "`phases`"))
                    .unwrap_or_default(),
            ),
        };
        let profiles = self.profiles(doc);
        let (profile, phases) = self.choose_phases(doc, root_span, phases, &profiles);

        let flows = match &doc.flows {
            None => {
                self.missing(
                    root_span,
                    &["flows"],
                    "missing key `flows`: expected a list of flows, each with `steps`",
                );
                Vec::new()
            }
            Some(list) => list.get().map(|l| self.flows(l)).unwrap_or_default(),
        };

        (profile, profiles, phases, flows)
    }

    /// The constants and data files templates can refer to.
    fn names(&mut self, doc: &ScenarioDoc) -> (Names, scope::Loaded) {
        let mut names = Names {
            env: self.overrides.env.clone(),
            ..Names::default()
        };
        let mut read = Vec::new();
        for (key, value) in lenient(&doc.vars)
            .map(|e| e.0.as_slice())
            .unwrap_or_default()
        {
            if !is_identifier(&key.value) {
                self.error(
                    &key.span,
                    format!(
                        "`{}` cannot be used in templates: a var name is letters, digits and `_`",
                        key.value
                    ),
                );
            }
            names.vars.push((key.value.clone(), value.clone()));
        }
        let data: &[(Spanned<String>, Lenient<Spanned<DataDoc>>)] = lenient(&doc.data)
            .map(|e| e.0.as_slice())
            .unwrap_or_default();
        for (key, entry) in data {
            if !is_identifier(&key.value) {
                self.error(
                    &key.span,
                    format!(
                        "`{}` cannot be used in templates: a data name is letters, digits and `_`",
                        key.value
                    ),
                );
            } else if names.vars.iter().any(|(v, _)| *v == key.value) {
                self.error(
                    &key.span,
                    format!("`{}` is both a var and a data file: rename one", key.value),
                );
            }
            let loaded = entry.get().and_then(|d| self.feeder(&key.value, d));
            names.feeders.push(FeederInfo {
                name: key.value.clone(),
                columns: loaded.as_ref().map(|f| f.columns.clone()),
            });
            read.push(loaded);
        }
        (names, read)
    }

    fn feeder(&mut self, name: &str, doc: &Spanned<DataDoc>) -> Option<Feeder> {
        let file = &doc.value.file;
        let order = match doc.value.order.as_ref().map(|o| o.value) {
            None | Some(OrderDoc::Sequential) => FeederOrder::Sequential,
            Some(OrderDoc::Random) => FeederOrder::Random,
            Some(OrderDoc::Unique) => FeederOrder::Unique,
        };
        match data::read(&file.value, &self.base_dir.join(&file.value)) {
            Ok((columns, rows)) => Some(Feeder::new(name, columns, rows, order)),
            Err(message) => {
                self.error(&file.span, message);
                None
            }
        }
    }

    /// The phases of a list; `what` names it in messages (`` `phases` ``, or a
    /// profile).
    fn phases(&mut self, list: &Items<PhaseDoc>, what: &str) -> Vec<Phase> {
        if list.value.is_empty() {
            self.error(
                &list.span,
                format!(
                    "{what} is empty: expected at least one phase, e.g. `- {{ duration: 30s, vus: 10 }}`"
                ),
            );
        }
        list.value
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.get().and_then(|p| self.phase(i, p)))
            .collect()
    }

    fn phase(&mut self, index: usize, doc: &Spanned<PhaseDoc>) -> Option<Phase> {
        let p = &doc.value;
        let name = p
            .name
            .as_ref()
            .map_or_else(|| format!("phase {}", index + 1), |n| n.value.clone());
        let duration = p.duration.as_ref().map(|d| self.duration(d, false));
        let (pacing, stop) = match (&p.arrival_rate, &p.vus) {
            (Some(rate), Some(vus)) => {
                let later = if rate.span.mark > vus.span.mark {
                    &rate.span
                } else {
                    &vus.span
                };
                self.error(
                    later,
                    "a phase has either `arrival_rate` (open model) or `vus` (closed model), not both: remove one",
                );
                return None;
            }
            (None, None) => {
                self.missing(
                    &doc.span,
                    &["arrival_rate", "vus"],
                    "a phase needs `arrival_rate` (open model: iterations started per second) or `vus` (closed model: virtual users looping)",
                );
                return None;
            }
            (Some(rate), None) => {
                let rate_v = self.rate(rate);
                let ramp_to = p.ramp_to.as_ref().map(|r| self.rate(r));
                let max_vus = match &p.max_vus {
                    Some(m) => self.int_in(m, 1, MAX_MAX_VUS),
                    None => Some(DEFAULT_MAX_VUS),
                };
                let arrivals = match (&p.arrivals, self.overrides.arrivals) {
                    (_, Some(flag)) => Some(flag),
                    (Some(a), None) => self.arrivals(a),
                    (None, None) => Some(Arrivals::Uniform),
                };
                if let Some(it) = &p.iterations {
                    self.error(
                        &it.span,
                        "`iterations` goes with `vus` (closed model); an `arrival_rate` phase runs for its `duration`",
                    );
                }
                if duration.is_none() {
                    self.missing(
                        &doc.span,
                        &["duration"],
                        "an `arrival_rate` phase needs a `duration`, e.g. `duration: 30s`",
                    );
                }
                if rate_v == Some(0.0) && matches!(ramp_to, None | Some(Some(0.0))) {
                    self.warn(
                        &rate.span,
                        "arrival_rate is 0 and nothing ramps it up: this phase starts no iterations",
                    );
                }
                let pacing = Pacing::Open {
                    rate: rate_v?,
                    ramp_to: ramp_to.map_or(Some(None), |r| r.map(Some))?,
                    max_vus: max_vus?,
                    arrivals: arrivals?,
                };
                (pacing, Stop::Duration(duration??))
            }
            (None, Some(vus)) => {
                let vus = self.int_in(vus, 1, MAX_VUS);
                for (key, span) in [
                    ("ramp_to", p.ramp_to.as_ref().map(|s| &s.span)),
                    ("max_vus", p.max_vus.as_ref().map(|s| &s.span)),
                    ("arrivals", p.arrivals.as_ref().map(|s| &s.span)),
                ] {
                    if let Some(span) = span {
                        self.error(
                            span,
                            format!(
                                "`{key}` goes with `arrival_rate` (open model), not with `vus`"
                            ),
                        );
                    }
                }
                let iterations = p
                    .iterations
                    .as_ref()
                    .map(|it| self.int_in(it, 1, MAX_ITERATIONS));
                let stop = match (duration, iterations) {
                    (None, None) => {
                        self.missing(
                            &doc.span,
                            &["duration", "iterations"],
                            "a `vus` phase needs a `duration` or a number of `iterations` (or both: the iterations, within at most the duration)",
                        );
                        return None;
                    }
                    (Some(d), None) => Stop::Duration(d?),
                    (d, Some(total)) => Stop::Iterations {
                        total: total?,
                        max_duration: d.map_or(Some(None), |d| d.map(Some))?,
                    },
                };
                (Pacing::Closed { vus: vus? }, stop)
            }
        };
        Some(Phase { name, pacing, stop })
    }

    fn flows(&mut self, list: &Items<FlowDoc>) -> Vec<Flow> {
        if list.value.is_empty() {
            self.error(
                &list.span,
                "`flows` is empty: expected at least one flow with `steps`",
            );
        }
        let mut seen: Vec<(String, Mark)> = Vec::new();
        let mut out = Vec::new();
        for (i, flow) in list.value.iter().enumerate() {
            let Some(flow) = flow.get() else { continue };
            let f = &flow.value;
            let name = match &f.name {
                Some(n) => {
                    if let Some((_, first)) = seen.iter().find(|(s, _)| *s == n.value) {
                        let msg = format!(
                            "flow name `{}` is already used at line {}: flow names are unique",
                            n.value, first.line
                        );
                        self.error(&n.span, msg);
                    }
                    seen.push((n.value.clone(), n.span.mark));
                    n.value.clone()
                }
                None => format!("flow {}", i + 1),
            };
            let weight = match &f.weight {
                Some(w) => self.int_in(w, 1, MAX_WEIGHT).map(|w| w as u32),
                None => Some(1),
            };
            let steps = match &f.steps {
                None => {
                    self.missing(
                        &flow.span,
                        &["steps"],
                        "a flow needs `steps:`, a list of steps",
                    );
                    None
                }
                Some(steps) => Some(self.flow_steps(steps)),
            };
            if let (Some(weight), Some(steps)) = (weight, steps) {
                out.push(Flow {
                    name,
                    weight,
                    steps,
                });
            }
        }
        out
    }

    /// The `--threshold METRIC: EXPR` flags as the entries a file would have,
    /// placed at the flag; a flag without its `:` is reported.
    fn threshold_flags(&mut self) -> Entries<Conditions> {
        let mut entries = Entries::default();
        let overrides = self.overrides;
        for flag in &overrides.thresholds {
            let span = Span {
                path: "--threshold".into(),
                ..Span::default()
            };
            // The metric's selector may hold a `:` of its own (`{step:login}`).
            let closed = flag.find('}').map_or(0, |i| i + 1);
            let Some(colon) = flag[closed..].find(':').map(|i| i + closed) else {
                self.error(
                    &span,
                    format!(
                        "expected METRIC: CONDITION, e.g. `latency: p95 < 200ms`, found `{flag}`"
                    ),
                );
                continue;
            };
            let (key, expr) = (flag[..colon].trim(), flag[colon + 1..].trim());
            let item = Spanned {
                span: span.clone(),
                value: ThresholdDoc::Short(expr.to_string()),
            };
            let key = Spanned {
                span,
                value: key.to_string(),
            };
            entries.0.push((key, Lenient(Some(vec![item]))));
        }
        entries
    }

    fn thresholds(
        &mut self,
        entries: &Entries<Conditions>,
        phases: &[Phase],
        profiles: &[Profile],
        scenarios: &[ScenarioPlan],
    ) -> Vec<Threshold> {
        let mut out = Vec::new();
        for (key, list) in &entries.0 {
            let (metric, selector) = match parse_selector(&key.value) {
                Ok(sel) => sel,
                Err(message) => {
                    self.error(&key.span, message);
                    continue;
                }
            };
            let (phase, scenario) = if scenarios.is_empty() && selector.scenario.is_none() {
                let phase = match &selector.phase {
                    None => None,
                    Some(name) => match phases.iter().position(|p| p.name == *name) {
                        Some(i) => Some(i),
                        None => {
                            let elsewhere = profiles
                                .iter()
                                .find(|pr| pr.phases.iter().any(|p| p.name == *name));
                            if let Some(profile) = elsewhere {
                                self.warn(
                                    &key.span,
                                    format!(
                                        "phase `{name}` is in profile `{}`, not in the phases this run uses: the threshold is not judged",
                                        profile.name
                                    ),
                                );
                            } else {
                                let known: Vec<&str> =
                                    phases.iter().map(|p| p.name.as_str()).collect();
                                let mut msg = format!(
                                    "no phase has the name `{name}`: expected one of {}",
                                    quoted_list(&known)
                                );
                                if let Some(s) = did_you_mean(name, known.iter().copied()) {
                                    msg.push_str(&format!("; did you mean `{s}`?"));
                                }
                                self.error(&key.span, msg);
                            }
                            continue;
                        }
                    },
                };
                (phase, None)
            } else {
                match self.scenario_scope(key, &selector, phases, scenarios) {
                    Some(scope) => scope,
                    None => continue,
                }
            };
            let group = match (selector.step, selector.dest) {
                (None, None) => None,
                (_, Some(d)) => match self
                    .groups
                    .iter()
                    .position(|info| info.name == d && info.is_events())
                {
                    Some(id) => Some(id),
                    None => {
                        let known: Vec<&str> = self
                            .groups
                            .iter()
                            .filter(|i| i.is_events())
                            .map(|i| i.name.as_str())
                            .collect();
                        let mut msg = format!("no event destination has the name `{d}`");
                        if known.is_empty() {
                            msg.push_str(" (no consumer is declared)");
                        } else {
                            msg.push_str(&format!(": expected one of {}", quoted_list(&known)));
                        }
                        if let Some(s) = did_you_mean(&d, known.iter().copied()) {
                            msg.push_str(&format!("; did you mean `{s}`?"));
                        }
                        self.error(&key.span, msg);
                        continue;
                    }
                },
                (Some(g), None) => match self.groups.iter().position(|info| info.name == g) {
                    Some(id) => Some(id),
                    None => {
                        let mut msg = format!("no step has the name `{g}`");
                        let known: Vec<&str> =
                            self.groups.iter().map(|i| i.name.as_str()).collect();
                        if known.is_empty() {
                            msg.push_str(" (there are no steps)");
                        } else {
                            msg.push_str(&format!(": expected one of {}", quoted_list(&known)));
                        }
                        if let Some(s) = did_you_mean(&g, known.iter().copied()) {
                            msg.push_str(&format!("; did you mean `{s}`?"));
                        }
                        self.error(&key.span, msg);
                        continue;
                    }
                },
            };
            for item in list.get().map(Vec::as_slice).unwrap_or_default() {
                let (expr, span, abort_on_fail, delay) = match &item.value {
                    ThresholdDoc::Short(expr) => (expr, &item.span, false, Some(Duration::ZERO)),
                    ThresholdDoc::Long(long) => {
                        let delay = match &long.delay {
                            Some(d) => self.duration(d, true),
                            None => Some(Duration::ZERO),
                        };
                        let abort = long.abort_on_fail.unwrap_or(false);
                        if long.delay.is_some() && !abort {
                            self.warn(
                                &item.span,
                                "`delay` only matters with `abort_on_fail: true`",
                            );
                        }
                        (&long.expr.value, &long.expr.span, abort, delay)
                    }
                };
                let condition = match parse_condition(metric, expr) {
                    Ok(c) => c,
                    Err(message) => {
                        self.error(span, message);
                        continue;
                    }
                };
                if let Some(delay) = delay {
                    out.push(Threshold {
                        metric_key: key.value.clone(),
                        metric,
                        group,
                        phase,
                        scenario: scenario.clone(),
                        expr: expr.clone(),
                        condition,
                        abort_on_fail,
                        delay,
                    });
                }
            }
        }
        out
    }

    fn duration(&mut self, s: &Spanned<String>, allow_zero: bool) -> Option<Duration> {
        match parse_duration(&s.value) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.error(
                    &s.span,
                    format!("expected a duration above zero, found `{}`", s.value),
                );
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.error(&s.span, message);
                None
            }
        }
    }

    /// `cache: warm_at:`, a share: `90%` or `0.9`, above 0 and at most 1.
    fn warm_level(&mut self, w: &Spanned<loadline_doc::value::JsonDoc>) -> Option<f64> {
        use loadline_doc::value::JsonDoc;
        let level = match &w.value {
            JsonDoc::Float(f) => Some(*f),
            JsonDoc::Int(i) => Some(*i as f64),
            JsonDoc::UInt(u) => Some(*u as f64),
            JsonDoc::Str(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| p / 100.0),
            _ => None,
        };
        match level {
            Some(l) if l > 0.0 && l <= 1.0 => Some(l),
            _ => {
                self.error(
                    &w.span,
                    "expected a hit ratio above 0 and at most 100%, e.g. `90%` or `0.9`",
                );
                None
            }
        }
    }

    /// A phase's `arrivals:`.
    fn arrivals(&mut self, a: &Spanned<String>) -> Option<Arrivals> {
        match a.value.as_str() {
            "uniform" => Some(Arrivals::Uniform),
            "poisson" => Some(Arrivals::Poisson),
            other => {
                let mut m = format!("unknown arrivals `{other}`: expected `uniform` (evenly spaced, the default) or `poisson` (exponential gaps at the planned mean rate)");
                if let Some(s) = did_you_mean(other, ["uniform", "poisson"]) {
                    m.push_str(&format!("; did you mean `{s}`?"));
                }
                self.error(&a.span, m);
                None
            }
        }
    }

    fn rate(&mut self, r: &Spanned<f64>) -> Option<f64> {
        if r.value.is_finite() && (0.0..=MAX_RATE).contains(&r.value) {
            Some(r.value)
        } else {
            self.error(
                &r.span,
                format!(
                    "expected a rate from 0 to {MAX_RATE} iterations per second, found {}",
                    r.value
                ),
            );
            None
        }
    }

    fn int_in(&mut self, v: &Spanned<i64>, min: i64, max: i64) -> Option<u64> {
        if (min..=max).contains(&v.value) {
            u64::try_from(v.value).ok()
        } else {
            self.error(
                &v.span,
                format!("expected an integer from {min} to {max}, found {}", v.value),
            );
            None
        }
    }

    /// The metric group of this name and kind, created on first use. A name
    /// already used by a group of another kind is an error at `span`.
    fn group(&mut self, name: String, kind: &str, span: &Span) -> Option<usize> {
        match self.groups.iter().position(|g| g.name == name) {
            Some(id) if self.groups[id].kind == kind => Some(id),
            Some(id) => {
                let what = |k: &str| {
                    if k == OUTCOME_KIND {
                        "outcomes (a time until something happened, such as a polling step's)"
                            .to_string()
                    } else {
                        format!("`{k}` steps")
                    }
                };
                let other = what(&self.groups[id].kind);
                self.error(
                    span,
                    format!(
                        "the name `{name}` is used by {other} and by {}: a metric group counts one kind of thing, so give one of them another `name`",
                        what(kind)
                    ),
                );
                None
            }
            None => {
                self.groups.push(GroupInfo {
                    name,
                    kind: kind.into(),
                });
                Some(self.groups.len() - 1)
            }
        }
    }

    fn target(&mut self, t: &Spanned<String>) -> Option<url::Url> {
        let text = t.value.trim();
        let url = match url::Url::parse(text.trim_end_matches('/')) {
            Ok(url) => url,
            Err(e) => {
                self.error(
                    &t.span,
                    format!(
                        "invalid target URL `{text}`: {e}; expected e.g. http://127.0.0.1:8080"
                    ),
                );
                return None;
            }
        };
        let problem = if !matches!(url.scheme(), "http" | "https") {
            Some(format!(
                "the target must be an http:// or https:// URL, found scheme `{}`",
                url.scheme()
            ))
        } else if url.host_str().is_none_or(str::is_empty) {
            Some(format!("the target URL `{text}` has no host"))
        } else if url.query().is_some() || url.fragment().is_some() {
            Some(format!(
                "the target URL `{text}` is a base: drop its `?query` or `#fragment`"
            ))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.error(&t.span, p);
                None
            }
            None => Some(url),
        }
    }

    /// Fills the databases a `monitor:` block names with their URLs; an unknown
    /// name is an error, a database without server statistics a warning.
    fn monitor_databases(
        &mut self,
        mut monitor: MonitorConfig,
        span: &Span,
        builders: &[Box<dyn ProtocolBuilder>],
    ) -> Option<MonitorConfig> {
        let known: Vec<_> = builders.iter().flat_map(|b| b.databases()).collect();
        let mut watched = Vec::new();
        let mut ok = true;
        for name in std::mem::take(&mut monitor.database) {
            match known.iter().find(|d| d.name == name) {
                None => {
                    let names: Vec<&str> = known.iter().map(|d| d.name.as_str()).collect();
                    let mut msg = format!("monitor.database: no database is called `{name}`");
                    if names.is_empty() {
                        msg.push_str(": the scenario declares no databases");
                    } else {
                        msg.push_str(&format!(": expected one of {}", quoted_list(&names)));
                    }
                    if let Some(s) = did_you_mean(&name, names.iter().copied()) {
                        msg.push_str(&format!("; did you mean `{s}`?"));
                    }
                    self.error(span, msg);
                    ok = false;
                }
                // Its settings are invalid (reported).
                Some(d) if d.url.is_none() => ok = false,
                Some(d) if d.monitor != "database" => self.warn(
                    span,
                    format!(
                        "monitor.database: `{name}` is watched with `monitor: {{ {}: {name} }}`; it is not monitored here",
                        d.monitor
                    ),
                ),
                Some(d) => match (&d.unwatchable, &d.url) {
                    (Some(why), _) => self.warn(
                        span,
                        format!("monitor.database: `{name}` is {why}; it is not monitored"),
                    ),
                    (None, Some(url)) => {
                        monitor.databases.push(DatabaseMonitorSpec {
                            name: name.clone(),
                            url: url.clone(),
                        });
                        watched.push(name);
                    }
                    (None, None) => ok = false,
                },
            }
        }
        monitor.database = watched;
        for name in monitor.redis.clone() {
            if loadline_monitor::is_redis_url(&name) {
                continue;
            }
            let servers: Vec<_> = known.iter().filter(|d| d.monitor == "redis").collect();
            match known.iter().find(|d| d.name == name) {
                Some(d) => match &d.url {
                    Some(url) if d.monitor == "redis" => {
                        monitor.redis_servers.push(RedisMonitorSpec {
                            name: name.clone(),
                            url: url.clone(),
                        });
                    }
                    // Its settings are invalid (reported).
                    None => ok = false,
                    Some(_) => {
                        self.error(
                            span,
                            format!(
                                "monitor.redis: `{name}` is not a Redis server: watch it with `monitor: {{ {}: {name} }}`",
                                d.monitor
                            ),
                        );
                        ok = false;
                    }
                },
                None => {
                    let names: Vec<&str> = servers.iter().map(|d| d.name.as_str()).collect();
                    let mut msg = format!("monitor.redis: no Redis server is called `{name}`");
                    if names.is_empty() {
                        msg.push_str(": the scenario's `redis:` section declares none (a URL such as `redis://127.0.0.1:6379` may be given instead)");
                    } else {
                        msg.push_str(&format!(
                            ": expected one of {}, or a redis:// URL",
                            quoted_list(&names)
                        ));
                    }
                    if let Some(s) = did_you_mean(&name, names.iter().copied()) {
                        msg.push_str(&format!("; did you mean `{s}`?"));
                    }
                    self.error(span, msg);
                    ok = false;
                }
            }
        }
        ok.then_some(monitor)
    }

    /// The capture slot of this name.
    fn capture_slot(&mut self, name: &str) -> usize {
        match self.capture_slots.iter().position(|n| n == name) {
            Some(slot) => slot,
            None => {
                self.capture_slots.push(name.to_string());
                self.capture_slots.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod database_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

impl BuildCtx for Builder<'_> {
    fn report(&mut self, severity: Severity, mark: Mark, path: &str, message: String) {
        let problem = Problem {
            mark,
            path: path.to_string(),
            message,
        };
        match severity {
            Severity::Error => self.problems.push(problem),
            Severity::Warning => self.warnings.push(problem),
        }
    }

    fn error_count(&self) -> usize {
        self.problems.len()
    }

    fn suggested(&mut self, mapping: Mark, key: String) {
        self.suggested.push((mapping, key));
    }

    fn was_suggested(&self, mapping: Mark, keys: &[&str]) -> bool {
        self.suggested
            .iter()
            .any(|(mark, key)| *mark == mapping && keys.contains(&key.as_str()))
    }

    fn scope(&self) -> &dyn Scope {
        &self.scope
    }

    fn fixed_scope(&self) -> &dyn Scope {
        &self.fixed
    }

    fn capture(&mut self, name: &str, at: &Span) -> Option<usize> {
        let mut ok = true;
        if !is_identifier(name) {
            self.error(
                at,
                format!(
                    "`{name}` is not a capture name: use letters, digits and `_`, such as `order_id`"
                ),
            );
            ok = false;
        } else if let Some(kind) = self.scope.names.is_declared(name) {
            self.error(
                at,
                format!(
                    "the capture `{name}` would hide the {kind} of the same name: choose another name"
                ),
            );
            ok = false;
        }
        let slot = self.capture_slot(name);
        if !self.scope.captures.iter().any(|(n, _)| n == name) {
            self.scope.captures.push((name.to_string(), slot));
        }
        ok.then_some(slot)
    }

    fn check(&mut self, label: &str) -> CheckId {
        self.any_check = true;
        let index = match self.checks.iter().position(|c| c == label) {
            Some(i) => i,
            None => {
                self.checks.push(label.to_string());
                self.checks.len() - 1
            }
        };
        CheckId::from_index(u16::try_from(index).unwrap_or(u16::MAX))
    }

    fn is_step_kind(&self, key: &str) -> bool {
        self.kinds.iter().any(|k| k.key == key)
    }

    fn group(&mut self, name: String, kind: &str, at: &Span) -> Option<GroupId> {
        Builder::group(self, name, kind, at)
    }

    fn error_classes(&mut self, names: &[&str]) -> Vec<ErrorClass> {
        names
            .iter()
            .map(|name| {
                let index = match self.error_classes.iter().position(|c| c == name) {
                    Some(i) => i,
                    None => {
                        self.error_classes.push((*name).to_string());
                        self.error_classes.len() - 1
                    }
                };
                ErrorClass::from_index(u16::try_from(index).unwrap_or(u16::MAX))
            })
            .collect()
    }

    fn counter(&mut self, name: &str) -> CounterId {
        let index = match self.counters.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.counters.push(name.to_string());
                self.counters.len() - 1
            }
        };
        CounterId::from_index(u16::try_from(index).unwrap_or(u16::MAX))
    }

    fn add_protocol(&mut self, protocol: Arc<dyn Protocol>) -> usize {
        self.protocols.push(protocol);
        self.protocols.len() - 1
    }

    fn base_dir(&self) -> &Path {
        self.base_dir
    }
}
