//! SLA thresholds: `p95 < 300ms` on `latency`, `rate < 1%` on `errors`,
//! `rate > 10/s` on `iterations`. Parsed at load time, judged on merged figures
//! (live each second for abort-on-fail ones, and at the end for all).

use std::time::Duration;

use crate::duration::parse_duration;
use crate::metrics::{GroupId, GroupStats, Stats};
use crate::monitor::SeriesStats;
use crate::plan::GroupInfo;

/// The metrics thresholds can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricName {
    /// Request latency (a trend, in ms).
    Latency,
    /// Failed requests (a rate: failed / requests).
    Errors,
    /// Checks (a rate: passed / checks).
    Checks,
    /// Requests (a counter).
    Requests,
    /// Completed iterations (a counter).
    Iterations,
    /// Open-model arrivals dropped at `max_vus` (a counter).
    DroppedIterations,
    /// Open-model schedule lag (a trend, in ms).
    ScheduleLag,
    /// Whole-iteration duration (a trend, in ms).
    IterationDuration,
    /// Cache hits over lookups (a rate: hits / (hits + misses + stale)).
    CacheHitRatio,
    /// Latency of cache hits (a trend, in ms).
    CacheHitLatency,
    /// Latency of cache misses (a trend, in ms).
    CacheMissLatency,
    /// End-to-end latency of received events (a trend, in ms); `{dest:NAME}`
    /// narrows it to one destination.
    EventsLatency,
    /// Events sent towards the destinations (a counter).
    EventsSent,
    /// Events received, duplicates included (a counter).
    EventsReceived,
    /// Events sent and never received (a counter).
    EventsLost,
    /// Events received more than once (a counter).
    EventsDuplicated,
    /// Events received after a later one of their producer (a counter).
    EventsOutOfOrder,
    /// The highest consumer lag a broker reported for a destination (a gauge:
    /// `max`), e.g. the messages still pending for a consumer.
    EventsLag,
    /// A monitor series of the system under test (a value a tick), named by the
    /// threshold's key: `process.cpu_percent{name=nginx}`.
    Monitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricType {
    Trend,
    Rate,
    Counter,
    Gauge,
}

impl MetricName {
    pub const NAMES: [&'static str; 18] = [
        "latency",
        "errors",
        "checks",
        "requests",
        "iterations",
        "dropped_iterations",
        "schedule_lag",
        "iteration_duration",
        "cache_hit_ratio",
        "cache_hit_latency",
        "cache_miss_latency",
        "events_latency",
        "events_sent",
        "events_received",
        "events_lost",
        "events_duplicated",
        "events_out_of_order",
        "events_lag",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "latency" => Self::Latency,
            "errors" => Self::Errors,
            "checks" => Self::Checks,
            "requests" => Self::Requests,
            "iterations" => Self::Iterations,
            "dropped_iterations" => Self::DroppedIterations,
            "schedule_lag" => Self::ScheduleLag,
            "iteration_duration" => Self::IterationDuration,
            "cache_hit_ratio" => Self::CacheHitRatio,
            "cache_hit_latency" => Self::CacheHitLatency,
            "cache_miss_latency" => Self::CacheMissLatency,
            "events_latency" => Self::EventsLatency,
            "events_sent" => Self::EventsSent,
            "events_received" => Self::EventsReceived,
            "events_lost" => Self::EventsLost,
            "events_duplicated" => Self::EventsDuplicated,
            "events_out_of_order" => Self::EventsOutOfOrder,
            "events_lag" => Self::EventsLag,
            _ => return None,
        })
    }

    fn kind(self) -> MetricType {
        match self {
            Self::Latency
            | Self::ScheduleLag
            | Self::IterationDuration
            | Self::CacheHitLatency
            | Self::CacheMissLatency
            | Self::EventsLatency => MetricType::Trend,
            Self::Errors | Self::Checks | Self::CacheHitRatio => MetricType::Rate,
            Self::Requests
            | Self::Iterations
            | Self::DroppedIterations
            | Self::EventsSent
            | Self::EventsReceived
            | Self::EventsLost
            | Self::EventsDuplicated
            | Self::EventsOutOfOrder => MetricType::Counter,
            Self::Monitor | Self::EventsLag => MetricType::Gauge,
        }
    }

    /// Whether `{phase:NAME}` may narrow this metric (besides the per-group
    /// ones): the phase's iterations and drops.
    pub fn per_phase(self) -> bool {
        matches!(self, Self::Iterations | Self::DroppedIterations)
    }

    /// Whether this is an event destination's metric, which `{dest:NAME}`
    /// narrows to one destination (and which, without it, adds every
    /// destination up).
    pub fn per_dest(self) -> bool {
        matches!(
            self,
            Self::EventsLatency
                | Self::EventsSent
                | Self::EventsReceived
                | Self::EventsLost
                | Self::EventsDuplicated
                | Self::EventsOutOfOrder
                | Self::EventsLag
        )
    }

    /// Whether `{step:NAME}` may narrow this metric to one group.
    pub fn per_group(self) -> bool {
        matches!(
            self,
            Self::Latency
                | Self::Errors
                | Self::Checks
                | Self::Requests
                | Self::CacheHitRatio
                | Self::CacheHitLatency
                | Self::CacheMissLatency
        )
    }
}

