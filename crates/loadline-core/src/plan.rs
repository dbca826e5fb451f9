//! The Plan: a validated, typed scenario, ready to run. Scenario formats build it
//! (every template compiled, every name resolved); the scheduler only reads it.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::duration::{format_duration, DurationRange};
use crate::metrics::{ErrorClass, Shape};
use crate::protocol::{Protocol, StepExec};
use crate::threshold::Threshold;

/// Default bound on how long in-flight iterations may run on after the load ends.
pub const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(10);
/// How late an open-model arrival may start: one the generator cannot start
/// within this of its planned time is dropped and counted (as `late`), not
/// started late, so a generator that cannot keep up never stretches a phase.
pub const MAX_LATENESS: Duration = Duration::from_secs(1);
/// Default cap on concurrent open-model iterations when a phase sets no `max_vus`.
pub const DEFAULT_MAX_VUS: u64 = 10_000;

/// The default [`Plan::cache_warm_at`].
pub const DEFAULT_CACHE_WARM_AT: f64 = 0.9;

/// A runnable scenario.
#[derive(Debug)]
pub struct Plan {
    pub name: Option<String>,
    /// Where the plan came from (a file path), for messages.
    pub source: String,
    /// Every scenario's phases, one scenario after the other.
    pub phases: Vec<Phase>,
    /// Every scenario's flows, one scenario after the other.
    pub flows: Vec<Flow>,
    /// The named scenarios that run at once, each over its slice of `phases`
    /// and `flows`; empty for a plan of one implicit scenario (all phases,
    /// all flows), as a file without `scenarios:` gives.
    pub scenarios: Vec<ScenarioPlan>,
    pub feeders: Arc<Vec<Feeder>>,
    pub thresholds: Vec<Threshold>,
    /// The metric groups, indexed by [`crate::metrics::GroupId`].
    pub groups: Vec<GroupInfo>,
    /// The protocols the steps use, indexed by the number each step's executor
    /// was built with; each VU keeps one state per protocol.
    pub protocols: Vec<Arc<dyn Protocol>>,
    /// How many capture slots a VU needs.
    pub capture_slots: usize,
    pub graceful_stop: Duration,
    /// The hit ratio (0 to 1) at which a cache counts as warm: the summary
    /// gives the time a one-second interval first reached it.
    pub cache_warm_at: f64,
    /// The error classes counted, by [`crate::metrics::ErrorClass`]: the generic
    /// ones ([`crate::metrics::generic_error_classes`]), then those the protocols
    /// declared.
    pub error_classes: Vec<String>,
    /// The extra per-group counters the protocols declared (such as `rows`), by
    /// [`crate::metrics::CounterId`].
    pub counters: Vec<String>,
    /// What each check tests, for people (`json $.state equals "confirmed"`),
    /// by [`crate::metrics::CheckId`].
    pub checks: Vec<String>,
}

impl Plan {
    /// The sizes of the plan's figures.
    pub fn shape(&self) -> Shape {
        Shape {
            groups: self.groups.len(),
            phases: self.phases.len(),
            error_classes: self.error_classes.len(),
            counters: self.counters.len(),
            scenarios: self.scenarios.len().max(1),
        }
    }

