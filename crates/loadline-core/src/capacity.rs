//! Capacity search: the highest open-model arrival rate at which every threshold
//! of a plan still holds.
//!
//! The search runs the plan's flows as a series of steps, each one open-model
//! phase at a fixed arrival rate held for a while. The rate climbs (geometrically
//! by a factor, or by a fixed step) until a step fails or the maximum rate is
//! reached; then a few more steps narrow the gap between the last passing and the
//! first failing rate by bisection. Each step is a run of its own, so its
//! thresholds are judged on its own figures only: percentiles over the step's
//! requests, rates over the step's duration.
//!
//! A step also fails, whatever the thresholds say, when the generator could not
//! start some of its arrivals (`max_vus` iterations were in flight) or had to cut
//! iterations off at the graceful stop: the samples those iterations would have
//! given are missing, and they are missing because the system was saturated.
//!
//! [`Search`] is the decision logic (which rate next, what was found) with no
//! timing in it; [`search`] drives it with real runs.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::plan::{Arrivals, Pacing, Phase, Plan, Stop, DEFAULT_MAX_VUS};
use crate::runner::{self, NoObserver, Observer, RunOptions};
use crate::summary::{LatencyMs, Status, Summary, ThresholdResult};

/// Default growth factor between two climbing steps.
pub const DEFAULT_FACTOR: f64 = 1.5;
/// Default time each step is held.
pub const DEFAULT_STEP_DURATION: Duration = Duration::from_secs(10);
/// Default highest rate tried.
pub const DEFAULT_MAX_RATE: f64 = 10_000.0;
/// Default number of bisection steps after the first failure.
pub const DEFAULT_REFINE: u32 = 3;
/// The most steps one search runs, climbing and refining together.
pub const MAX_STEPS: usize = 40;
/// Refining stops once the gap between passing and failing is below this fraction
/// of the failing rate.
pub const REFINE_PRECISION: f64 = 0.02;

/// How the rate climbs from one step to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// Multiply by this (> 1).
    Factor(f64),
    /// Add this (> 0).
    Add(f64),
}

impl Growth {
    fn next(self, rate: f64) -> f64 {
        match self {
            Growth::Factor(f) => rate * f,
            Growth::Add(a) => rate + a,
        }
    }
}

/// The search settings as a scenario file or a command line gives them: `None`
/// where not given. Combine with [`SearchSpec::or`] (the first one wins) and
/// finish with [`SearchSpec::resolve`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchSpec {
    pub start: Option<f64>,
    pub growth: Option<Growth>,
    pub step_duration: Option<Duration>,
    pub max_rate: Option<f64>,
    pub refine: Option<u32>,
    pub max_vus: Option<u64>,
    pub pause: Option<Duration>,
}

impl SearchSpec {
    /// Each setting from `self`, or else from `fallback`.
    pub fn or(self, fallback: SearchSpec) -> SearchSpec {
        SearchSpec {
            start: self.start.or(fallback.start),
            growth: self.growth.or(fallback.growth),
            step_duration: self.step_duration.or(fallback.step_duration),
            max_rate: self.max_rate.or(fallback.max_rate),
            refine: self.refine.or(fallback.refine),
            max_vus: self.max_vus.or(fallback.max_vus),
            pause: self.pause.or(fallback.pause),
        }
    }

    /// The settings with defaults filled in; the start rate has no default.
    pub fn resolve(self) -> Result<SearchOptions, String> {
        let start = self.start.ok_or_else(|| {
            "no start rate: give one (e.g. --start 10) or an open-model phase whose rate the search can start from".to_string()
        })?;
        let opts = SearchOptions {
            start,
            growth: self.growth.unwrap_or(Growth::Factor(DEFAULT_FACTOR)),
            step_duration: self.step_duration.unwrap_or(DEFAULT_STEP_DURATION),
            max_rate: self.max_rate.unwrap_or(DEFAULT_MAX_RATE),
            refine: self.refine.unwrap_or(DEFAULT_REFINE),
            max_vus: self.max_vus.unwrap_or(DEFAULT_MAX_VUS),
            pause: self.pause.unwrap_or(Duration::ZERO),
        };
        opts.check()?;
        Ok(opts)
    }
}