/// What a threshold's key narrows its metric to: `{step:NAME}`, `{phase:NAME}`,
/// `{scenario:NAME}` or several (`{scenario:buy, phase:spike, step:checkout}`);
/// an event metric's `{dest:NAME}`, an event destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub step: Option<String>,
    pub phase: Option<String>,
    pub scenario: Option<String>,
    pub dest: Option<String>,
}

/// Splits `latency{step:product detail}` into `latency` and its selector.
pub fn parse_selector(key: &str) -> Result<(MetricName, Selector), String> {
    let mut sel = Selector::default();
    // A dotted name is a monitor series, its labels as the monitors write them.
    let name_part = key.split('{').next().unwrap_or(key);
    if name_part.contains('.') {
        return Ok((MetricName::Monitor, sel));
    }
    let name = match key.find('{') {
        Some(open) => {
            let inner = key[open + 1..]
                .strip_suffix('}')
                .ok_or_else(|| format!("`{key}`: expected `}}` at the end"))?;
            for part in inner.split(',') {
                let (k, v) = part.split_once(':').ok_or_else(|| {
                    format!("`{key}`: expected `{{step:NAME}}`, `{{phase:NAME}}`, `{{scenario:NAME}}`, `{{dest:NAME}}` or several, comma-separated")
                })?;
                let v = v.trim().to_string();
                let slot = match k.trim() {
                    "step" => &mut sel.step,
                    "phase" => &mut sel.phase,
                    "scenario" => &mut sel.scenario,
                    "dest" => &mut sel.dest,
                    other => {
                        return Err(format!(
                            "`{key}`: the tags are `step`, `phase`, `scenario` and `dest`, found `{other}`"
                        ))
                    }
                };
                if slot.replace(v).is_some() {
                    return Err(format!("`{key}`: `{}` is given twice", k.trim()));
                }
            }
            key[..open].trim()
        }
        None => key.trim(),
    };
    let metric = MetricName::parse(name).ok_or_else(|| {
        format!(
            "unknown metric `{name}`: expected one of {}",
            MetricName::NAMES.join(", ")
        )
    })?;
    if sel.dest.is_some() && !metric.per_dest() {
        return Err(format!(
            "`{name}` is not an event metric; `{{dest:…}}` is for events_latency, events_sent, events_received, events_lost, events_duplicated and events_out_of_order"
        ));
    }
    if sel.step.is_some() && metric.per_dest() {
        return Err(format!(
            "`{name}` is counted per destination: write `{{dest:NAME}}`, not `{{step:…}}`"
        ));
    }
    if sel.step.is_some() && !metric.per_group() {
        return Err(format!(
            "`{name}` has no per-step figures; drop the `{{step:…}}`"
        ));
    }
    if sel.phase.is_some() && !metric.per_group() && !metric.per_phase() && !metric.per_dest() {
        return Err(format!(
            "`{name}` has no per-phase figures; drop the `{{phase:…}}`"
        ));
    }
    if sel.scenario.is_some() && !metric.per_group() && !metric.per_phase() {
        return Err(format!(
            "`{name}` has no per-scenario figures; drop the `{{scenario:…}}`"
        ));
    }
    Ok((metric, sel))
}

/// The statistic a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Percentile(f64),
    Mean,
    Min,
    Max,
    Count,
    Rate,
    /// A monitor series' first and last value, and the difference.
    First,
    Last,
    Growth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// The unit a threshold's value is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Fraction,
    PerSecond,
    Count,
    /// A monitor series' own unit (bytes, percent, …).
    Value,
}

/// A parsed condition such as `p95 < 300ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub stat: Stat,
    pub op: Op,
    /// The bound, in `unit`.
    pub bound: f64,
    pub unit: Unit,
}