    /// What a check tests (`check_N` for one the plan does not list).
    pub fn check_label(&self, check: crate::metrics::CheckId) -> std::borrow::Cow<'_, str> {
        match self.checks.get(check.index()) {
            Some(label) => std::borrow::Cow::Borrowed(label.as_str()),
            None => std::borrow::Cow::Owned(format!("check_{}", check.index())),
        }
    }

    /// The name of an error class (`class_N` for one the plan does not list: a
    /// protocol built outside the format that records into classes it did not
    /// declare).
    pub fn error_class_name(&self, class: ErrorClass) -> std::borrow::Cow<'_, str> {
        match self.error_classes.get(class.index()) {
            Some(name) => std::borrow::Cow::Borrowed(name.as_str()),
            None => std::borrow::Cow::Owned(format!("class_{}", class.index())),
        }
    }

    /// The planned duration, when every phase has one: the longest scenario's
    /// (its delay included).
    pub fn planned_duration(&self) -> Option<Duration> {
        self.scenario_list()
            .iter()
            .map(|s| {
                let phases: Option<Duration> = self.phases[s.phases.clone()]
                    .iter()
                    .map(|p| p.planned_duration())
                    .sum();
                phases.map(|d| d + s.start_after)
            })
            .try_fold(Duration::ZERO, |max, d| d.map(|d| max.max(d)))
    }

    /// The scenarios that run at once: the plan's named ones, or the one
    /// implicit scenario over every phase and flow.
    pub fn scenario_list(&self) -> std::borrow::Cow<'_, [ScenarioPlan]> {
        if self.scenarios.is_empty() {
            std::borrow::Cow::Owned(vec![ScenarioPlan {
                name: IMPLICIT_SCENARIO.into(),
                phases: 0..self.phases.len(),
                flows: 0..self.flows.len(),
                start_after: Duration::ZERO,
            }])
        } else {
            std::borrow::Cow::Borrowed(&self.scenarios)
        }
    }

    /// A phase's name for people: `buy/steady` in a plan of named scenarios,
    /// its own name otherwise (empty for a phase the plan does not have).
    pub fn phase_label(&self, phase: usize) -> String {
        let Some(p) = self.phases.get(phase) else {
            return String::new();
        };
        match self.scenarios.get(self.scenario_of_phase(phase)) {
            Some(s) => format!("{}/{}", s.name, p.name),
            None => p.name.clone(),
        }
    }

    /// The index (in [`Self::scenario_list`]) of the scenario phase `phase` belongs to.
    pub fn scenario_of_phase(&self, phase: usize) -> usize {
        self.scenarios
            .iter()
            .position(|s| s.phases.contains(&phase))
            .unwrap_or(0)
    }
}

/// The name of the one scenario of a plan without named ones.
pub const IMPLICIT_SCENARIO: &str = "default";

/// One named scenario of a plan: its phases and flows (slices of the plan's)
/// and how long after the start of the run its first phase starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioPlan {
    pub name: String,
    /// Its phases, as indices into [`Plan::phases`]; they run in order.
    pub phases: Range<usize>,
    /// Its flows, as indices into [`Plan::flows`]; its iterations pick among them.
    pub flows: Range<usize>,
    /// The delay before its first phase.
    pub start_after: Duration,
}

/// A metric group: the steps whose samples are counted together.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupInfo {
    pub name: String,
    /// The protocol family, e.g. `http`, or [`OUTCOME_KIND`] for a group whose
    /// samples are outcomes made of several requests (a poll's time until its
    /// condition held), which request totals leave out.
    pub kind: String,
}

/// The `kind` of a metric group of outcomes rather than requests.
pub const OUTCOME_KIND: &str = "outcome";

/// The `kind` of a metric group of an event destination (a subject or queue
/// that consumers read for the whole run): its samples are received messages,
/// their latency end to end (see [`crate::events`]); request totals leave it
/// out.
pub const EVENTS_KIND: &str = "events";

impl GroupInfo {
    /// Whether the group's samples are single requests (counted in the totals):
    /// neither outcomes nor received events.
    pub fn is_request(&self) -> bool {
        self.kind != OUTCOME_KIND && self.kind != EVENTS_KIND
    }

    /// Whether the group is an event destination's ([`EVENTS_KIND`]).
    pub fn is_events(&self) -> bool {
        self.kind == EVENTS_KIND
    }
}

/// One phase of load.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub pacing: Pacing,
    pub stop: Stop,
}

impl Phase {
    /// How the phase paces and ends, for people: `5/s, at most 100 VUs, for 30s`.
    pub fn describe(&self) -> String {
        let pacing = match &self.pacing {
            Pacing::Open {
                rate,
                ramp_to,
                max_vus,
                arrivals,
            } => {
                let poisson = match arrivals {
                    Arrivals::Uniform => "",
                    Arrivals::Poisson => " (Poisson arrivals)",
                };
                match ramp_to {
                    Some(to) => {
                        format!("{rate}/s rising to {to}/s{poisson}, at most {max_vus} VUs")
                    }
                    None => format!("{rate}/s{poisson}, at most {max_vus} VUs"),
                }
            }
            Pacing::Closed { vus } => format!("{vus} looping VUs"),
        };
        let stop = match &self.stop {
            Stop::Duration(d) => format!("for {}", format_duration(*d)),
            Stop::Iterations {
                total,
                max_duration,
            } => match max_duration {
                Some(d) => format!("{total} iterations (at most {})", format_duration(*d)),
                None => format!("{total} iterations"),
            },
        };
        format!("{pacing}, {stop}")
    }

