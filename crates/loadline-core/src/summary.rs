//! The end-of-run summary: the figures every output renders (terminal table, JSON
//! file, later the HTML report), computed once from the merged histograms.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cache::CacheCounts;
use crate::metrics::GroupStats;
use crate::plan::{Pacing, Plan};
use crate::runner::{EndReason, RunResult};
use crate::threshold::format_value;

/// Schedule lag (p99) past which a run is flagged as limited by the generator.
pub const GENERATOR_BOUND_LAG_MS: f64 = 10.0;

/// The run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Aborted,
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::Interrupted => "interrupted",
        }
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencyMs {
    /// From a histogram of microseconds; all zero when empty.
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: f64| (v / 1000.0 * 1000.0).round() / 1000.0;
        let q = |p: f64| ms(h.value_at_quantile(p) as f64);
        Self {
            min: ms(h.min() as f64),
            mean: ms(h.mean()),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            max: ms(h.max() as f64),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestTotals {
    pub total: u64,
    pub failed: u64,
    /// Requests per second over the run.
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IterationTotals {
    pub total: u64,
    /// Open-model arrivals not started (at `max_vus`, or late).
    pub dropped: u64,
    /// Of `dropped`, those the generator could not start within
    /// [`crate::plan::MAX_LATENESS`] of their planned time.
    pub late: u64,
    pub interrupted: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckTotals {
    pub passed: u64,
    pub failed: u64,
    /// Each check of the step that failed: what it tests, how often it failed,
    /// and a value it failed on (steps only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<CheckFailure>,
}

/// One check that failed, in a step's summary.
#[derive(Debug, Clone, Serialize)]
pub struct CheckFailure {
    /// What the check tests, e.g. `json $.state equals "confirmed"`.
    pub check: String,
    pub failed: u64,
    /// The actual value of one failure (the first recorded), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub name: String,
    pub requests: u64,
    pub failed: u64,
    pub latency_ms: LatencyMs,
    /// Response status code → count.
    pub status: BTreeMap<String, u64>,
    /// Error kind → count.
    pub errors: BTreeMap<String, u64>,
    pub checks: CheckTotals,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The protocols' extra counters that counted something (such as `rows`),
    /// as fields of the step.
    #[serde(flatten)]
    pub counters: BTreeMap<String, u64>,
    /// How caches answered, when the step met one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSummary>,
}

/// How caches answered a step's requests (or all of them): each outcome's
/// count, the hit ratio (fresh hits over hits, misses and stale answers), the
/// median latency of hits and of misses and their ratio, and when the hit
/// ratio first reached the warm level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheSummary {
    pub hit: u64,
    pub miss: u64,
    pub stale: u64,
    pub bypass: u64,
    pub unknown: u64,
    pub hit_ratio: Option<f64>,
    pub hit_p50_ms: Option<f64>,
    pub miss_p50_ms: Option<f64>,
    /// Miss p50 over hit p50: how much faster a hit is.
    pub speedup: Option<f64>,
    /// Seconds from the start until a one-second interval's hit ratio first
    /// reached `warm_at` (`None`: it never did).
    pub warm_after_s: Option<f64>,
    /// The warm level, 0 to 1.
    pub warm_at: f64,
    /// Each cache of a chain (`Cache-Status` naming several), origin side
    /// first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayerSummary>,
}

/// One cache of a chain and its own verdicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheLayerSummary {
    pub name: String,
    pub hit: u64,
    pub miss: u64,
    pub stale: u64,
    pub bypass: u64,
    pub unknown: u64,
}

impl CacheSummary {
    /// The summary of `c`, when it met a cache at all.
    pub fn of(c: &CacheCounts, warm: Option<std::time::Duration>, warm_at: f64) -> Option<Self> {
        if !c.seen() {
            return None;
        }
        let (hit_p50, miss_p50) = c.p50_ms();
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        Some(Self {
            hit: c.hit(),
            miss: c.miss(),
            stale: c.stale(),
            bypass: c.bypass(),
            unknown: c.unknown(),
            hit_ratio: c.hit_ratio().map(|r| (r * 10_000.0).round() / 10_000.0),
            hit_p50_ms: hit_p50.map(r3),
            miss_p50_ms: miss_p50.map(r3),
            speedup: match (hit_p50, miss_p50) {
                (Some(h), Some(m)) if h > 0.0 => Some(round2(m / h)),
                _ => None,
            },
            warm_after_s: warm.map(|d| r3(d.as_secs_f64())),
            warm_at,
            layers: c
                .split
                .as_ref()
                .map(|s| {
                    s.layers
                        .iter()
                        .map(|l| CacheLayerSummary {
                            name: l.name.to_string(),
                            hit: l.counts[0],
                            miss: l.counts[1],
                            stale: l.counts[2],
                            bypass: l.counts[3],
                            unknown: l.counts[4],
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

impl StepSummary {
    fn new(plan: &Plan, name: &str, g: &GroupStats, warm: Option<std::time::Duration>) -> Self {
        Self {
            name: name.to_string(),
            requests: g.requests,
            failed: g.failed,
            latency_ms: LatencyMs::from_micros(&g.latency),
            status: g.status.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            errors: g
                .error_counts()
                .map(|(k, n)| (plan.error_class_name(k).to_string(), n))
                .collect(),
            checks: CheckTotals {
                passed: g.checks_passed,
                failed: g.checks_failed,
                failures: g
                    .failed_checks()
                    .map(|(check, tally)| CheckFailure {
                        check: plan.check_label(check).into_owned(),
                        failed: tally.failed,
                        actual: tally.actual.as_deref().map(str::to_owned),
                    })
                    .collect(),
            },
            bytes_sent: g.bytes_sent,
            bytes_received: g.bytes_received,
            counters: plan
                .counters
                .iter()
                .zip(&g.counters)
                .filter(|(_, n)| **n > 0)
                .map(|(name, n)| (name.clone(), *n))
                .collect(),
            cache: CacheSummary::of(&g.cache, warm, plan.cache_warm_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdResult {
    pub metric: String,
    pub expr: String,
    /// The measured value in the expression's unit (ms, a 0..1 fraction, per
    /// second, or a count); null when there was nothing to measure.
    pub value: Option<f64>,
    /// The value for people, e.g. `312.00ms` or `0.42%`.
    pub display: String,
    pub passed: bool,
    pub abort_on_fail: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    pub name: String,
    /// The scenario the phase belongs to, in a run of named `scenarios:`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// `open` (arrival rate) or `closed` (looping VUs).
    pub model: &'static str,
    pub iterations: u64,
    pub dropped: u64,
    /// Of `dropped`, those dropped for lateness.
    pub late: u64,
    pub interrupted: u64,
    /// How long the phase ran, to its end or, for the last one, the end of the
    /// run (its graceful stop included).
    pub duration_s: f64,
    /// Requests that ended during the phase (over every request step).
    pub requests: u64,
    pub failed: u64,
    /// Requests per second over the phase.
    pub rate: f64,
    /// The latency of the phase's requests.
    pub latency_ms: LatencyMs,
    /// How caches answered in the phase, when its requests met one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSummary>,
}

/// One of the named scenarios of a run, over its phases.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    pub name: String,
    /// Requests that ended during its phases (over every request step).
    pub requests: u64,
    pub failed: u64,
    /// Requests per second over its duration.
    pub rate: f64,
    /// The latency of its requests.
    pub latency_ms: LatencyMs,
    /// Iterations it completed.
    pub iterations: u64,
    /// Of its open-model arrivals, those not started (at `max_vus`, or late).
    pub dropped: u64,
    /// How long its phases ran together (from its first phase's start).
    pub duration_s: f64,
}

/// One event destination over the run (see [`crate::events`]): what the
/// producers sent towards it, what its consumers received, and the latency
/// end to end of the messages that carried loadline's envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    /// The destination's name (a `{dest:NAME}` selector's).
    pub dest: String,
    pub sent: u64,
    /// Every message received, duplicates included.
    pub received: u64,
    /// Sent and not received by the end of the grace period.
    pub lost: u64,
    /// Received again (same producer and sequence number).
    pub duplicated: u64,
    /// Received after a later message of the same producer.
    pub out_of_order: u64,
    /// Sent and received per second over the run.
    pub sent_rate: f64,
    pub received_rate: f64,
    /// The highest consumer lag the broker reported, when it reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_max: Option<u64>,
    /// Send to receipt, over the messages that carried an envelope.
    pub latency_ms: LatencyMs,
}

/// One monitor series over the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MonitorSummary {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    /// The first and the last value read.
    pub first: f64,
    pub last: f64,
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: Option<String>,
    pub scenario: String,
    /// The run's tags (`--tag env=staging`), as given; left out when none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    pub status: Status,
    pub duration_s: f64,
    pub requests: RequestTotals,
    pub latency_ms: LatencyMs,
    pub iterations: IterationTotals,
    pub checks: CheckTotals,
    /// Open-model schedule lag (actual minus planned start), when any phase is open.
    pub schedule_lag_ms: Option<LatencyMs>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub steps: Vec<StepSummary>,
    /// Each event destination consumers read, when the scenario has any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSummary>,
    pub thresholds: Vec<ThresholdResult>,
    pub phases: Vec<PhaseSummary>,
    /// Each named scenario's figures (left out for a run without `scenarios:`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<ScenarioSummary>,
    /// Latency by percentile over every request: `[percentile, ms]` pairs from
    /// p0 to p100, for distribution charts.
    pub latency_distribution: Vec<[f64; 2]>,
    /// Each monitor series read during the run (a value a second), by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub monitors: BTreeMap<String, MonitorSummary>,
    /// How caches answered, over every request step that met one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSummary>,
    /// Things the reader must know to trust the numbers.
    pub notes: Vec<String>,
}

/// The percentiles of [`Summary::latency_distribution`].
const DISTRIBUTION: [f64; 19] = [
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 97.5, 99.0, 99.5,
    99.9, 99.99, 100.0,
];

fn distribution(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    DISTRIBUTION
        .iter()
        .map(|p| [*p, h.value_at_quantile(p / 100.0) as f64 / 1000.0])
        .collect()
}

impl Summary {
    /// Builds the summary of `result`, a run of `plan`.
    pub fn new(plan: &Plan, result: &RunResult) -> Self {
        let total = &result.total;
        let all = total.all_requests(&plan.groups);
        let secs = result.elapsed.as_secs_f64().max(1e-9);
        let any_open = plan
            .phases
            .iter()
            .any(|p| matches!(p.pacing, Pacing::Open { .. }));
        let any_closed = plan
            .phases
            .iter()
            .any(|p| matches!(p.pacing, Pacing::Closed { .. }));
        let thresholds: Vec<ThresholdResult> = plan
            .thresholds
            .iter()
            .zip(&result.verdicts)
            .map(|(t, v)| ThresholdResult {
                metric: t.metric_key.clone(),
                expr: t.expr.clone(),
                value: v.value.map(|x| (x * 1e6).round() / 1e6),
                display: v
                    .value
                    .map(|x| format_value(x, t.condition.unit))
                    .unwrap_or_else(|| "no data".into()),
                passed: v.passed,
                abort_on_fail: t.abort_on_fail,
            })
            .collect();
        let status = match result.end {
            EndReason::Interrupted => Status::Interrupted,
            EndReason::Aborted { .. } => Status::Aborted,
            _ if thresholds.iter().any(|t| !t.passed) => Status::Failed,
            _ => Status::Passed,
        };
        let schedule_lag_ms = any_open.then(|| LatencyMs::from_micros(&total.schedule_lag));
        let mut notes = Vec::new();
        if let EndReason::DataExhausted { feeder } = &result.end {
            notes.push(format!(
                "data `{feeder}` (order: unique) ran out of rows: no further iterations were started"
            ));
        }
        if let EndReason::Aborted { threshold } = result.end {
            if let Some(t) = plan.thresholds.get(threshold) {
                notes.push(format!(
                    "aborted early: threshold `{}: {}` failed",
                    t.metric_key, t.expr
                ));
            }
        }
        if any_closed {
            notes.push(
                "closed-model phases: latency was measured under self-throttled load (each VU waits for its response before sending more)"
                    .into(),
            );
        }
        if let Some(lag) = schedule_lag_ms {
            if lag.p99 > GENERATOR_BOUND_LAG_MS {
                notes.push(format!(
                    "generator-bound: schedule lag p99 {:.1}ms exceeds {GENERATOR_BOUND_LAG_MS}ms; loadline could not start iterations on time",
                    lag.p99
                ));
            }
        }
        let at_max_vus = total.dropped() - total.late();
        if at_max_vus > 0 {
            notes.push(format!(
                "{at_max_vus} open-model arrivals were dropped because max_vus iterations were already running"
            ));
        }
        if total.late() > 0 {
            notes.push(format!(
                "generator-bound: {} open-model arrivals were dropped because loadline could not start them within {} of their planned time",
                total.late(),
                crate::duration::format_duration(crate::plan::MAX_LATENESS)
            ));
        }
        if total.interrupted() > 0 {
            notes.push(format!(
                "{} iterations were cut off at the end of the graceful stop",
                total.interrupted()
            ));
        }
        for protocol in &plan.protocols {
            notes.extend(protocol.notes());
        }
        for t in &plan.thresholds {
            if t.metric == crate::threshold::MetricName::Monitor
                && crate::threshold::monitor_series(total, &t.metric_key).is_empty()
            {
                let seen: Vec<&str> = total.monitors.keys().map(String::as_str).collect();
                notes.push(if seen.is_empty() {
                    format!(
                        "threshold `{}`: no monitor series was read (is `monitor:` set, and are monitors on?)",
                        t.metric_key
                    )
                } else {
                    format!(
                        "threshold `{}`: no monitor series of that name and labels was read; read: {}",
                        t.metric_key,
                        seen.join(", ")
                    )
                });
            }
        }
        let cut = all.errors_of(crate::metrics::ErrorKind::Interrupted);
        if cut > 0 {
            notes.push(format!(
                "{cut} requests were in flight when their iterations were cut off (error `interrupted`)"
            ));
        }
        Summary {
            name: plan.name.clone(),
            scenario: plan.source.clone(),
            tags: Default::default(),
            status,
            duration_s: (secs * 1000.0).round() / 1000.0,
            requests: RequestTotals {
                total: all.requests,
                failed: all.failed,
                rate: round2(all.requests as f64 / secs),
            },
            latency_ms: LatencyMs::from_micros(&all.latency),
            iterations: IterationTotals {
                total: total.iterations(),
                dropped: total.dropped(),
                late: total.late(),
                interrupted: total.interrupted(),
                rate: round2(total.iterations() as f64 / secs),
            },
            checks: CheckTotals {
                passed: all.checks_passed,
                failed: all.checks_failed,
                failures: Vec::new(),
            },
            schedule_lag_ms,
            bytes_sent: all.bytes_sent,
            bytes_received: all.bytes_received,
            steps: plan
                .groups
                .iter()
                .zip(&total.groups)
                .enumerate()
                .filter(|(_, (info, _))| !info.is_events())
                .map(|(i, (info, g))| {
                    let warm = total.cache_warm.groups.get(i).copied().flatten();
                    StepSummary::new(plan, &info.name, g, warm)
                })
                .collect(),
            events: plan
                .groups
                .iter()
                .zip(&total.groups)
                .filter(|(info, _)| info.is_events())
                .map(|(info, g)| EventSummary {
                    dest: info.name.clone(),
                    sent: g.events.sent,
                    received: g.events.received,
                    lost: g.events.lost,
                    duplicated: g.events.duplicated,
                    out_of_order: g.events.out_of_order,
                    sent_rate: round2(g.events.sent as f64 / secs),
                    received_rate: round2(g.events.received as f64 / secs),
                    lag_max: g.events.lag_max,
                    latency_ms: LatencyMs::from_micros(&g.latency),
                })
                .collect(),
            thresholds,
            phases: plan
                .phases
                .iter()
                .zip(&total.phases)
                .enumerate()
                .map(|(i, (p, s))| (i, p, s, total.phase_requests(i, &plan.groups)))
                .map(|(i, p, s, reqs)| PhaseSummary {
                    name: p.name.clone(),
                    scenario: (!plan.scenarios.is_empty())
                        .then(|| plan.scenarios[plan.scenario_of_phase(i)].name.clone()),
                    model: match p.pacing {
                        Pacing::Open { .. } => "open",
                        Pacing::Closed { .. } => "closed",
                    },
                    iterations: s.iterations,
                    dropped: s.dropped,
                    late: s.late,
                    interrupted: s.interrupted,
                    duration_s: result
                        .phase_elapsed
                        .get(i)
                        .map_or(0.0, |d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
                    requests: reqs.requests,
                    failed: reqs.failed,
                    rate: round2(
                        reqs.requests as f64
                            / result
                                .phase_elapsed
                                .get(i)
                                .map_or(secs, std::time::Duration::as_secs_f64)
                                .max(1e-9),
                    ),
                    latency_ms: LatencyMs::from_micros(&reqs.latency),
                    cache: CacheSummary::of(&total.caches(Some(i)), None, plan.cache_warm_at),
                })
                .collect(),
            scenarios: scenario_summaries(plan, result),
            latency_distribution: distribution(&all.latency),
            cache: CacheSummary::of(
                &total.caches(None),
                total.cache_warm.all,
                plan.cache_warm_at,
            ),
            monitors: total
                .monitors
                .iter()
                .map(|(k, m)| {
                    let r = |v: f64| (v * 1000.0).round() / 1000.0;
                    (
                        k.clone(),
                        MonitorSummary {
                            min: r(m.min),
                            mean: r(m.mean()),
                            max: r(m.max),
                            first: r(m.first),
                            last: r(m.last),
                        },
                    )
                })
                .collect(),
            notes,
        }
    }
}

/// Each named scenario's figures: the sums of its phases'.
fn scenario_summaries(plan: &Plan, result: &RunResult) -> Vec<ScenarioSummary> {
    let total = &result.total;
    plan.scenarios
        .iter()
        .map(|sc| {
            let mut reqs = crate::metrics::GroupStats::new(&total.shape());
            let (mut iterations, mut dropped) = (0, 0);
            let mut took = std::time::Duration::ZERO;
            for i in sc.phases.clone() {
                reqs.merge(&total.phase_requests(i, &plan.groups));
                if let Some(p) = total.phases.get(i) {
                    iterations += p.iterations;
                    dropped += p.dropped;
                }
                took += result.phase_elapsed.get(i).copied().unwrap_or_default();
            }
            let secs = took.as_secs_f64();
            ScenarioSummary {
                name: sc.name.clone(),
                requests: reqs.requests,
                failed: reqs.failed,
                rate: round2(reqs.requests as f64 / secs.max(1e-9)),
                latency_ms: LatencyMs::from_micros(&reqs.latency),
                iterations,
                dropped,
                duration_s: (secs * 1000.0).round() / 1000.0,
            }
        })
        .collect()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