/// Parses `expr` for `metric`, checking that the statistic and unit fit it.
pub fn parse_condition(metric: MetricName, expr: &str) -> Result<Condition, String> {
    let e = expr.trim();
    let op_pos = e
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| format!("`{e}`: expected a comparison such as `p95 < 300ms`"))?;
    let stat_s = e[..op_pos].trim();
    let rest = &e[op_pos..];
    let (op, value_s) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .iter()
    .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
    .ok_or_else(|| format!("`{e}`: expected one of <, <=, >, >=, ==, !="))?;
    if value_s.is_empty() {
        return Err(format!("`{e}`: expected a value after the comparison"));
    }
    let stat = parse_stat(stat_s).ok_or_else(|| {
        format!("`{e}`: unknown statistic `{stat_s}`: expected p50..p99.99, avg, min, max, med, rate or count")
    })?;
    let kind = metric.kind();
    if kind != MetricType::Gauge && matches!(stat, Stat::First | Stat::Last | Stat::Growth) {
        return Err(format!(
            "`{e}`: `{stat_s}` is for monitor series (e.g. `process.rss_bytes{{name=shop}}`)"
        ));
    }
    let (bound, unit) = match (kind, stat) {
        (
            MetricType::Gauge,
            Stat::Min | Stat::Max | Stat::Mean | Stat::First | Stat::Last | Stat::Growth,
        ) => (
            parse_quantity(value_s).map_err(|m| format!("`{e}`: {m}"))?,
            Unit::Value,
        ),
        (MetricType::Gauge, _) => {
            return Err(format!(
                "`{e}`: a monitor series takes min, max, avg, first, last or growth"
            ))
        }
        (MetricType::Trend, Stat::Count | Stat::Rate) => {
            return Err(format!("`{e}`: a latency takes p95, avg, min, max or med"))
        }
        (MetricType::Trend, _) => (
            parse_millis(value_s).map_err(|m| format!("`{e}`: {m}"))?,
            Unit::Millis,
        ),
        (MetricType::Rate, Stat::Rate) => (
            parse_fraction(value_s).map_err(|m| format!("`{e}`: {m}"))?,
            Unit::Fraction,
        ),
        (MetricType::Counter, Stat::Rate) => {
            let v = value_s.strip_suffix("/s").unwrap_or(value_s).trim();
            (
                parse_number(v).map_err(|m| format!("`{e}`: {m}"))?,
                Unit::PerSecond,
            )
        }
        (MetricType::Rate | MetricType::Counter, Stat::Count) => (
            parse_number(value_s).map_err(|m| format!("`{e}`: {m}"))?,
            Unit::Count,
        ),
        (_, _) => return Err(format!("`{e}`: this metric takes `rate` or `count`")),
    };
    Ok(Condition {
        stat,
        op,
        bound,
        unit,
    })
}

fn parse_stat(s: &str) -> Option<Stat> {
    Some(match s {
        "avg" | "mean" => Stat::Mean,
        "min" => Stat::Min,
        "max" => Stat::Max,
        "med" | "median" => Stat::Percentile(50.0),
        "count" => Stat::Count,
        "rate" => Stat::Rate,
        "first" => Stat::First,
        "last" => Stat::Last,
        "growth" => Stat::Growth,
        _ => {
            let p = s
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .or_else(|| s.strip_prefix('p'))?;
            let p: f64 = p.parse().ok()?;
            if !(0.0..=100.0).contains(&p) {
                return None;
            }
            Stat::Percentile(p)
        }
    })
}

fn parse_number(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a non-negative number")),
    }
}

/// A number with an optional unit: `80`, `80%`, `512MB`, `1.5GiB`, `-10`.
fn parse_quantity(s: &str) -> Result<f64, String> {
    const UNITS: [(&str, f64); 8] = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("kB", 1e3),
        ("KB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
        ("%", 1.0),
    ];
    let (num, factor) = UNITS
        .iter()
        .find_map(|(u, f)| s.strip_suffix(u).map(|n| (n.trim(), *f)))
        .unwrap_or((s, 1.0));
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v * factor),
        _ => Err(format!(
            "`{s}` is not a number (with an optional unit: %, kB, MB, GB, KiB, MiB, GiB)"
        )),
    }
}

fn parse_millis(s: &str) -> Result<f64, String> {
    if s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        parse_duration(s).map(|d| d.as_secs_f64() * 1000.0)
    } else {
        parse_number(s)
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.strip_suffix('%') {
        Some(p) => parse_number(p.trim())? / 100.0,
        None => parse_number(s)?,
    };
    if v > 1.0 {
        return Err(format!("`{s}` is more than 100%"));
    }
    Ok(v)
}

/// A threshold as the plan holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The key as written, e.g. `latency{step:product detail}`.
    pub metric_key: String,
    pub metric: MetricName,
    pub group: Option<GroupId>,
    /// The phase it is judged on (by index in the plan's phases); `None`: the
    /// whole run (or its scenario).
    pub phase: Option<usize>,
    /// The scenario it is judged on, when `{scenario:NAME}` selects one
    /// (with a `phase`, that phase of the scenario).
    pub scenario: Option<ScenarioScope>,
    /// The expression as written.
    pub expr: String,
    pub condition: Condition,
    pub abort_on_fail: bool,
    /// How long after the start an abort-on-fail threshold begins to be judged.
    pub delay: Duration,
}

/// The scenario a threshold's `{scenario:NAME}` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioScope {
    pub name: String,
    /// Its phases, as indices into the plan's.
    pub phases: std::ops::Range<usize>,
}

