//! From the deserialized model to a Plan: checks what every value means and
//! compiles every template, collecting each problem with its position.
//!
//! The builder first produces a [`Draft`] — the plan with HTTP steps still as
//! [`http::HttpStepSpec`]s — and only [`Draft::into_plan`] turns the specs into
//! executors, so the checks can be tested without building executors.

mod data;
mod profiles;
mod scope;
mod sql;
mod steps;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadline_core::capacity::SearchSpec;
use loadline_core::duration::parse_duration;
use loadline_core::plan::{
    Feeder, FeederOrder, Flow, GroupInfo, Pacing, Phase, Plan, Step, Stop, DEFAULT_GRACEFUL_STOP,
    DEFAULT_MAX_VUS,
};
use loadline_core::protocol::Protocol;
use loadline_core::threshold::{parse_condition, parse_selector, MetricName, Threshold};
use loadline_protocols::http::{self, HttpSettings};

use crate::de::{self, DeError, Entries, Lenient, Sink, Span, Spanned};
use crate::model::{
    Conditions, DataDoc, FlowDoc, Items, OrderDoc, PhaseDoc, ScenarioDoc, ThresholdDoc,
};
use crate::suggest::did_you_mean;
use crate::yaml::{self, Mark};
use crate::{Overrides, Profile};

use scope::{FeederInfo, Names};
pub use sql::SqlPlan;
pub(crate) use steps::StepDraft;

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

/// A checked plan whose HTTP steps are still specs.
#[derive(Debug)]
pub(crate) struct Draft {
    pub name: Option<String>,
    pub phases: Vec<Phase>,
    pub flows: Vec<FlowDraft>,
    pub feeders: Vec<Feeder>,
    pub thresholds: Vec<Threshold>,
    pub groups: Vec<GroupInfo>,
    pub capture_slots: usize,
    pub graceful_stop: Duration,
    /// The settings of the plan's HTTP protocol, when any step uses HTTP.
    pub http: Option<HttpSettings>,
    /// The profile `phases` came from (`None`: the `phases` key, or none).
    pub profile: Option<String>,
    /// Every profile of the scenario.
    pub profiles: Vec<Profile>,
    /// The `capacity:` settings.
    pub capacity: SearchSpec,
    /// The `monitor:` settings, checked.
    pub monitor: Option<loadline_monitor::MonitorConfig>,
    /// The databases and what runs around the load, when the scenario has
    /// `databases:`.
    pub sql: Option<SqlPlan>,
    /// The base URL requests go to (after `--target`), when it is a valid URL.
    pub target: Option<url::Url>,
}

#[derive(Debug)]
pub(crate) struct FlowDraft {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<StepDraft>,
}

/// The index of the HTTP protocol in the plan's protocol list.
const HTTP_PROTOCOL: usize = 0;

impl Draft {
    /// Builds the step executors and assembles the runnable plan.
    pub fn into_plan(self, source: String) -> Plan {
        let mut protocols: Vec<Arc<dyn Protocol>> = match self.http {
            Some(settings) => vec![http::HttpProtocol::new(settings)],
            None => Vec::new(),
        };
        // At the index its steps were built with (after HTTP's, when any).
        if let Some(sql) = self.sql {
            protocols.push(sql.protocol);
        }
        Plan {
            name: self.name,
            source,
            phases: self.phases,
            flows: self
                .flows
                .into_iter()
                .map(|f| Flow {
                    name: f.name,
                    weight: f.weight,
                    steps: f.steps.into_iter().map(StepDraft::into_step).collect(),
                })
                .collect(),
            feeders: Arc::new(self.feeders),
            thresholds: self.thresholds,
            groups: self.groups,
            protocols,
            capture_slots: self.capture_slots,
            graceful_stop: self.graceful_stop,
        }
    }
}

impl StepDraft {
    fn into_step(self) -> Step {
        match self {
            StepDraft::Http(spec) => Step::Exec(http::build_step(*spec)),
            StepDraft::Exec(exec) => Step::Exec(exec),
            StepDraft::Think(range) => Step::Think(range),
            StepDraft::Loop { count, steps } => Step::Loop {
                count,
                steps: steps.into_iter().map(StepDraft::into_step).collect(),
            },
        }
    }
}

/// Parses, deserializes and checks a scenario text.
#[cfg(test)]
pub(crate) fn build(text: &str, base_dir: &Path) -> Built {
    build_with(text, base_dir, &Overrides::default())
}

/// Parses, deserializes and checks a scenario text, with command-line overrides.
pub(crate) fn build_with(text: &str, base_dir: &Path, overrides: &Overrides) -> Built {
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
    let mut b = Builder::new(base_dir, overrides);
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
            let sink = Sink::default();
            let doc = de::from_node::<ScenarioDoc>(root, &sink);
            b.suggested = sink.take_suggestions();
            b.problems
                .extend(sink.into_errors().into_iter().map(problem_from_de));
            doc.and_then(|doc| b.scenario(&doc, root.mark))
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
    base_dir: &'a Path,
    overrides: &'a Overrides,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    /// Metric groups in first-seen order.
    groups: Vec<GroupInfo>,
    /// Capture slot names; a name keeps its slot across flows.
    capture_slots: Vec<String>,
    any_check: bool,
    any_http: bool,
    /// The databases, and the SQL protocol the steps are built on.
    sql: sql::SqlBuild,
    /// Keys suggested for misspelt keys, by the mark of their mapping.
    suggested: Vec<(Mark, String)>,
}