/// Complete search settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    /// The first step's arrival rate (iterations per second).
    pub start: f64,
    pub growth: Growth,
    pub step_duration: Duration,
    /// No step goes above this rate.
    pub max_rate: f64,
    /// Bisection steps after the first failure.
    pub refine: u32,
    pub max_vus: u64,
    /// A pause between steps.
    pub pause: Duration,
}

impl SearchOptions {
    fn check(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.start) {
            return Err(format!(
                "the start rate must be above 0, found {}",
                self.start
            ));
        }
        if !positive(self.max_rate) || self.max_rate < self.start {
            return Err(format!(
                "the maximum rate ({}) must be at least the start rate ({})",
                self.max_rate, self.start
            ));
        }
        match self.growth {
            Growth::Factor(f) if !(f.is_finite() && f > 1.0) => {
                return Err(format!("the step factor must be above 1, found {f}"))
            }
            Growth::Add(a) if !positive(a) => {
                return Err(format!("the rate step must be above 0, found {a}"))
            }
            _ => {}
        }
        if self.step_duration.is_zero() {
            return Err("the step duration must be above zero".into());
        }
        if self.max_vus == 0 {
            return Err("max_vus must be at least 1".into());
        }
        Ok(())
    }
}

/// Whether a step was part of the climb or of the narrowing down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Climb,
    Refine,
}

/// How a step's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepEnd {
    Completed,
    /// An `abort_on_fail` threshold stopped it.
    Aborted,
    /// Stopped by the caller (Ctrl-C).
    Interrupted,
    /// A `unique` data file ran out.
    DataExhausted,
}

/// The figures of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based, in the order run.
    pub index: usize,
    pub kind: StepKind,
    /// The arrival rate asked for, iterations per second.
    pub rate: f64,
    /// Iterations that started per second of the step: below `rate` when arrivals
    /// were dropped because `max_vus` iterations were already in flight.
    pub achieved_rate: f64,
    /// Requests the step's iterations sent, per second of the step (the offered
    /// load in requests; those sent while in-flight iterations finished after the
    /// step count too, as they belong to its arrivals).
    pub request_rate: f64,
    pub requests: u64,
    /// Failed requests over all requests (0 when there were none).
    pub error_rate: f64,
    pub iterations: u64,
    pub dropped: u64,
    pub interrupted: u64,
    /// Request latency over the step.
    pub latency_ms: LatencyMs,
    pub duration_s: f64,
    pub passed: bool,
    pub end: StepEnd,
    /// Every threshold judged on this step, plus the search's own saturation
    /// criteria when they failed (`dropped_iterations`, `interrupted_iterations`).
    pub thresholds: Vec<ThresholdResult>,
}

impl StepReport {
    /// The thresholds (and saturation criteria) that failed.
    pub fn failed(&self) -> impl Iterator<Item = &ThresholdResult> {
        self.thresholds.iter().filter(|t| !t.passed)
    }

    /// Builds the report of a step held `held` from the summary of its run.
    pub fn from_summary(
        index: usize,
        kind: StepKind,
        rate: f64,
        held: Duration,
        s: &Summary,
    ) -> Self {
        let secs = held.as_secs_f64().max(1e-9);
        let end = match s.status {
            crate::summary::Status::Interrupted => StepEnd::Interrupted,
            crate::summary::Status::Aborted => StepEnd::Aborted,
            _ if s.notes.iter().any(|n| n.contains("ran out of rows")) => StepEnd::DataExhausted,
            _ => StepEnd::Completed,
        };
        let mut thresholds = s.thresholds.clone();
        let saturation = [
            ("dropped_iterations", s.iterations.dropped),
            ("interrupted_iterations", s.iterations.interrupted),
        ];
        for (metric, n) in saturation {
            // A threshold of the scenario's own on the same count already says it.
            let said = s.thresholds.iter().any(|t| t.metric == metric && !t.passed);
            if n > 0 && !said {
                thresholds.push(ThresholdResult {
                    metric: metric.into(),
                    expr: "count == 0".into(),
                    value: Some(n as f64),
                    display: n.to_string(),
                    passed: false,
                    abort_on_fail: false,
                });
            }
        }
        let passed = end == StepEnd::Completed && thresholds.iter().all(|t| t.passed);
        StepReport {
            index,
            kind,
            rate,
            achieved_rate: round2((s.iterations.total + s.iterations.interrupted) as f64 / secs),
            request_rate: round2(s.requests.total as f64 / secs),
            requests: s.requests.total,
            error_rate: if s.requests.total == 0 {
                0.0
            } else {
                (s.requests.failed as f64 / s.requests.total as f64 * 1e6).round() / 1e6
            },
            iterations: s.iterations.total,
            dropped: s.iterations.dropped,
            interrupted: s.iterations.interrupted,
            latency_ms: s.latency_ms,
            duration_s: s.duration_s,
            passed,
            end,
            thresholds,
        }
    }
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchEnd {
    /// A failing rate was found above a passing one (and the gap narrowed).
    Bracketed,
    /// Every step passed, up to the maximum rate.
    MaxRate,
    /// The very first step failed: the capacity is below the start rate.
    StartFailed,
    /// The step limit ([`MAX_STEPS`]) was reached.
    StepLimit,
    /// Stopped by the caller.
    Interrupted,
    /// A `unique` data file ran out.
    DataExhausted,
}

/// What the search found.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// The highest rate whose step passed; `None` when none did.
    pub max_passing_rate: Option<f64>,
    /// The lowest rate whose step failed; `None` when none did.
    pub first_failing_rate: Option<f64>,
    /// What failed at `first_failing_rate`.
    pub failed_thresholds: Vec<ThresholdResult>,
    pub end: SearchEnd,
    pub steps: Vec<StepReport>,
}