/// A threshold's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The measured value in the condition's unit; `None` when there were no samples.
    pub value: Option<f64>,
    pub passed: bool,
}

impl Threshold {
    /// Judges the threshold on `stats`, gathered over `elapsed` (each phase
    /// over its `phase_elapsed`, a scenario over the sum of its phases'; when
    /// that is not known, the run's).
    pub fn evaluate(
        &self,
        stats: &Stats,
        elapsed: Duration,
        phase_elapsed: &[Duration],
        groups: &[GroupInfo],
    ) -> Verdict {
        let own = match (self.phase, &self.scenario) {
            (Some(p), _) => phase_elapsed.get(p).copied(),
            (None, Some(s)) => phase_elapsed
                .get(s.phases.clone())
                .map(|d| d.iter().sum::<Duration>()),
            (None, None) => None,
        };
        let elapsed = match own {
            Some(d) if !d.is_zero() => d,
            _ => elapsed,
        };
        let value = self.measure(stats, elapsed, groups);
        Verdict {
            value,
            passed: value.is_some_and(|v| self.condition.op.holds(v, self.condition.bound)),
        }
    }

    fn measure(&self, stats: &Stats, elapsed: Duration, groups: &[GroupInfo]) -> Option<f64> {
        if self.metric == MetricName::Monitor {
            // Several matching series (a server's worker processes): each must
            // pass, so the one furthest on the wrong side is the value.
            let values = monitor_series(stats, &self.metric_key)
                .into_iter()
                .filter_map(|series| match self.condition.stat {
                    Stat::Min => Some(series.min),
                    Stat::Max => Some(series.max),
                    Stat::Mean => Some(series.mean()),
                    Stat::First => Some(series.first),
                    Stat::Last => Some(series.last),
                    Stat::Growth => Some(series.growth()),
                    Stat::Percentile(_) | Stat::Count | Stat::Rate => None,
                });
            let c = &self.condition;
            return match c.op {
                Op::Lt | Op::Le => values.reduce(f64::max),
                Op::Gt | Op::Ge => values.reduce(f64::min),
                Op::Eq | Op::Ne => {
                    let all: Vec<f64> = values.collect();
                    all.iter()
                        .copied()
                        .find(|v| !c.op.holds(*v, c.bound))
                        .or_else(|| all.first().copied())
                }
            };
        }
        let merged;
        // A scenario without a phase: the sum of its phases.
        let span = match (self.phase, &self.scenario) {
            (None, Some(s)) => Some(s.phases.clone()),
            _ => None,
        };
        let group: &GroupStats = match (self.phase, self.group) {
            (None, g) if span.is_some() => {
                let mut sum = GroupStats::new(&stats.shape());
                for p in span.clone().unwrap_or_default() {
                    match g {
                        Some(g) => {
                            if let Some(x) = stats.in_phase(p, g) {
                                sum.merge(x);
                            }
                        }
                        None => sum.merge(&stats.phase_requests(p, groups)),
                    }
                }
                merged = sum;
                &merged
            }
            (None, Some(g)) => stats.groups.get(g)?,
            (phase, None) if self.metric.per_dest() => {
                merged = stats.all_events(phase, groups);
                &merged
            }
            (None, None) => {
                merged = stats.all_requests(groups);
                &merged
            }
            (Some(p), Some(g)) => match stats.in_phase(p, g) {
                Some(g) => g,
                None => {
                    merged = GroupStats::new(&stats.shape());
                    &merged
                }
            },
            (Some(p), None) => {
                merged = stats.phase_requests(p, groups);
                &merged
            }
        };
        // Without a step, the caches of every group that met one (outcome
        // groups too: a cache-aside lookup is one).
        let all_caches;
        let cache_metric = matches!(
            self.metric,
            MetricName::CacheHitRatio | MetricName::CacheHitLatency | MetricName::CacheMissLatency
        );
        let cache = match self.group {
            None if cache_metric => {
                all_caches = match &span {
                    Some(phases) => {
                        let mut sum = crate::cache::CacheCounts::default();
                        for p in phases.clone() {
                            sum.merge(&stats.caches(Some(p)));
                        }
                        sum
                    }
                    None => stats.caches(self.phase),
                };
                &all_caches
            }
            _ => &group.cache,
        };
        let phase = self.phase.and_then(|p| stats.phases.get(p));
        let (iterations, dropped) = match (phase, &span) {
            (Some(p), _) => (p.iterations, p.dropped),
            (None, Some(r)) => stats
                .phases
                .get(r.clone())
                .unwrap_or_default()
                .iter()
                .fold((0, 0), |(i, d), p| (i + p.iterations, d + p.dropped)),
            (None, None) => (stats.iterations(), stats.dropped()),
        };
        let secs = elapsed.as_secs_f64().max(1e-9);
        let trend = |h: &hdrhistogram::Histogram<u64>| -> Option<f64> {
            if h.is_empty() {
                return None;
            }
            let micros = match self.condition.stat {
                Stat::Percentile(p) => h.value_at_quantile(p / 100.0) as f64,
                Stat::Mean => h.mean(),
                Stat::Min => h.min() as f64,
                Stat::Max => h.max() as f64,
                Stat::Count | Stat::Rate | Stat::First | Stat::Last | Stat::Growth => return None,
            };
            Some(micros / 1000.0)
        };
        let counter = |n: u64| -> Option<f64> {
            Some(match self.condition.stat {
                Stat::Rate => n as f64 / secs,
                _ => n as f64,
            })
        };
        match self.metric {
            MetricName::Latency => trend(&group.latency),
            MetricName::ScheduleLag => trend(&stats.schedule_lag),
            MetricName::IterationDuration => trend(&stats.iteration_duration),
            MetricName::Errors => match self.condition.stat {
                Stat::Count => Some(group.failed as f64),
                _ => (group.requests > 0).then(|| group.failed as f64 / group.requests as f64),
            },
            MetricName::Checks => {
                let total = group.checks_passed + group.checks_failed;
                match self.condition.stat {
                    Stat::Count => Some(group.checks_passed as f64),
                    _ => (total > 0).then(|| group.checks_passed as f64 / total as f64),
                }
            }
            MetricName::CacheHitRatio => match self.condition.stat {
                Stat::Count => Some(cache.hit() as f64),
                _ => cache.hit_ratio(),
            },
            MetricName::CacheHitLatency => cache.split.as_ref().and_then(|s| trend(&s.hit)),
            MetricName::CacheMissLatency => cache.split.as_ref().and_then(|s| trend(&s.miss)),
            MetricName::Requests => counter(group.requests),
            MetricName::EventsLatency => trend(&group.latency),
            MetricName::EventsSent => counter(group.events.sent),
            MetricName::EventsReceived => counter(group.events.received),
            MetricName::EventsLost => counter(group.events.lost),
            MetricName::EventsDuplicated => counter(group.events.duplicated),
            MetricName::EventsOutOfOrder => counter(group.events.out_of_order),
            // Only the highest lag is kept: `max` is the statistic it answers.
            MetricName::EventsLag => match self.condition.stat {
                Stat::Max => group.events.lag_max.map(|l| l as f64),
                _ => None,
            },
            MetricName::Iterations => counter(iterations),
            MetricName::DroppedIterations => counter(dropped),
            MetricName::Monitor => None,
        }
    }
}