    pub fn planned_duration(&self) -> Option<Duration> {
        match self.stop {
            Stop::Duration(d) => Some(d),
            Stop::Iterations { .. } => None,
        }
    }
}

/// How iterations are started.
#[derive(Debug, Clone, PartialEq)]
pub enum Pacing {
    /// Open model: iterations started at planned times, `rate` per second rising
    /// linearly to `ramp_to` by the end of the phase; at most `max_vus` at once.
    /// `arrivals` says how the times are spaced.
    Open {
        rate: f64,
        ramp_to: Option<f64>,
        max_vus: u64,
        arrivals: Arrivals,
    },
    /// Closed model: `vus` virtual users, each looping over iterations.
    Closed { vus: u64 },
}

/// How an open-model phase spaces its arrivals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Evenly, at the planned rate: the k-th arrival where the rate's integral
    /// reaches k.
    #[default]
    Uniform,
    /// A Poisson process at the planned rate: independent arrivals whose gaps
    /// are exponentially distributed around the planned mean, as many
    /// independent users arrive; reproducible with the run's seed.
    Poisson,
}

impl Arrivals {
    /// Its name in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrivals::Uniform => "uniform",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// When a phase ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// After this long.
    Duration(Duration),
    /// When the VUs have shared out `total` iterations (or `max_duration` passed).
    Iterations {
        total: u64,
        max_duration: Option<Duration>,
    },
}

/// A weighted sequence of steps; an iteration runs one flow. Cloning shares the
/// step executors.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<Step>,
}

/// One step of a flow.
#[derive(Debug, Clone)]
pub enum Step {
    /// A protocol action (an HTTP request, a query, …).
    Exec(Arc<dyn StepExec>),
    /// A pause.
    Think(DurationRange),
    /// Repeats the inner steps.
    Loop { count: u64, steps: Vec<Step> },
}

/// How a data file's rows are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeederOrder {
    /// Row after row, wrapping around at the end.
    Sequential,
    /// A random row each time.
    Random,
    /// Each row once; when all are used, no further iteration starts.
    Unique,
}

/// Rows of a data file (CSV or JSON lines), drawn one per iteration.
#[derive(Debug)]
pub struct Feeder {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub order: FeederOrder,
    cursor: AtomicU64,
}

impl Feeder {
    pub fn new(
        name: &str,
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
        order: FeederOrder,
    ) -> Self {
        Self {
            name: name.to_string(),
            columns,
            rows,
            order,
            cursor: AtomicU64::new(0),
        }
    }

    /// Draws the next row index, or `None` when a `unique` feeder is used up.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Option<usize> {
        let n = self.rows.len() as u64;
        if n == 0 {
            return None;
        }
        match self.order {
            FeederOrder::Random => Some(rng.u64(0..n) as usize),
            FeederOrder::Sequential => {
                Some((self.cursor.fetch_add(1, Ordering::Relaxed) % n) as usize)
            }
            FeederOrder::Unique => {
                let i = self.cursor.fetch_add(1, Ordering::Relaxed);
                (i < n).then_some(i as usize)
            }
        }
    }
}

/// Identifies a metric group by the step that feeds it.
pub fn default_group_name(method: &str, url_template: &str) -> String {
    format!("{method} {url_template}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeders_draw_in_order() {
        let rows = vec![vec![Value::from(1)], vec![Value::from(2)]];
        let mut rng = fastrand::Rng::with_seed(1);
        let f = Feeder::new("a", vec!["x".into()], rows.clone(), FeederOrder::Sequential);
        let drawn: Vec<_> = (0..5).map(|_| f.draw(&mut rng)).collect();
        assert_eq!(drawn, vec![Some(0), Some(1), Some(0), Some(1), Some(0)]);
        let u = Feeder::new("a", vec!["x".into()], rows.clone(), FeederOrder::Unique);
        let drawn: Vec<_> = (0..3).map(|_| u.draw(&mut rng)).collect();
        assert_eq!(drawn, vec![Some(0), Some(1), None]);
        let r = Feeder::new("a", vec!["x".into()], rows, FeederOrder::Random);
        assert!((0..50).all(|_| r.draw(&mut rng).is_some_and(|i| i < 2)));
    }
}