impl CapacityReport {
    /// Passed when a passing rate was found, failed when even the start rate
    /// failed, interrupted when stopped.
    pub fn status(&self) -> Status {
        match (self.end, self.max_passing_rate) {
            (SearchEnd::Interrupted, _) => Status::Interrupted,
            (_, Some(_)) => Status::Passed,
            (_, None) => Status::Failed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Climb { next: f64 },
    Refine { left: u32 },
    Done(SearchEnd),
}

/// The search's decisions, step by step, without running anything: ask
/// [`Search::next_rate`], run a step at that rate, hand its report to
/// [`Search::record`], until `next_rate` says `None`; then [`Search::finish`].
#[derive(Debug)]
pub struct Search {
    opts: SearchOptions,
    state: State,
    steps: Vec<StepReport>,
    passing: Option<f64>,
    /// The lowest failing rate and the index of its step.
    failing: Option<(f64, usize)>,
}

impl Search {
    pub fn new(opts: SearchOptions) -> Self {
        Self {
            state: State::Climb {
                next: round2(opts.start),
            },
            opts,
            steps: Vec::new(),
            passing: None,
            failing: None,
        }
    }

    /// The rate of the next step and its kind, or `None` when the search is over.
    pub fn next_rate(&mut self) -> Option<(f64, StepKind)> {
        if self.steps.len() >= MAX_STEPS {
            if !matches!(self.state, State::Done(_)) {
                self.state = State::Done(SearchEnd::StepLimit);
            }
            return None;
        }
        match self.state {
            State::Climb { next } => Some((next, StepKind::Climb)),
            State::Refine { left } => {
                let (Some(pass), Some((fail, _))) = (self.passing, self.failing) else {
                    self.state = State::Done(SearchEnd::Bracketed);
                    return None;
                };
                let mid = round2((pass + fail) / 2.0);
                if left == 0
                    || (fail - pass) / fail < REFINE_PRECISION
                    || mid <= pass
                    || mid >= fail
                {
                    self.state = State::Done(SearchEnd::Bracketed);
                    return None;
                }
                Some((mid, StepKind::Refine))
            }
            State::Done(_) => None,
        }
    }

    /// Takes the report of the step run at the rate `next_rate` gave.
    pub fn record(&mut self, step: StepReport) {
        let rate = step.rate;
        let index = self.steps.len();
        let ended = match step.end {
            StepEnd::Interrupted => Some(SearchEnd::Interrupted),
            StepEnd::DataExhausted => Some(SearchEnd::DataExhausted),
            _ => None,
        };
        if step.passed {
            self.passing = Some(self.passing.map_or(rate, |p| p.max(rate)));
        } else if ended.is_none() && self.failing.is_none_or(|(f, _)| rate < f) {
            self.failing = Some((rate, index));
        }
        self.state = match (ended, self.state) {
            (Some(end), _) => State::Done(end),
            (None, State::Climb { .. }) if step.passed => {
                if rate >= self.opts.max_rate {
                    State::Done(SearchEnd::MaxRate)
                } else {
                    let next = round2(self.opts.growth.next(rate)).min(self.opts.max_rate);
                    State::Climb {
                        next: next.max(rate + 0.01),
                    }
                }
            }
            (None, State::Climb { .. }) => match self.passing {
                None => State::Done(SearchEnd::StartFailed),
                Some(_) => State::Refine {
                    left: self.opts.refine,
                },
            },
            (None, State::Refine { left }) => State::Refine {
                left: left.saturating_sub(1),
            },
            (None, done @ State::Done(_)) => done,
        };
        self.steps.push(step);
    }

    /// What the search found.
    pub fn finish(self) -> CapacityReport {
        let end = match self.state {
            State::Done(end) => end,
            State::Climb { .. } | State::Refine { .. } => SearchEnd::StepLimit,
        };
        let failed_thresholds = self
            .failing
            .and_then(|(_, i)| self.steps.get(i))
            .map(|s| s.failed().cloned().collect())
            .unwrap_or_default();
        CapacityReport {
            max_passing_rate: self.passing,
            first_failing_rate: self.failing.map(|(r, _)| r),
            failed_thresholds,
            end,
            steps: self.steps,
        }
    }
}

/// Follows a search as it runs.
pub trait SearchObserver: Send {
    /// A step starts; the observer returned sees its ticks.
    fn step_started(&mut self, _index: usize, _rate: f64, _kind: StepKind) -> Box<dyn Observer> {
        Box::new(NoObserver)
    }
    /// A step ended.
    fn step_finished(&mut self, _step: &StepReport) {}
}

/// Ignores the search's progress.
#[derive(Debug, Default)]
pub struct NoSearchObserver;

impl SearchObserver for NoSearchObserver {}

/// The plan of one step: the plan's flows, data, thresholds and groups, with one
/// open-model phase at `rate` for `duration`.
pub fn step_plan(plan: &Plan, rate: f64, duration: Duration, max_vus: u64) -> Plan {
    Plan {
        name: plan.name.clone(),
        source: plan.source.clone(),
        phases: vec![Phase {
            name: format!("{rate}/s"),
            pacing: Pacing::Open {
                rate,
                ramp_to: None,
                max_vus,
                arrivals: Arrivals::Uniform,
            },
            stop: Stop::Duration(duration),
        }],
        flows: plan.flows.clone(),
        scenarios: vec![],
        feeders: plan.feeders.clone(),
        thresholds: plan.thresholds.clone(),
        groups: plan.groups.clone(),
        protocols: plan.protocols.clone(),
        capture_slots: plan.capture_slots,
        graceful_stop: plan.graceful_stop,
        cache_warm_at: plan.cache_warm_at,
        error_classes: plan.error_classes.clone(),
        counters: plan.counters.clone(),
        checks: plan.checks.clone(),
    }
}

/// Runs the search for `plan` (its phases are not used). `run` carries the stop
/// tokens (Ctrl-C) and the seed; each step is a run with those.
pub async fn search(
    plan: &Plan,
    opts: &SearchOptions,
    run: &RunOptions,
    observer: &mut dyn SearchObserver,
) -> CapacityReport {
    let mut search = Search::new(opts.clone());
    let mut first = true;
    while let Some((rate, kind)) = search.next_rate() {
        if !first && !opts.pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(opts.pause) => {}
                _ = run.stop.cancelled() => {}
            }
        }
        first = false;
        let index = search.steps.len() + 1;
        let step = Arc::new(step_plan(plan, rate, opts.step_duration, opts.max_vus));
        let ticks = observer.step_started(index, rate, kind);
        let result = runner::run(step.clone(), run.clone(), ticks).await;
        let mut summary = Summary::new(&step, &result);
        if run.stop.is_cancelled() {
            summary.status = crate::summary::Status::Interrupted;
        }
        let report = StepReport::from_summary(index, kind, rate, opts.step_duration, &summary);
        observer.step_finished(&report);
        search.record(report);
    }
    search.finish()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(start: f64, growth: Growth, max_rate: f64, refine: u32) -> SearchOptions {
        SearchOptions {
            start,
            growth,
            step_duration: Duration::from_secs(1),
            max_rate,
            refine,
            max_vus: 100,
            pause: Duration::ZERO,
        }
    }