/// The monitor series a threshold's key names: the series of that name whose
/// labels include every label the key gives (`process.cpu_percent{name=nginx}`
/// matches `process.cpu_percent{pid=12,name=nginx}`); a key without labels
/// matches every series of its name.
pub fn monitor_series<'s>(stats: &'s Stats, key: &str) -> Vec<&'s SeriesStats> {
    if let Some(s) = stats.monitors.get(key) {
        return vec![s];
    }
    let (name, labels) = split_series(key);
    stats
        .monitors
        .iter()
        .filter(|(k, _)| {
            let (n, have) = split_series(k);
            n == name && labels.iter().all(|l| have.contains(l))
        })
        .map(|(_, s)| s)
        .collect()
}

/// `name{a=1,b="x,y"}` into `name` and its `a=1`, `b="x,y"` labels.
fn split_series(key: &str) -> (&str, Vec<&str>) {
    let Some(open) = key.find('{') else {
        return (key.trim(), Vec::new());
    };
    let inner = key[open + 1..]
        .strip_suffix('}')
        .unwrap_or(&key[open + 1..]);
    let mut labels = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in inner.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                labels.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    labels.push(inner[start..].trim());
    labels.retain(|l| !l.is_empty());
    (key[..open].trim(), labels)
}

/// Formats a value in a condition's unit for people: `312ms`, `0.42%`, `12.5/s`.
pub fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Millis => {
            if v >= 1000.0 {
                format!("{:.2}s", v / 1000.0)
            } else {
                format!("{v:.2}ms")
            }
        }
        Unit::Fraction => format!("{:.2}%", v * 100.0),
        Unit::PerSecond => format!("{v:.2}/s"),
        Unit::Count => format!("{v}"),
        Unit::Value => format_quantity(v),
    }
}

