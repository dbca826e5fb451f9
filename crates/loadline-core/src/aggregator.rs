//! The aggregator: once a tick it merges the threads' metric shards into the
//! interval's figures and the running total, joins the monitors' latest values,
//! tells the observer, and judges the abort-on-fail thresholds on the total so far
//! (ending the run when one fails). Its last tick, when the run is done, carries
//! the final partial interval, so the series adds up to the totals.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::WARM_MIN_LOOKUPS;
use crate::executor::Shared;
use crate::metrics::Stats;
use crate::monitor::MonitorSource;
use crate::runner::{EndReason, Observer, Tick};

/// Ticks every `tick` from `start` until `done` is cancelled; returns the total of
/// everything it merged.
pub(crate) async fn run(
    sh: Arc<Shared>,
    start: Instant,
    tick: Duration,
    done: CancellationToken,
    mut observer: Box<dyn Observer>,
    monitors: Option<Arc<dyn MonitorSource>>,
) -> Stats {
    let plan = &sh.plan;
    let mut total = Stats::new(&plan.shape());
    let mut interval = tokio::time::interval_at(start + tick, tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = start;
    let planned = plan.planned_duration();
    let mut ticked = false;
    loop {
        // The last tick comes when the run is done: it carries the final partial
        // interval, so the series adds up to the totals.
        let finished = tokio::select! {
            _ = interval.tick() => false,
            _ = done.cancelled() => true,
        };
        let now = Instant::now();
        let iv = sh.hub.collect();
        // A last interval with nothing in it adds no point to the series; one
        // that only cut iterations off (or dropped arrivals) still counts.
        let empty = iv.all_groups().requests == 0
            && iv.iterations() == 0
            && iv.interrupted() == 0
            && iv.dropped() == 0;
        if finished && ticked && empty {
            total.merge(&iv);
            break;
        }
        ticked = true;
        total.merge(&iv);
        let elapsed = now - start;
        note_warm_caches(&mut total, &iv, plan, elapsed);
        let values = monitors.as_ref().map(|m| m.snapshot()).unwrap_or_default();
        total.add_monitor_values(&values);
        if let Some(m) = &monitors {
            for w in m.take_warnings() {
                tracing::warn!("{w}");
            }
        }
        observer.on_tick(&Tick {
            plan,
            elapsed,
            planned,
            phase: sh.phase.load(Ordering::Relaxed) as usize,
            active_vus: sh.hub.active_vus.load(Ordering::Relaxed),
            interval: &iv,
            total: &total,
            interval_len: now - last,
            monitors: &values,
            stopping: sh.soft.is_cancelled() && !finished,
        });
        last = now;
        if finished {
            break;
        }
        if !sh.soft.is_cancelled() {
            abort_on_failed_threshold(&sh, &total, elapsed);
        }
    }
    total
}

/// Notes when a tick's hit ratio first reached the plan's warm level, per
/// group and over every group (a tick counts from
/// [`WARM_MIN_LOOKUPS`] lookups on).
fn note_warm_caches(total: &mut Stats, tick: &Stats, plan: &crate::plan::Plan, elapsed: Duration) {
    let warm = |hits: u64, lookups: u64| {
        lookups >= WARM_MIN_LOOKUPS && hits as f64 >= plan.cache_warm_at * lookups as f64
    };
    let marks = &mut total.cache_warm;
    marks.groups.resize(tick.groups.len(), None);
    let (mut hits, mut lookups) = (0, 0);
    for (i, g) in tick.groups.iter().enumerate() {
        let c = &g.cache;
        if c.lookups() == 0 {
            continue;
        }
        hits += c.hit();
        lookups += c.lookups();
        if marks.groups[i].is_none() && warm(c.hit(), c.lookups()) {
            marks.groups[i] = Some(elapsed);
        }
    }
    if marks.all.is_none() && warm(hits, lookups) {
        marks.all = Some(elapsed);
    }
}

/// Ends the run when an abort-on-fail threshold, past its delay, fails on the
/// figures so far.
fn abort_on_failed_threshold(sh: &Shared, total: &Stats, elapsed: Duration) {
    let plan = &sh.plan;
    for (i, t) in plan.thresholds.iter().enumerate() {
        // A phase's threshold is judged from the phase's start on, a
        // scenario's from its first phase's.
        let first = t.phase.or(t.scenario.as_ref().map(|s| s.phases.start));
        let started = first.is_none_or(|p| sh.has_started(p));
        if t.abort_on_fail
            && started
            && elapsed >= t.delay
            && !t.evaluate(total, elapsed, &[], &plan.groups).passed
        {
            tracing::warn!(threshold = %t.metric_key, expr = %t.expr, "threshold failed: aborting the run");
            sh.set_end(EndReason::Aborted { threshold: i });
            return;
        }
    }
}
