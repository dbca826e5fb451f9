//! One point of the run's time series per tick: the load (rate, latency
//! percentiles, errors, VUs, schedule lag) per metric group and in total, and the
//! monitors' values, all on the same clock. Streamed outputs write these points;
//! the HTML report draws them.

use std::collections::BTreeMap;

use loadline_core::cache::CacheCounts;
use loadline_core::metrics::GroupStats;
use loadline_core::runner::Tick;
use serde::Serialize;

/// Latency percentiles of one interval, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    fn of(g: &GroupStats) -> Option<Self> {
        if g.latency.is_empty() {
            return None;
        }
        let q = |p: f64| round3(g.latency.value_at_quantile(p) as f64 / 1000.0);
        Some(Self {
            p50: q(0.50),
            p95: q(0.95),
            p99: q(0.99),
        })
    }
}

/// One metric group's figures over one interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPoint {
    pub requests: u64,
    pub failed: u64,
    /// Requests per second over the interval.
    pub rate: f64,
    /// `None` when the group sent nothing in the interval.
    pub latency_ms: Option<Percentiles>,
    /// How caches answered in the interval, when the group met one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePoint>,
}

/// An event destination over one interval (see `loadline_core::events`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EventPoint {
    pub sent: u64,
    pub received: u64,
    /// Sent and received per second over the interval.
    pub sent_rate: f64,
    pub received_rate: f64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Counted once, after the load's grace period.
    pub lost: u64,
    /// Send to receipt, of the messages with an envelope (`None`: none).
    pub latency_ms: Option<Percentiles>,
}

/// Cache outcomes over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CachePoint {
    pub hit: u64,
    pub miss: u64,
    pub stale: u64,
    pub bypass: u64,
    pub unknown: u64,
    /// Hits over lookups in the interval (`None` without lookups).
    pub hit_ratio: Option<f64>,
}

impl CachePoint {
    fn of(c: &CacheCounts) -> Option<Self> {
        c.seen().then(|| Self {
            hit: c.hit(),
            miss: c.miss(),
            stale: c.stale(),
            bypass: c.bypass(),
            unknown: c.unknown(),
            hit_ratio: c.hit_ratio().map(|r| (r * 10_000.0).round() / 10_000.0),
        })
    }
}

