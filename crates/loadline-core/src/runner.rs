//! The scheduler: runs a plan's phases one after the other on virtual users, feeds
//! the aggregator, and ends the run cleanly.
//!
//! Open-model phases start iterations at planned times (rates ramp linearly); each
//! iteration takes an idle VU from a pool, or a new one, so connections are reused
//! across arrivals while every arrival still gets a fresh session (captures and
//! cookies are reset per iteration). Closed-model phases run N looping VUs. At the
//! end, or on a stop request, no new iteration starts and in-flight ones get
//! `graceful_stop` to finish before they are cut off and counted as interrupted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{IterationEnd, MetricsHub, Stats};
use crate::monitor::{MonitorSource, MonitorValue};
use crate::plan::{Pacing, Phase, Plan, Step, Stop};
use crate::protocol::{BoxFuture, StepOutcome};
use crate::threshold::Verdict;
use crate::vu::Vu;

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Cancelled by the caller (Ctrl-C): stop starting iterations, finish in-flight ones.
    pub stop: CancellationToken,
    /// Cancelled by the caller (a second Ctrl-C): cut off in-flight iterations now.
    pub kill: CancellationToken,
    /// How often shards are merged and observers told.
    pub tick: Duration,
    /// Seed for the VUs' random sources; `None` picks one.
    pub seed: Option<u64>,
    /// Monitors whose values join each tick.
    pub monitors: Option<Arc<dyn MonitorSource>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("tick", &self.tick)
            .field("seed", &self.seed)
            .field("monitors", &self.monitors.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            stop: CancellationToken::new(),
            kill: CancellationToken::new(),
            tick: Duration::from_secs(1),
            seed: None,
            monitors: None,
        }
    }
}

/// What an observer sees each tick.
#[derive(Debug)]
pub struct Tick<'a> {
    /// The plan being run.
    pub plan: &'a Plan,
    pub elapsed: Duration,
    pub planned: Option<Duration>,
    /// The index of the phase now running.
    pub phase: usize,
    pub active_vus: i64,
    /// Recorded during the last tick only.
    pub interval: &'a Stats,
    /// Recorded since the start.
    pub total: &'a Stats,
    /// How long the last tick lasted (the interval's length).
    pub interval_len: Duration,
    /// The monitors' latest values.
    pub monitors: &'a [MonitorValue],
}

/// Receives the live figures (terminal progress, streamed outputs).
pub trait Observer: Send {
    fn on_tick(&mut self, tick: &Tick<'_>);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn on_tick(&mut self, _tick: &Tick<'_>) {}
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum EndReason {
    /// Every phase ran to its end.
    Completed,
    /// The caller asked it to stop.
    Interrupted,
    /// An abort-on-fail threshold failed (index into `plan.thresholds`).
    Aborted { threshold: usize },
    /// A `unique` data file ran out of rows.
    DataExhausted { feeder: String },
}

/// The outcome of a run: the merged figures and the verdicts.
#[derive(Debug)]
pub struct RunResult {
    pub total: Stats,
    pub elapsed: Duration,
    pub end: EndReason,
    /// One verdict per threshold of the plan, judged on the whole run.
    pub verdicts: Vec<Verdict>,
}

/// How much earlier than an arrival the scheduler's timer is set: half a tick
/// of tokio's millisecond timer wheel.
const TIMER_SLACK: Duration = Duration::from_micros(500);

struct Shared {
    plan: Arc<Plan>,
    hub: Arc<MetricsHub>,
    /// No new iterations (end of load, stop request, abort).
    soft: CancellationToken,
    /// Cut off in-flight iterations (end of the graceful stop).
    hard: CancellationToken,
    tracker: TaskTracker,
    next_vu: AtomicU64,
    seed: u64,
    end: Mutex<Option<EndReason>>,
    phase: AtomicU64,
    /// Idle VUs of open-model phases.
    pool: Mutex<Vec<Vu>>,
    /// Cumulative flow weights, for picking a flow.
    flow_weights: Vec<u32>,
}

impl Shared {
    fn new_vu(&self) -> Vu {
        let id = self.next_vu.fetch_add(1, Ordering::Relaxed) + 1;
        let seed = self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Vu::new(&self.plan, id, self.hub.clone(), seed)
    }