    fn report(index: usize, kind: StepKind, rate: f64, passed: bool) -> StepReport {
        StepReport {
            index,
            kind,
            rate,
            achieved_rate: rate,
            request_rate: rate,
            requests: 10,
            error_rate: 0.0,
            iterations: 10,
            dropped: 0,
            interrupted: 0,
            latency_ms: LatencyMs::default(),
            duration_s: 1.0,
            passed,
            end: StepEnd::Completed,
            thresholds: vec![ThresholdResult {
                metric: "latency".into(),
                expr: "p95 < 100ms".into(),
                value: Some(if passed { 50.0 } else { 500.0 }),
                display: String::new(),
                passed,
                abort_on_fail: false,
            }],
        }
    }

    /// Runs the decision logic against a system that passes up to `capacity`.
    fn simulate(o: SearchOptions, capacity: f64) -> (CapacityReport, Vec<(f64, StepKind)>) {
        let mut s = Search::new(o);
        let mut tried = Vec::new();
        while let Some((rate, kind)) = s.next_rate() {
            tried.push((rate, kind));
            s.record(report(tried.len(), kind, rate, rate <= capacity));
        }
        (s.finish(), tried)
    }

    #[test]
    fn climbs_geometrically_then_bisects() {
        let (r, tried) = simulate(opts(20.0, Growth::Factor(1.5), 1000.0, 3), 80.0);
        let rates: Vec<f64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(
            rates,
            vec![20.0, 30.0, 45.0, 67.5, 101.25, 84.38, 75.94, 80.16]
        );
        assert_eq!(tried[4].1, StepKind::Climb);
        assert_eq!(tried[5].1, StepKind::Refine);
        assert_eq!(r.end, SearchEnd::Bracketed);
        assert_eq!(r.max_passing_rate, Some(75.94));
        assert_eq!(r.first_failing_rate, Some(80.16));
        assert_eq!(r.failed_thresholds.len(), 1);
        assert_eq!(r.status(), Status::Passed);
    }