/// The run's figures over one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Seconds since the start, at the end of the interval.
    pub t: f64,
    /// The phase running.
    pub phase: String,
    pub vus: i64,
    pub requests: u64,
    pub failed: u64,
    /// Requests per second.
    pub rate: f64,
    pub latency_ms: Option<Percentiles>,
    /// How caches answered over every request group, when one met a cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePoint>,
    /// Error kind → count, for the interval.
    pub errors: BTreeMap<String, u64>,
    pub iterations: u64,
    pub dropped: u64,
    /// Open-model schedule lag p99, ms (absent when nothing was scheduled).
    pub schedule_lag_p99_ms: Option<f64>,
    /// Metric group → its figures (event destinations apart).
    pub groups: BTreeMap<String, GroupPoint>,
    /// Event destination → its figures, when the scenario has consumers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, EventPoint>,
    /// Monitor series → value.
    pub monitors: BTreeMap<String, f64>,
    /// The run's tags (`--tag`), on every point; left out when none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl SeriesPoint {
    /// The point of one tick.
    pub fn from_tick(tick: &Tick<'_>) -> Self {
        let plan = tick.plan;
        let secs = tick.interval_len.as_secs_f64().max(1e-9);
        let all = tick.interval.all_requests(&plan.groups);
        let mut errors = BTreeMap::new();
        for (kind, n) in all.error_counts() {
            errors.insert(plan.error_class_name(kind).to_string(), n);
        }
        let events = plan
            .groups
            .iter()
            .zip(&tick.interval.groups)
            .filter(|(info, _)| info.is_events())
            .map(|(info, g)| {
                let e = &g.events;
                (
                    info.name.clone(),
                    EventPoint {
                        sent: e.sent,
                        received: e.received,
                        sent_rate: round3(e.sent as f64 / secs),
                        received_rate: round3(e.received as f64 / secs),
                        duplicated: e.duplicated,
                        out_of_order: e.out_of_order,
                        lost: e.lost,
                        latency_ms: Percentiles::of(g),
                    },
                )
            })
            .collect();
        let groups = plan
            .groups
            .iter()
            .zip(&tick.interval.groups)
            .filter(|(info, _)| !info.is_events())
            .map(|(info, g)| {
                (
                    info.name.clone(),
                    GroupPoint {
                        requests: g.requests,
                        failed: g.failed,
                        rate: round3(g.requests as f64 / secs),
                        latency_ms: Percentiles::of(g),
                        cache: CachePoint::of(&g.cache),
                    },
                )
            })
            .collect();
        let lag = &tick.interval.schedule_lag;
        Self {
            t: round3(tick.elapsed.as_secs_f64()),
            phase: plan.phase_label(tick.phase),
            vus: tick.active_vus,
            requests: all.requests,
            failed: all.failed,
            rate: round3(all.requests as f64 / secs),
            latency_ms: Percentiles::of(&all),
            cache: CachePoint::of(&tick.interval.caches(None)),
            errors,
            iterations: tick.interval.iterations(),
            dropped: tick.interval.dropped(),
            schedule_lag_p99_ms: (!lag.is_empty())
                .then(|| round3(lag.value_at_quantile(0.99) as f64 / 1000.0)),
            groups,
            events,
            monitors: tick
                .monitors
                .iter()
                .map(|m| (m.series.clone(), m.value))
                .collect(),
            tags: BTreeMap::new(),
        }
    }

    /// The point as flat `(series, value)` pairs, for the CSV output and the
    /// Prometheus exporter: `requests`, `latency_p95_ms`, `group.requests{step=…}`,
    /// `errors{kind=timeout}`, the monitors' own keys, …
    pub fn flat(&self) -> Vec<(String, f64)> {
        let mut out = vec![
            ("vus".to_string(), self.vus as f64),
            ("requests".to_string(), self.requests as f64),
            ("failed".to_string(), self.failed as f64),
            ("rate".to_string(), self.rate),
            ("iterations".to_string(), self.iterations as f64),
            ("dropped".to_string(), self.dropped as f64),
        ];
        if let Some(l) = self.latency_ms {
            out.push(("latency_p50_ms".into(), l.p50));
            out.push(("latency_p95_ms".into(), l.p95));
            out.push(("latency_p99_ms".into(), l.p99));
        }
        if let Some(lag) = self.schedule_lag_p99_ms {
            out.push(("schedule_lag_p99_ms".into(), lag));
        }
        for (kind, n) in &self.errors {
            out.push((format!("errors{{kind={kind}}}"), *n as f64));
        }
        if let Some(r) = self.cache.and_then(|c| c.hit_ratio) {
            out.push(("cache_hit_ratio".into(), r));
        }
        for (name, g) in &self.groups {
            let label = label_value(name);
            out.push((format!("group.requests{{step={label}}}"), g.requests as f64));
            out.push((format!("group.failed{{step={label}}}"), g.failed as f64));
            if let Some(l) = g.latency_ms {
                out.push((format!("group.latency_p95_ms{{step={label}}}"), l.p95));
                out.push((format!("group.latency_p99_ms{{step={label}}}"), l.p99));
            }
            if let Some(c) = g.cache {
                for (outcome, n) in [("hit", c.hit), ("miss", c.miss), ("stale", c.stale)] {
                    out.push((
                        format!("group.cache{{step={label},outcome={outcome}}}"),
                        n as f64,
                    ));
                }
                if let Some(r) = c.hit_ratio {
                    out.push((format!("group.cache_hit_ratio{{step={label}}}"), r));
                }
            }
        }
        for (dest, e) in &self.events {
            let label = label_value(dest);
            out.push((format!("events.sent{{dest={label}}}"), e.sent as f64));
            out.push((
                format!("events.received{{dest={label}}}"),
                e.received as f64,
            ));
            out.push((
                format!("events.duplicated{{dest={label}}}"),
                e.duplicated as f64,
            ));
            out.push((
                format!("events.out_of_order{{dest={label}}}"),
                e.out_of_order as f64,
            ));
            out.push((format!("events.lost{{dest={label}}}"), e.lost as f64));
            if let Some(l) = e.latency_ms {
                out.push((format!("events.latency_p95_ms{{dest={label}}}"), l.p95));
                out.push((format!("events.latency_p99_ms{{dest={label}}}"), l.p99));
            }
        }
        for (k, v) in &self.monitors {
            out.push((k.clone(), *v));
        }
        out
    }
}

/// A label value safe inside `{k=v}`: commas, braces and equals signs replaced.
fn label_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, ',' | '{' | '}' | '=') {
                '_'
            } else {
                c
            }
        })
        .collect()
}