    fn set_end(&self, reason: EndReason) {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        if end.is_none() {
            *end = Some(reason);
        }
        self.soft.cancel();
    }
}

/// Runs `plan` to its end (or until stopped) and returns the merged results.
pub async fn run(plan: Arc<Plan>, opts: RunOptions, observer: Box<dyn Observer>) -> RunResult {
    let hub = MetricsHub::new(plan.shape());
    let seed = opts.seed.unwrap_or_else(|| fastrand::u64(..));
    let mut acc = 0u32;
    let flow_weights = plan
        .flows
        .iter()
        .map(|f| {
            acc = acc.saturating_add(f.weight);
            acc
        })
        .collect();
    let sh = Arc::new(Shared {
        plan: plan.clone(),
        hub: hub.clone(),
        soft: opts.stop.child_token(),
        hard: opts.kill.child_token(),
        tracker: TaskTracker::new(),
        next_vu: AtomicU64::new(0),
        seed,
        end: Mutex::new(None),
        phase: AtomicU64::new(0),
        pool: Mutex::new(Vec::new()),
        flow_weights,
    });
    let start = Instant::now();
    let done = CancellationToken::new();
    let aggregator = tokio::spawn(aggregate(
        sh.clone(),
        start,
        opts.tick,
        done.clone(),
        observer,
        opts.monitors.clone(),
    ));

    for (i, phase) in plan.phases.iter().enumerate() {
        if sh.soft.is_cancelled() {
            break;
        }
        sh.phase.store(i as u64, Ordering::Relaxed);
        match phase.pacing {
            Pacing::Open { .. } => run_open(&sh, i, phase).await,
            Pacing::Closed { .. } => run_closed(&sh, i, phase).await,
        }
    }
    // The load is over: no new iterations, bounded time for the in-flight ones.
    sh.soft.cancel();
    sh.tracker.close();
    if tokio::time::timeout(plan.graceful_stop, sh.tracker.wait())
        .await
        .is_err()
    {
        sh.hard.cancel();
        sh.tracker.wait().await;
    }
    let elapsed = start.elapsed();
    done.cancel();
    let mut total = match aggregator.await {
        Ok(total) => total,
        Err(_) => Stats::new(&plan.shape()),
    };
    total.merge(&hub.collect());
    sh.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();

    let end = sh
        .end
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or(if opts.stop.is_cancelled() {
            EndReason::Interrupted
        } else {
            EndReason::Completed
        });
    let verdicts = plan
        .thresholds
        .iter()
        .map(|t| t.evaluate(&total, elapsed, &plan.groups))
        .collect();
    RunResult {
        total,
        elapsed,
        end,
        verdicts,
    }
}

async fn aggregate(
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
        if finished && ticked && iv.all_groups().requests == 0 && iv.iterations() == 0 {
            break;
        }
        ticked = true;
        total.merge(&iv);
        let elapsed = now - start;
        let values = monitors.as_ref().map(|m| m.snapshot()).unwrap_or_default();
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
        });
        last = now;
        if finished {
            break;
        }
        if !sh.soft.is_cancelled() {
            for (i, t) in plan.thresholds.iter().enumerate() {
                if t.abort_on_fail
                    && elapsed >= t.delay
                    && !t.evaluate(&total, elapsed, &plan.groups).passed
                {
                    tracing::warn!(threshold = %t.metric_key, expr = %t.expr, "threshold failed: aborting the run");
                    sh.set_end(EndReason::Aborted { threshold: i });
                    break;
                }
            }
        }
    }
    total
}

/// The time of the `k`-th arrival (0-based) of a phase whose rate goes linearly
/// from `r0` to `r1` per second over `t_len` seconds; `None` past the phase's end.
pub fn arrival_time(k: u64, r0: f64, r1: f64, t_len: f64) -> Option<f64> {
    let expected = (r0 + r1) / 2.0 * t_len;
    let kf = k as f64;
    if kf >= expected || t_len <= 0.0 {
        return None;
    }
    // Arrivals so far at time t: N(t) = r0 t + a t², a = (r1 - r0) / (2 T).
    // The k-th arrival is at N(t) = k; this form is stable for a = 0 too.
    let a = (r1 - r0) / (2.0 * t_len);
    let disc = r0 * r0 + 4.0 * a * kf;
    if disc < 0.0 {
        return None;
    }
    let denom = r0 + disc.sqrt();
    let t = if kf == 0.0 { 0.0 } else { 2.0 * kf / denom };
    (t.is_finite() && t < t_len).then_some(t)
}