    #[test]
    fn additive_steps_max_rate_and_a_failing_start() {
        let (r, tried) = simulate(opts(10.0, Growth::Add(10.0), 35.0, 2), 1000.0);
        let rates: Vec<f64> = tried.iter().map(|t| t.0).collect();
        assert_eq!(rates, vec![10.0, 20.0, 30.0, 35.0]);
        assert_eq!(r.end, SearchEnd::MaxRate);
        assert_eq!(
            (r.max_passing_rate, r.first_failing_rate),
            (Some(35.0), None)
        );

        let (r, tried) = simulate(opts(10.0, Growth::Factor(2.0), 100.0, 3), 5.0);
        assert_eq!(tried.len(), 1);
        assert_eq!(r.end, SearchEnd::StartFailed);
        assert_eq!(r.max_passing_rate, None);
        assert_eq!(r.first_failing_rate, Some(10.0));
        assert_eq!(r.status(), Status::Failed);
    }

    #[test]
    fn refining_stops_when_the_gap_is_small() {
        let (r, tried) = simulate(opts(100.0, Growth::Factor(1.01), 1000.0, 10), 100.5);
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_eq!(r.max_passing_rate, Some(100.0));
        assert_eq!(r.first_failing_rate, Some(101.0));
        let (r, _) = simulate(opts(1.0, Growth::Factor(1.001), 1e9, 0), 1e9);
        assert_eq!(r.end, SearchEnd::StepLimit);
        assert_eq!(r.steps.len(), MAX_STEPS);
    }

    #[test]
    fn an_interrupted_step_ends_the_search() {
        let mut s = Search::new(opts(10.0, Growth::Factor(2.0), 100.0, 3));
        let (rate, kind) = s.next_rate().unwrap();
        s.record(report(1, kind, rate, true));
        let (rate, kind) = s.next_rate().unwrap();
        let mut cut = report(2, kind, rate, false);
        cut.end = StepEnd::Interrupted;
        s.record(cut);
        assert_eq!(s.next_rate(), None);
        let r = s.finish();
        assert_eq!(r.end, SearchEnd::Interrupted);
        assert_eq!(r.max_passing_rate, Some(10.0));
        assert_eq!(r.first_failing_rate, None);
        assert_eq!(r.status(), Status::Interrupted);
    }