/// A monitor value for people: `37.50`, `1.2e6` as `1.20M`.
pub fn format_quantity(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.2}", v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricsHub, RequestSample};

    #[test]
    fn parses_the_documented_forms() {
        let c = parse_condition(MetricName::Latency, "p95 < 300ms").unwrap();
        assert_eq!(
            (c.stat, c.op, c.bound),
            (Stat::Percentile(95.0), Op::Lt, 300.0)
        );
        let c = parse_condition(MetricName::Latency, "p(99.9) <= 1s").unwrap();
        assert_eq!((c.stat, c.bound), (Stat::Percentile(99.9), 1000.0));
        let c = parse_condition(MetricName::Errors, "rate < 1%").unwrap();
        assert!((c.bound - 0.01).abs() < 1e-12);
        let c = parse_condition(MetricName::Checks, "rate > 99%").unwrap();
        assert_eq!(c.op, Op::Gt);
        let c = parse_condition(MetricName::Iterations, "rate > 10/s").unwrap();
        assert_eq!((c.bound, c.unit), (10.0, Unit::PerSecond));
        assert!(parse_condition(MetricName::Latency, "rate < 1%").is_err());
        assert!(parse_condition(MetricName::Errors, "p95 < 1s").is_err());
        assert!(parse_condition(MetricName::Latency, "p95 300ms").is_err());
        assert!(parse_condition(MetricName::Latency, "p95 < 10x").is_err());
        assert!(parse_condition(MetricName::Errors, "rate < 120%").is_err());
        assert!(parse_condition(MetricName::Errors, "rate < -1").is_err());
        assert!(parse_condition(MetricName::Latency, "p101 < 1s").is_err());
    }

    #[test]
    fn monitor_keys_match_series_by_name_and_a_subset_of_labels() {
        let mut st = Stats::new(&crate::metrics::Shape::new(0, 1));
        let v = |series: &str, value: f64| crate::monitor::MonitorValue {
            series: series.into(),
            value,
        };
        st.add_monitor_values(&[
            v("process.cpu_percent{pid=1,name=nginx}", 10.0),
            v("process.cpu_percent{pid=2,name=nginx}", 90.0),
            v("process.cpu_percent{pid=3,name=shop}", 5.0),
            v("prom.queue{route=\"/a,b\"}", 3.0),
        ]);
        let n = |key: &str| monitor_series(&st, key).len();
        assert_eq!(n("process.cpu_percent{name=nginx}"), 2);
        assert_eq!(n("process.cpu_percent{pid=3}"), 1);
        assert_eq!(n("process.cpu_percent"), 3);
        assert_eq!(n("process.cpu_percent{name=redis}"), 0);
        assert_eq!(n("prom.queue{route=\"/a,b\"}"), 1);
        assert_eq!(n("process.rss_bytes"), 0);
        let mk = |key: &str, expr: &str| Threshold {
            metric_key: key.into(),
            metric: MetricName::Monitor,
            group: None,
            phase: None,
            scenario: None,
            expr: expr.into(),
            condition: parse_condition(MetricName::Monitor, expr).unwrap(),
            abort_on_fail: false,
            delay: Duration::ZERO,
        };
        let judge = |t: Threshold| t.evaluate(&st, Duration::from_secs(1), &[], &[]);
        // Every matching series must pass: the worst one is the value.
        let v = judge(mk("process.cpu_percent{name=nginx}", "max < 80"));
        assert_eq!((v.value, v.passed), (Some(90.0), false));
        let v = judge(mk("process.cpu_percent{name=nginx}", "min > 5"));
        assert_eq!((v.value, v.passed), (Some(10.0), true));
        assert!(judge(mk("process.cpu_percent{name=shop}", "last <= 5%")).passed);
        let v = judge(mk("process.cpu_percent{name=redis}", "max < 80"));
        assert_eq!((v.value, v.passed), (None, false));
        assert_eq!(
            parse_condition(MetricName::Monitor, "growth < 1.5MiB")
                .unwrap()
                .bound,
            1.5 * 1024.0 * 1024.0
        );
        assert!(parse_condition(MetricName::Monitor, "p95 < 3").is_err());
        assert!(parse_condition(MetricName::Latency, "growth < 3").is_err());
        assert_eq!(
            parse_selector("host.load{x=1}").unwrap().0,
            MetricName::Monitor
        );
    }

    #[test]
    fn selectors() {
        let step = |s: &str| Selector {
            step: Some(s.into()),
            ..Selector::default()
        };
        assert_eq!(
            parse_selector("latency{step:product detail}").unwrap(),
            (MetricName::Latency, step("product detail"))
        );
        assert_eq!(
            parse_selector("errors{phase: spike , step:buy}").unwrap(),
            (
                MetricName::Errors,
                Selector {
                    step: Some("buy".into()),
                    phase: Some("spike".into()),
                    scenario: None,
                    dest: None,
                }
            )
        );
        assert_eq!(
            parse_selector("latency{scenario:buy, phase:spike}").unwrap(),
            (
                MetricName::Latency,
                Selector {
                    step: None,
                    phase: Some("spike".into()),
                    scenario: Some("buy".into()),
                    dest: None,
                }
            )
        );
        assert!(parse_selector("schedule_lag{scenario:x}").is_err());
        assert!(parse_selector("requests{scenario:a, scenario:b}").is_err());
        assert_eq!(
            parse_selector("iterations{phase:ramp}").unwrap().1.phase,
            Some("ramp".into())
        );
        assert!(parse_selector("latncy").is_err());
        assert!(parse_selector("iterations{step:x}").is_err());
        assert!(parse_selector("schedule_lag{phase:x}").is_err());
        assert!(parse_selector("latency{method:x}").is_err());
        assert!(parse_selector("latency{step:a,step:b}").is_err());
        assert_eq!(
            parse_selector("events_latency{dest:orders.confirmed}").unwrap(),
            (
                MetricName::EventsLatency,
                Selector {
                    dest: Some("orders.confirmed".into()),
                    ..Selector::default()
                }
            )
        );
        assert_eq!(
            parse_selector("events_lost").unwrap().0,
            MetricName::EventsLost
        );
        assert!(parse_selector("events_lost{phase:p, dest:d}").is_ok());
        assert!(parse_selector("latency{dest:x}").is_err());
        assert!(parse_selector("events_lost{step:x}").is_err());
    }

    #[test]
    fn event_metrics_judge_one_destination_or_all() {
        use crate::events::EventCount;
        use crate::plan::{GroupInfo, EVENTS_KIND};
        let info = |name: &str, kind: &str| GroupInfo {
            name: name.into(),
            kind: kind.into(),
        };
        let groups = [
            info("publish", "broker"),
            info("a", EVENTS_KIND),
            info("b", EVENTS_KIND),
        ];
        let hub = MetricsHub::new(crate::metrics::Shape::new(3, 1));
        for ms in 1..=100 {
            hub.record_received(1, Some(Duration::from_millis(ms)), 1);
        }
        hub.record_received(2, Some(Duration::from_millis(500)), 1);
        hub.record_event(1, EventCount::Sent, 102);
        hub.record_event(1, EventCount::Lost, 2);
        hub.record_event(2, EventCount::Duplicated, 1);
        hub.record_event(1, EventCount::Lag, 40);
        hub.record_event(1, EventCount::Lag, 7);
        hub.record_event(2, EventCount::Lag, 12);
        let st = hub.collect();
        let mk = |metric, group: Option<usize>, expr: &str| Threshold {
            metric_key: String::new(),
            metric,
            group,
            phase: None,
            scenario: None,
            expr: expr.into(),
            condition: parse_condition(metric, expr).unwrap(),
            abort_on_fail: false,
            delay: Duration::ZERO,
        };
        let el = Duration::from_secs(2);
        let judge = |t: Threshold| t.evaluate(&st, el, &[], &groups);
        let v = judge(mk(MetricName::EventsLatency, Some(1), "p99 < 200ms"));
        assert!(v.passed, "{v:?}");
        assert!(!judge(mk(MetricName::EventsLatency, None, "max < 200ms")).passed);
        assert_eq!(
            judge(mk(MetricName::EventsLost, Some(1), "count == 0")).value,
            Some(2.0)
        );
        assert_eq!(
            judge(mk(MetricName::EventsReceived, None, "count > 0")).value,
            Some(101.0)
        );
        assert_eq!(
            judge(mk(MetricName::EventsSent, None, "rate > 1/s")).value,
            Some(51.0)
        );
        assert!(judge(mk(MetricName::EventsDuplicated, Some(1), "count == 0")).passed);
        assert!(!judge(mk(MetricName::EventsDuplicated, None, "count == 0")).passed);
        assert!(judge(mk(MetricName::EventsOutOfOrder, None, "count == 0")).passed);
        // The highest lag reported, of one destination or of all.
        let lag = judge(mk(MetricName::EventsLag, Some(2), "max < 20"));
        assert_eq!((lag.value, lag.passed), (Some(12.0), true));
        let lag = judge(mk(MetricName::EventsLag, None, "max < 20"));
        assert_eq!((lag.value, lag.passed), (Some(40.0), false));
        assert!(parse_condition(MetricName::EventsLag, "p99 < 3").is_err());
        // Request totals leave the destinations out.
        assert_eq!(st.all_requests(&groups).requests, 0);
    }

    #[test]
    fn evaluates_on_merged_stats() {
        let hub = MetricsHub::new(crate::metrics::Shape::new(1, 1));
        for i in 1..=100u64 {
            hub.record_request(&RequestSample {
                group: 0,
                status: Some(if i <= 2 { 500 } else { 200 }),
                failed: i <= 2,
                error: None,
                bytes_sent: 0,
                bytes_received: 0,
                // 78 hits of 1-2 ms, 20 misses of 40 ms, and the two failures unknown.
                cache: match i {
                    1..=2 => crate::cache::CacheOutcome::Unknown,
                    3..=22 => crate::cache::CacheOutcome::Miss,
                    _ => crate::cache::CacheOutcome::Hit,
                },
                latency: if (3..=22).contains(&i) {
                    Duration::from_millis(40)
                } else {
                    Duration::from_millis(i.min(2))
                },
            });
        }
        let st = hub.collect();
        let mk = |metric, expr: &str| Threshold {
            metric_key: String::new(),
            metric,
            group: None,
            phase: None,
            scenario: None,
            expr: expr.into(),
            condition: parse_condition(metric, expr).unwrap(),
            abort_on_fail: false,
            delay: Duration::ZERO,
        };
        let el = Duration::from_secs(10);
        let v = mk(MetricName::Latency, "p95 < 41ms").evaluate(&st, el, &[], &[]);
        assert!(v.passed, "{v:?}");
        assert!(
            !mk(MetricName::Latency, "p95 < 39ms")
                .evaluate(&st, el, &[], &[])
                .passed
        );
        let v = mk(MetricName::CacheHitRatio, "rate > 79%").evaluate(&st, el, &[], &[]);
        assert_eq!(
            v.value,
            Some(78.0 / 98.0),
            "78 hits of 98 lookups (unknowns left out)"
        );
        assert!(v.passed);
        assert!(
            !mk(MetricName::CacheHitRatio, "rate > 80%")
                .evaluate(&st, el, &[], &[])
                .passed
        );
        let v = mk(MetricName::CacheHitLatency, "p95 < 3ms").evaluate(&st, el, &[], &[]);
        assert!(v.passed, "{v:?}");
        let v = mk(MetricName::CacheMissLatency, "p50 < 30ms").evaluate(&st, el, &[], &[]);
        assert!(
            !v.passed && v.value.is_some_and(|ms| (ms - 40.0).abs() < 0.1),
            "{v:?}"
        );
        let v = mk(MetricName::Errors, "rate < 1%").evaluate(&st, el, &[], &[]);
        assert_eq!(v.value, Some(0.02));
        assert!(!v.passed);
        assert!(
            mk(MetricName::Requests, "rate >= 10/s")
                .evaluate(&st, el, &[], &[])
                .passed
        );
        let none = mk(MetricName::Checks, "rate > 99%").evaluate(&st, el, &[], &[]);
        assert_eq!(
            none,
            Verdict {
                value: None,
                passed: false
            }
        );
    }

    #[test]
    fn a_scenario_threshold_sums_its_phases_only() {
        // Phases 0 and 1 are scenario `browse`'s, phase 2 `buy`'s; each records
        // into the phase its scenario has running.
        let shape = crate::metrics::Shape {
            scenarios: 2,
            ..crate::metrics::Shape::new(1, 3)
        };
        let hub = MetricsHub::new(shape);
        let request = |failed: bool| RequestSample {
            group: 0,
            status: Some(if failed { 500 } else { 200 }),
            failed,
            error: None,
            bytes_sent: 0,
            bytes_received: 0,
            cache: crate::cache::CacheOutcome::None,
            latency: Duration::from_millis(1),
        };
        let record = |scenario: usize, phase: usize, n: usize, failed: bool| {
            hub.set_phase(scenario, phase);
            crate::metrics::SCENARIO.sync_scope(scenario, || {
                for _ in 0..n {
                    hub.record_request(&request(failed));
                }
            });
        };
        record(0, 0, 10, false);
        record(1, 2, 4, true);
        record(0, 1, 30, false);
        let st = hub.collect();
        let groups = [GroupInfo {
            name: "g".into(),
            kind: "http".into(),
        }];
        let mk = |metric, expr: &str, phases: std::ops::Range<usize>| Threshold {
            metric_key: String::new(),
            metric,
            group: None,
            phase: None,
            scenario: Some(ScenarioScope {
                name: "s".into(),
                phases,
            }),
            expr: expr.into(),
            condition: parse_condition(metric, expr).unwrap(),
            abort_on_fail: false,
            delay: Duration::ZERO,
        };
        let el = Duration::from_secs(10);
        // Per second of the scenario's own phases (1 s + 3 s), not the run's 10 s.
        let phase_elapsed = [1, 3, 2].map(Duration::from_secs);
        let browse = mk(MetricName::Requests, "rate > 9/s", 0..2);
        let v = browse.evaluate(&st, el, &phase_elapsed, &groups);
        assert_eq!((v.value, v.passed), (Some(10.0), true));
        let v =
            mk(MetricName::Errors, "rate < 1%", 0..2).evaluate(&st, el, &phase_elapsed, &groups);
        assert_eq!((v.value, v.passed), (Some(0.0), true));
        let v =
            mk(MetricName::Errors, "rate < 1%", 2..3).evaluate(&st, el, &phase_elapsed, &groups);
        assert_eq!((v.value, v.passed), (Some(1.0), false));
        let mut step = mk(MetricName::Requests, "count == 4", 2..3);
        step.group = Some(0);
        assert!(step.evaluate(&st, el, &phase_elapsed, &groups).passed);
    }
}