async fn run_open(sh: &Arc<Shared>, phase_idx: usize, phase: &Phase) {
    let Pacing::Open {
        rate,
        ramp_to,
        max_vus,
    } = phase.pacing
    else {
        return;
    };
    let Some(len) = phase.planned_duration() else {
        return;
    };
    let r1 = ramp_to.unwrap_or(rate);
    let start = Instant::now();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut k = 0u64;
    while let Some(t) = arrival_time(k, rate, r1, len.as_secs_f64()) {
        let due = start + Duration::from_secs_f64(t);
        // The timer wheel ticks every millisecond and rounds a deadline up to the
        // next tick; aiming half a tick early starts each iteration within half a
        // millisecond of its planned time, early or late, instead of up to a
        // whole tick late. Lateness beyond that is measured as schedule lag.
        if due > Instant::now() + TIMER_SLACK {
            tokio::select! {
                _ = tokio::time::sleep_until(due - TIMER_SLACK) => {}
                _ = sh.soft.cancelled() => return,
            }
        }
        if sh.soft.is_cancelled() {
            return;
        }
        k += 1;
        if in_flight.load(Ordering::Relaxed) >= max_vus {
            sh.hub.record_dropped(phase_idx);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let sh2 = sh.clone();
        let in_flight2 = in_flight.clone();
        sh.tracker.spawn(async move {
            let lag = Instant::now().saturating_duration_since(due);
            sh2.hub.record_schedule_lag(lag);
            let popped = sh2.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut vu = popped.unwrap_or_else(|| sh2.new_vu());
            sh2.hub.active_vus.fetch_add(1, Ordering::Relaxed);
            let _ = run_iteration(&sh2, &mut vu, phase_idx).await;
            sh2.hub.active_vus.fetch_sub(1, Ordering::Relaxed);
            in_flight2.fetch_sub(1, Ordering::Relaxed);
            sh2.pool.lock().unwrap_or_else(|p| p.into_inner()).push(vu);
        });
    }
    // Wait out the rest of the phase (the last arrival is before its end).
    let end = start + len;
    tokio::select! {
        _ = tokio::time::sleep_until(end) => {}
        _ = sh.soft.cancelled() => {}
    }
}

async fn run_closed(sh: &Arc<Shared>, phase_idx: usize, phase: &Phase) {
    let Pacing::Closed { vus } = phase.pacing else {
        return;
    };
    let start = Instant::now();
    let (deadline, remaining) = match phase.stop {
        Stop::Duration(d) => (Some(start + d), None),
        Stop::Iterations {
            total,
            max_duration,
        } => (
            max_duration.map(|d| start + d),
            Some(Arc::new(AtomicU64::new(total))),
        ),
    };
    let mut handles = Vec::with_capacity(vus as usize);
    for _ in 0..vus {
        let sh2 = sh.clone();
        let remaining = remaining.clone();
        handles.push(sh.tracker.spawn(async move {
            let mut vu = sh2.new_vu();
            sh2.hub.active_vus.fetch_add(1, Ordering::Relaxed);
            loop {
                if sh2.soft.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(rem) = &remaining {
                    let took = rem
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                    if took.is_err() {
                        break;
                    }
                }
                if !run_iteration(&sh2, &mut vu, phase_idx).await {
                    break;
                }
            }
            sh2.hub.active_vus.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    match phase.stop {
        Stop::Duration(_) => {
            if let Some(d) = deadline {
                tokio::select! {
                    _ = tokio::time::sleep_until(d) => {}
                    _ = sh.soft.cancelled() => {}
                }
            }
        }
        Stop::Iterations { .. } => {
            let all = async {
                for h in handles {
                    let _ = h.await;
                }
            };
            let cap = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = all => {}
                _ = cap => {}
                _ = sh.soft.cancelled() => {}
            }
        }
    }
}

/// Runs one iteration on `vu`. Returns false when no further iteration may start
/// (the run was cut off, or a unique data file is used up).
async fn run_iteration(sh: &Shared, vu: &mut Vu, phase_idx: usize) -> bool {
    let plan = &sh.plan;
    vu.vars.reset_captures();
    for (i, feeder) in plan.feeders.iter().enumerate() {
        match feeder.draw(&mut vu.vars.rng) {
            Some(row) => vu.vars.rows[i] = row,
            None => {
                sh.set_end(EndReason::DataExhausted {
                    feeder: feeder.name.clone(),
                });
                return false;
            }
        }
    }
    for (p, state) in plan.protocols.iter().zip(vu.states.iter_mut()) {
        p.start_iteration(state.as_mut());
    }
    let flow = match plan.flows.len() {
        0 => return false,
        1 => &plan.flows[0],
        _ => {
            let total = sh.flow_weights.last().copied().unwrap_or(1).max(1);
            let pick = vu.vars.rng.u32(0..total);
            let idx = sh.flow_weights.partition_point(|&w| w <= pick);
            &plan.flows[idx.min(plan.flows.len() - 1)]
        }
    };
    let started = Instant::now();
    let end = tokio::select! {
        _ = run_steps(&flow.steps, vu) => IterationEnd::Completed,
        _ = sh.hard.cancelled() => IterationEnd::Interrupted,
    };
    vu.vars.iteration += 1;
    sh.hub.record_iteration(phase_idx, end, started.elapsed());
    end == IterationEnd::Completed
}

fn run_steps<'a>(steps: &'a [Step], vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
    Box::pin(async move {
        for step in steps {
            let outcome = match step {
                Step::Exec(exec) => exec.run(vu).await,
                Step::Think(range) => {
                    let d = range.sample(&mut vu.vars.rng);
                    tokio::time::sleep(d).await;
                    StepOutcome::Continue
                }
                Step::Loop { count, steps } => {
                    let mut out = StepOutcome::Continue;
                    for _ in 0..*count {
                        out = run_steps(steps, vu).await;
                        if out == StepOutcome::AbortIteration {
                            break;
                        }
                    }
                    out
                }
            };
            if outcome == StepOutcome::AbortIteration {
                return outcome;
            }
        }
        StepOutcome::Continue
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_arrivals_are_evenly_spaced() {
        let times: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 5.0, 5.0, 10.0))
            .collect();
        assert_eq!(times.len(), 50);
        assert!((times[1] - 0.2).abs() < 1e-9);
        assert!((times[49] - 9.8).abs() < 1e-9);
    }

    #[test]
    fn ramps_deliver_the_area_under_the_rate() {
        // 5/s rising to 50/s over 10 s: (5 + 50) / 2 * 10 = 275 arrivals.
        let times: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 5.0, 50.0, 10.0))
            .collect();
        assert_eq!(times.len(), 275);
        assert!(times.windows(2).all(|w| w[1] > w[0]));
        // Denser at the end than at the start.
        assert!(times[1] - times[0] > times[274] - times[273]);
        let down: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 50.0, 0.0, 10.0))
            .collect();
        assert_eq!(down.len(), 250);
        assert!(down.iter().all(|t| *t < 10.0));
        assert_eq!(arrival_time(0, 0.0, 0.0, 10.0), None);
        let from_zero: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 0.0, 10.0, 10.0))
            .collect();
        assert_eq!(from_zero.len(), 50);
    }

    use crate::duration::DurationRange;
    use crate::metrics::RequestSample;
    use crate::plan::{Feeder, FeederOrder, Flow, GroupInfo};
    use crate::protocol::StepExec;

    /// A step that sleeps and then records one request.
    #[derive(Debug)]
    struct Nap(Duration);

    impl StepExec for Nap {
        fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
            Box::pin(async move {
                tokio::time::sleep(self.0).await;
                vu.metrics.record_request(&RequestSample {
                    group: 0,
                    latency: self.0,
                    status: Some(200),
                    failed: false,
                    error: None,
                    bytes_sent: 1,
                    bytes_received: 1,
                });
                StepOutcome::Continue
            })
        }
    }

    fn plan(phases: Vec<Phase>, nap: Duration, feeders: Vec<Feeder>) -> Arc<Plan> {
        Arc::new(Plan {
            name: None,
            source: "test".into(),
            phases,
            flows: vec![Flow {
                name: "f".into(),
                weight: 1,
                steps: vec![
                    Step::Exec(Arc::new(Nap(nap))),
                    Step::Loop {
                        count: 2,
                        steps: vec![
                            Step::Think(DurationRange::parse("1ms").unwrap()),
                            Step::Exec(Arc::new(Nap(nap))),
                        ],
                    },
                ],
            }],
            feeders: Arc::new(feeders),
            thresholds: vec![],
            groups: vec![GroupInfo {
                name: "g".into(),
                kind: "test".into(),
            }],
            protocols: vec![],
            capture_slots: 0,
            graceful_stop: Duration::from_millis(300),
            error_classes: crate::metrics::generic_error_classes(),
            counters: vec![],
        })
    }

    #[tokio::test]
    async fn closed_iterations_are_shared_exactly() {
        let p = plan(
            vec![Phase {
                name: "p".into(),
                pacing: Pacing::Closed { vus: 7 },
                stop: Stop::Iterations {
                    total: 50,
                    max_duration: None,
                },
            }],
            Duration::from_millis(1),
            vec![],
        );
        let r = run(p, RunOptions::default(), Box::new(NoObserver)).await;
        assert_eq!(r.end, EndReason::Completed);
        assert_eq!(r.total.iterations(), 50);
        assert_eq!(r.total.groups[0].requests, 150);
    }

    #[tokio::test]
    async fn open_phase_starts_every_planned_arrival_and_drops_above_max_vus() {
        let p = plan(
            vec![
                Phase {
                    name: "open".into(),
                    pacing: Pacing::Open {
                        rate: 100.0,
                        ramp_to: None,
                        max_vus: 1000,
                    },
                    stop: Stop::Duration(Duration::from_millis(500)),
                },
                Phase {
                    name: "capped".into(),
                    pacing: Pacing::Open {
                        rate: 100.0,
                        ramp_to: None,
                        max_vus: 2,
                    },
                    stop: Stop::Duration(Duration::from_millis(500)),
                },
            ],
            Duration::from_millis(40),
            vec![],
        );
        let r = run(p, RunOptions::default(), Box::new(NoObserver)).await;
        assert_eq!(r.total.phases[0].iterations, 50);
        assert_eq!(r.total.phases[0].dropped, 0);
        let capped = r.total.phases[1];
        assert_eq!(capped.iterations + capped.dropped, 50);
        assert!(capped.dropped > 30, "{capped:?}");
        assert_eq!(r.total.schedule_lag.len(), 50 + capped.iterations);
    }

    #[tokio::test]
    async fn graceful_stop_cuts_off_long_iterations() {
        let p = plan(
            vec![Phase {
                name: "p".into(),
                pacing: Pacing::Closed { vus: 3 },
                stop: Stop::Duration(Duration::from_millis(100)),
            }],
            Duration::from_secs(30),
            vec![],
        );
        let stop = CancellationToken::new();
        let r = run(
            p,
            RunOptions {
                stop: stop.clone(),
                ..RunOptions::default()
            },
            Box::new(NoObserver),
        )
        .await;
        assert_eq!(r.total.interrupted(), 3);
        assert_eq!(r.total.iterations(), 0);
        assert!(r.elapsed < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn stop_request_ends_the_run_as_interrupted() {
        let p = plan(
            vec![Phase {
                name: "p".into(),
                pacing: Pacing::Closed { vus: 2 },
                stop: Stop::Duration(Duration::from_secs(60)),
            }],
            Duration::from_millis(5),
            vec![],
        );
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            s2.cancel();
        });
        let r = run(
            p,
            RunOptions {
                stop,
                ..RunOptions::default()
            },
            Box::new(NoObserver),
        )
        .await;
        assert_eq!(r.end, EndReason::Interrupted);
        assert!(r.total.iterations() > 0);
        assert_eq!(r.total.interrupted(), 0);
    }

    #[tokio::test]
    async fn unique_data_ends_the_run_when_used_up() {
        let rows = (0..5).map(|i| vec![serde_json::Value::from(i)]).collect();
        let f = Feeder::new("ids", vec!["id".into()], rows, FeederOrder::Unique);
        let p = plan(
            vec![Phase {
                name: "p".into(),
                pacing: Pacing::Closed { vus: 2 },
                stop: Stop::Iterations {
                    total: 100,
                    max_duration: None,
                },
            }],
            Duration::from_millis(1),
            vec![f],
        );
        let r = run(p, RunOptions::default(), Box::new(NoObserver)).await;
        assert_eq!(r.total.iterations(), 5);
        assert_eq!(
            r.end,
            EndReason::DataExhausted {
                feeder: "ids".into()
            }
        );
    }
}