    #[test]
    fn specs_combine_and_resolve_with_defaults() {
        let file = SearchSpec {
            start: Some(5.0),
            step_duration: Some(Duration::from_secs(3)),
            ..SearchSpec::default()
        };
        let flags = SearchSpec {
            start: Some(8.0),
            growth: Some(Growth::Add(4.0)),
            ..SearchSpec::default()
        };
        let o = flags.or(file).resolve().unwrap();
        assert_eq!(o.start, 8.0);
        assert_eq!(o.growth, Growth::Add(4.0));
        assert_eq!(o.step_duration, Duration::from_secs(3));
        assert_eq!(o.max_rate, DEFAULT_MAX_RATE);
        assert!(SearchSpec::default().resolve().is_err());
        let bad = SearchSpec {
            start: Some(5.0),
            growth: Some(Growth::Factor(1.0)),
            ..SearchSpec::default()
        };
        assert!(bad.resolve().unwrap_err().contains("factor"));
        let low = SearchSpec {
            start: Some(50.0),
            max_rate: Some(10.0),
            ..SearchSpec::default()
        };
        assert!(low.resolve().is_err());
    }

    use crate::metrics::RequestSample;
    use crate::plan::{Flow, GroupInfo, Step};
    use crate::protocol::{BoxFuture, StepExec, StepOutcome};
    use crate::threshold::{parse_condition, MetricName, Threshold};
    use crate::vu::Vu;

    /// A server of known capacity: `permits` requests at once, each taking
    /// `service` (so `permits / service` per second); latency includes queueing.
    #[derive(Debug)]
    struct Limited {
        permits: Arc<tokio::sync::Semaphore>,
        service: Duration,
    }

    impl StepExec for Limited {
        fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
            Box::pin(async move {
                let start = tokio::time::Instant::now();
                let permit = self.permits.acquire().await;
                tokio::time::sleep(self.service).await;
                drop(permit);
                vu.metrics.record_request(&RequestSample {
                    group: 0,
                    latency: start.elapsed(),
                    status: Some(200),
                    failed: false,
                    error: None,
                    bytes_sent: 0,
                    bytes_received: 0,
                    cache: crate::cache::CacheOutcome::None,
                });
                StepOutcome::Continue
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn finds_the_capacity_of_a_limited_server() {
        // 4 permits x 50 ms = 80 requests per second; time is simulated.
        let latency = MetricName::Latency;
        let plan = Plan {
            name: None,
            source: "test".into(),
            phases: vec![],
            flows: vec![Flow {
                name: "f".into(),
                weight: 1,
                steps: vec![Step::Exec(Arc::new(Limited {
                    permits: Arc::new(tokio::sync::Semaphore::new(4)),
                    service: Duration::from_millis(50),
                }))],
            }],
            scenarios: vec![],
            feeders: Arc::new(vec![]),
            thresholds: vec![Threshold {
                metric_key: "latency".into(),
                metric: latency,
                group: None,
                phase: None,
                scenario: None,
                expr: "p95 < 150ms".into(),
                condition: parse_condition(latency, "p95 < 150ms").unwrap(),
                abort_on_fail: false,
                delay: Duration::ZERO,
            }],
            groups: vec![GroupInfo {
                name: "g".into(),
                kind: "test".into(),
            }],
            protocols: vec![],
            capture_slots: 0,
            graceful_stop: Duration::from_secs(10),
            cache_warm_at: 0.9,
            error_classes: crate::metrics::generic_error_classes(),
            counters: vec![],
            checks: vec![],
        };
        let o = SearchOptions {
            step_duration: Duration::from_secs(3),
            ..opts(20.0, Growth::Factor(1.5), 1000.0, 3)
        };
        let r = search(&plan, &o, &RunOptions::default(), &mut NoSearchObserver).await;
        let found = r.max_passing_rate.unwrap();
        assert!((70.0..=90.0).contains(&found), "{r:#?}");
        assert!(r.first_failing_rate.unwrap() > found);
        assert_eq!(r.end, SearchEnd::Bracketed);
        let climbed = r.steps.iter().filter(|s| s.kind == StepKind::Climb).count();
        assert_eq!(climbed, 5);
        let last_fail = r.steps.iter().find(|s| s.rate == 101.25).unwrap();
        assert!(!last_fail.passed);
        assert!(last_fail.latency_ms.p95 > 150.0);
        assert_eq!(r.failed_thresholds[0].metric, "latency");
    }
}