impl<'a> Builder<'a> {
    fn new(base_dir: &'a Path, overrides: &'a Overrides) -> Self {
        Self {
            base_dir,
            overrides,
            problems: Vec::new(),
            warnings: Vec::new(),
            groups: Vec::new(),
            capture_slots: Vec::new(),
            any_check: false,
            any_http: false,
            sql: sql::SqlBuild::default(),
            suggested: Vec::new(),
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

    fn scenario(&mut self, doc: &ScenarioDoc, root: Mark) -> Option<Draft> {
        let root_span = Span {
            mark: root,
            ..Span::default()
        };
        let names = self.names(doc);
        let target_override = self.overrides.target.as_ref().map(|t| Spanned {
            span: Span {
                path: "--target".into(),
                ..Span::default()
            },
            value: t.clone(),
        });
        let target = target_override.as_ref().or(lenient(&doc.target));
        let defaults = self.http_defaults(target, lenient(&doc.defaults), &names);

        let phases = match &doc.phases {
            None if doc.profiles.is_none() => {
                self.missing(
                    &root_span,
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
        let (profile, phases) = self.choose_phases(doc, &root_span, phases, &profiles);
        let capacity = lenient(&doc.capacity)
            .map(|c| self.capacity(c))
            .unwrap_or_default();

        self.sql_databases(doc, &names);
        let flows = match &doc.flows {
            None => {
                self.missing(
                    &root_span,
                    &["flows"],
                    "missing key `flows`: expected a list of flows, each with `steps`",
                );
                Vec::new()
            }
            Some(list) => list
                .get()
                .map(|l| self.flows(l, &names, &defaults))
                .unwrap_or_default(),
        };

        let thresholds = lenient(&doc.thresholds)
            .map(|t| self.thresholds(t))
            .unwrap_or_default();

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
            (Some(config), Some(m)) => self.monitor_databases(config, &m.span),
            (config, _) => config,
        };
        let target_url = target.and_then(|t| url::Url::parse(&t.value).ok());

        let graceful_stop = match lenient(&doc.graceful_stop) {
            Some(s) => self.duration(s, true)?,
            None => DEFAULT_GRACEFUL_STOP,
        };

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

        let feeders = names.feeders.into_iter().filter_map(|f| f.loaded).collect();
        Some(Draft {
            name: lenient(&doc.name).map(|n| n.value.clone()),
            phases,
            flows,
            feeders,
            thresholds,
            groups: std::mem::take(&mut self.groups),
            capture_slots: self.capture_slots.len(),
            graceful_stop,
            // SQL steps were built to come after HTTP's protocol whenever the
            // scenario has HTTP steps.
            http: (self.any_http || self.sql.protocol_index > 0).then_some(defaults.settings),
            profile,
            profiles,
            capacity,
            monitor,
            target: target_url,
            sql: self.sql.finish(),
        })
    }

    /// The constants and data files templates can refer to.
    fn names(&mut self, doc: &ScenarioDoc) -> Names {
        let mut names = Names::default();
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
                loaded,
            });
        }
        names
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
                };
                (pacing, Stop::Duration(duration??))
            }
            (None, Some(vus)) => {
                let vus = self.int_in(vus, 1, MAX_VUS);
                for (key, span) in [
                    ("ramp_to", p.ramp_to.as_ref().map(|s| &s.span)),
                    ("max_vus", p.max_vus.as_ref().map(|s| &s.span)),
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

    fn flows(
        &mut self,
        list: &Items<FlowDoc>,
        names: &Names,
        defaults: &steps::HttpDefaults,
    ) -> Vec<FlowDraft> {
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
                Some(steps) => Some(self.flow_steps(steps, names, defaults)),
            };
            if let (Some(weight), Some(steps)) = (weight, steps) {
                out.push(FlowDraft {
                    name,
                    weight,
                    steps,
                });
            }
        }
        out
    }

    fn thresholds(&mut self, entries: &Entries<Conditions>) -> Vec<Threshold> {
        let mut out = Vec::new();
        for (key, list) in &entries.0 {
            let (metric, group_name) = match parse_selector(&key.value) {
                Ok(sel) => sel,
                Err(message) => {
                    self.error(&key.span, message);
                    continue;
                }
            };
            let group = match group_name {
                None => None,
                Some(g) => match self.groups.iter().position(|info| info.name == g) {
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
    /// already used by a group of another kind (a polling step's outcome and a
    /// plain request) is an error at `span`.
    fn group(&mut self, name: String, kind: &str, span: &Span) -> Option<usize> {
        match self.groups.iter().position(|g| g.name == name) {
            Some(id) if self.groups[id].kind == kind => Some(id),
            Some(_) => {
                self.error(
                    span,
                    format!(
                        "the name `{name}` is used by a polling step (`until:`) and by another kind of step: a polling step's name measures the time until its condition held, so give the other step another name"
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

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
