//! A run: the public entry [`run`] and the types its callers see. It runs each
//! scenario of a plan at once, and each scenario's phases one after the other,
//! through the executors (open or closed model, each on
//! this run's execution segment of the plan), feeds the aggregator, and ends the
//! run cleanly: at the end, or on a stop request, no new iteration starts and
//! in-flight ones get `graceful_stop` to finish before they are cut off and
//! counted as interrupted.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aggregator;
use crate::executor::{self, Shared};
use crate::metrics::Stats;
use crate::monitor::{MonitorSource, MonitorValue};
use crate::plan::{Plan, ScenarioPlan};
use crate::threshold::Verdict;

pub use crate::executor::open::arrival_time;
pub use crate::executor::segment::{Fraction, Segment, SegmentError};

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
    /// The slice of every phase to run: the whole plan by default, agent i of n's
    /// part in a distributed run.
    pub segment: Segment,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("tick", &self.tick)
            .field("seed", &self.seed)
            .field("monitors", &self.monitors.is_some())
            .field("segment", &format_args!("{}", self.segment))
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
            segment: Segment::WHOLE,
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
    /// The load is over (or was stopped) and the in-flight iterations are
    /// finishing: the graceful stop is running.
    pub stopping: bool,
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
    /// How long each phase ran (zero for one that never started).
    pub phase_elapsed: Vec<Duration>,
    pub end: EndReason,
    /// One verdict per threshold of the plan, judged on the whole run.
    pub verdicts: Vec<Verdict>,
}

/// Runs `plan` (this run's segment of it, see [`RunOptions::segment`]) to its end,
/// or until stopped, and returns the merged results.
pub async fn run(plan: Arc<Plan>, opts: RunOptions, observer: Box<dyn Observer>) -> RunResult {
    let hub = crate::metrics::MetricsHub::new(plan.shape());
    // Protocols that record outside the VUs (a broker's consumers) start now.
    for protocol in &plan.protocols {
        protocol.load_starting(&hub);
    }
    let seed = opts.seed.unwrap_or_else(|| fastrand::u64(..));
    let sh = Arc::new(Shared::new(plan.clone(), hub.clone(), &opts, seed));
    let start = Instant::now();
    let done = CancellationToken::new();
    let aggregator = tokio::spawn(aggregator::run(
        sh.clone(),
        start,
        opts.tick,
        done.clone(),
        observer,
        opts.monitors.clone(),
    ));

    tracing::debug!(
        phases = plan.phases.len(),
        flows = plan.flows.len(),
        segment = %opts.segment,
        seed,
        "run started"
    );
    let scenarios = plan.scenario_list().into_owned();
    let driven = if scenarios.len() == 1 {
        vec![drive_scenario(sh.clone(), scenarios[0].clone(), start).await]
    } else {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|s| tokio::spawn(drive_scenario(sh.clone(), s.clone(), start)))
            .collect();
        let mut driven = Vec::with_capacity(handles.len());
        for h in handles {
            // A driver that panicked ran none of its phases to the end.
            driven.push(h.await.unwrap_or_default());
        }
        driven
    };
    // The load is over: no new iterations, bounded time for the in-flight ones.
    sh.soft.cancel();
    sh.tracker.close();
    tracing::debug!(
        in_flight = sh.tracker.len(),
        graceful_stop_ms = plan.graceful_stop.as_millis() as u64,
        "graceful stop: no new iterations; waiting for those in flight"
    );
    if tokio::time::timeout(plan.graceful_stop, sh.tracker.wait())
        .await
        .is_err()
    {
        tracing::debug!(
            in_flight = sh.tracker.len(),
            "graceful stop ran out: cutting off the iterations still in flight"
        );
        sh.hard.cancel();
        sh.tracker.wait().await;
    }
    tracing::debug!("graceful stop over: every iteration has ended");
    let elapsed = start.elapsed();
    // Late records (a destination's grace period, its lost messages) join the
    // run's figures; the run's duration leaves the wait out.
    for protocol in &plan.protocols {
        protocol.load_ended().await;
    }
    let phase_elapsed = phase_elapsed(&plan, &scenarios, &driven, elapsed);
    done.cancel();
    let mut total = match aggregator.await {
        Ok(total) => total,
        Err(_) => Stats::new(&plan.shape()),
    };
    total.merge(&hub.collect());
    sh.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();

    let end = sh.end_reason().unwrap_or(if opts.stop.is_cancelled() {
        EndReason::Interrupted
    } else {
        EndReason::Completed
    });
    tracing::debug!(
        end = ?end,
        elapsed_ms = elapsed.as_millis() as u64,
        iterations = total.iterations(),
        requests = total.all_groups().requests,
        "run ended"
    );
    let verdicts = plan
        .thresholds
        .iter()
        .map(|t| t.evaluate(&total, elapsed, &phase_elapsed, &plan.groups))
        .collect();
    RunResult {
        total,
        elapsed,
        phase_elapsed,
        end,
        verdicts,
    }
}

/// When one scenario's phases started and when its driver ended, from the
/// start of the run.
#[derive(Debug, Default)]
struct Driven {
    /// The start of each of its phases that started, in order.
    starts: Vec<Duration>,
    ended: Duration,
}

/// Runs one scenario: waits out its delay, then its phases one after the other
/// (until the run stops).
async fn drive_scenario(sh: Arc<Shared>, scenario: ScenarioPlan, start: Instant) -> Driven {
    let mut driven = Driven::default();
    if !scenario.start_after.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep_until(start + scenario.start_after) => {}
            _ = sh.soft.cancelled() => {}
        }
    }
    let plan = sh.plan.clone();
    for i in scenario.phases.clone() {
        let Some(phase) = plan.phases.get(i) else {
            break;
        };
        if sh.soft.is_cancelled() {
            tracing::debug!(scenario = %scenario.name, phase = %phase.name, index = i, "phase skipped: the run is stopping");
            break;
        }
        driven.starts.push(start.elapsed());
        executor::run_phase(&sh, i, phase).await;
    }
    driven.ended = start.elapsed();
    driven
}

/// How long each phase ran: until the next phase of its scenario started; a
/// scenario's last phase until its driver ended, except for the scenarios
/// that ended last, whose last phase runs to the end of the run (the graceful
/// stop included). A phase that never started ran for zero.
fn phase_elapsed(
    plan: &Plan,
    scenarios: &[ScenarioPlan],
    driven: &[Driven],
    elapsed: Duration,
) -> Vec<Duration> {
    let mut out = vec![Duration::ZERO; plan.phases.len()];
    let last_end = driven.iter().map(|d| d.ended).max().unwrap_or_default();
    for (s, d) in scenarios.iter().zip(driven) {
        let end = if d.ended == last_end {
            elapsed
        } else {
            d.ended
        };
        for (k, from) in d.starts.iter().enumerate() {
            let to = d.starts.get(k + 1).copied().unwrap_or(end);
            if let Some(slot) = out.get_mut(s.phases.start + k) {
                *slot = to.saturating_sub(*from);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::duration::DurationRange;
    use crate::metrics::RequestSample;
    use crate::plan::{
        Arrivals, Feeder, FeederOrder, Flow, GroupInfo, Pacing, Phase, ScenarioPlan, Step, Stop,
    };
    use crate::protocol::{BoxFuture, StepExec, StepOutcome};
    use crate::vu::Vu;

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
                    cache: crate::cache::CacheOutcome::None,
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
            scenarios: vec![],
            feeders: Arc::new(feeders),
            thresholds: vec![],
            groups: vec![GroupInfo {
                name: "g".into(),
                kind: "test".into(),
            }],
            protocols: vec![],
            capture_slots: 0,
            graceful_stop: Duration::from_millis(300),
            cache_warm_at: 0.9,
            error_classes: crate::metrics::generic_error_classes(),
            counters: vec![],
            checks: vec![],
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
                        arrivals: Arrivals::Uniform,
                    },
                    stop: Stop::Duration(Duration::from_millis(500)),
                },
                Phase {
                    name: "capped".into(),
                    pacing: Pacing::Open {
                        rate: 100.0,
                        ramp_to: None,
                        max_vus: 2,
                        arrivals: Arrivals::Uniform,
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

    #[tokio::test]
    async fn three_segments_run_the_whole_plan_between_them() {
        let p = plan(
            vec![
                Phase {
                    name: "open".into(),
                    pacing: Pacing::Open {
                        rate: 100.0,
                        ramp_to: None,
                        max_vus: 1000,
                        arrivals: Arrivals::Uniform,
                    },
                    stop: Stop::Duration(Duration::from_millis(400)),
                },
                Phase {
                    name: "closed".into(),
                    pacing: Pacing::Closed { vus: 4 },
                    stop: Stop::Iterations {
                        total: 20,
                        max_duration: Some(Duration::from_secs(5)),
                    },
                },
            ],
            Duration::from_millis(1),
            vec![],
        );
        let mut open = Vec::new();
        let mut closed = Vec::new();
        for i in 0..3 {
            let opts = RunOptions {
                segment: Segment::nth(i, 3).unwrap(),
                seed: Some(7),
                ..RunOptions::default()
            };
            let r = run(p.clone(), opts, Box::new(NoObserver)).await;
            assert_eq!(r.end, EndReason::Completed);
            assert_eq!(r.total.dropped(), 0);
            assert_eq!(r.total.interrupted(), 0);
            open.push(r.total.phases[0].iterations);
            closed.push(r.total.phases[1].iterations);
        }
        // 100/s for 0.4 s is 40 arrivals; 4 VUs of 20 iterations split 1, 1, 2.
        assert_eq!(open.iter().sum::<u64>(), 40);
        assert!(open.iter().all(|n| (12..=15).contains(n)), "{open:?}");
        assert_eq!(closed, [5, 5, 10]);
        let whole = run(p, RunOptions::default(), Box::new(NoObserver)).await;
        assert_eq!(whole.total.phases[0].iterations, 40);
        assert_eq!(whole.total.phases[1].iterations, 20);
    }

    /// Blocks the thread it runs on once (the generator falls behind), then
    /// returns at once.
    #[derive(Debug, Default)]
    struct StallOnce(std::sync::atomic::AtomicBool);

    impl StepExec for StallOnce {
        fn run<'a>(&'a self, _vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
            Box::pin(async move {
                if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1600));
                }
                StepOutcome::Continue
            })
        }
    }

    #[tokio::test]
    async fn arrivals_that_cannot_start_in_time_are_dropped_as_late() {
        // One thread: while the first iteration stalls it for 1.6 s, the arrivals
        // due meanwhile fall behind; those more than MAX_LATENESS late are dropped
        // and counted, and the phase is not stretched.
        let base = plan(vec![], Duration::from_millis(1), vec![]);
        let p = Arc::new(Plan {
            name: None,
            source: "test".into(),
            phases: vec![Phase {
                name: "p".into(),
                pacing: Pacing::Open {
                    rate: 10.0,
                    ramp_to: None,
                    max_vus: 1000,
                    arrivals: Arrivals::Uniform,
                },
                stop: Stop::Duration(Duration::from_secs(3)),
            }],
            flows: vec![Flow {
                name: "f".into(),
                weight: 1,
                steps: vec![Step::Exec(Arc::new(StallOnce::default()))],
            }],
            scenarios: vec![],
            feeders: base.feeders.clone(),
            thresholds: vec![],
            groups: base.groups.clone(),
            protocols: vec![],
            capture_slots: 0,
            graceful_stop: Duration::from_millis(300),
            cache_warm_at: 0.9,
            error_classes: base.error_classes.clone(),
            counters: vec![],
            checks: vec![],
        });
        let r = run(p, RunOptions::default(), Box::new(NoObserver)).await;
        let phase = r.total.phases[0];
        // Every planned arrival is either started or dropped; the drops are the
        // late ones (about five: those due in the first half second), and the
        // arrivals after the stall start.
        assert_eq!(phase.iterations + phase.dropped, 30, "{phase:?}");
        assert_eq!(phase.dropped, phase.late, "{phase:?}");
        assert!((3..=12).contains(&phase.late), "{phase:?}");
    }

    /// A step that records one request of its group after a millisecond.
    #[derive(Debug)]
    struct Tagged(usize);

    impl StepExec for Tagged {
        fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                vu.metrics.record_request(&RequestSample {
                    group: self.0,
                    latency: Duration::from_millis(1),
                    status: Some(200),
                    failed: false,
                    error: None,
                    bytes_sent: 1,
                    bytes_received: 1,
                    cache: crate::cache::CacheOutcome::None,
                });
                StepOutcome::Continue
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scenarios_keep_their_flows_phases_and_rates() {
        // `browse` (closed, then open at 40/s) and `buy` (open at 20/s after
        // 100 ms) run at once; each flow records into its own group, so a
        // record landing in the other scenario's phase would show.
        let base = plan(vec![], Duration::from_millis(1), vec![]);
        let open = |name: &str, rate: f64, ms: u64| Phase {
            name: name.into(),
            pacing: Pacing::Open {
                rate,
                ramp_to: None,
                max_vus: 100,
                arrivals: Arrivals::Uniform,
            },
            stop: Stop::Duration(Duration::from_millis(ms)),
        };
        let flow = |name: &str, group: usize| Flow {
            name: name.into(),
            weight: 1,
            steps: vec![Step::Exec(Arc::new(Tagged(group)))],
        };
        let p = Arc::new(Plan {
            name: None,
            source: "test".into(),
            phases: vec![
                Phase {
                    name: "warm".into(),
                    pacing: Pacing::Closed { vus: 2 },
                    stop: Stop::Duration(Duration::from_millis(200)),
                },
                open("steady", 40.0, 500),
                open("steady", 20.0, 500),
            ],
            flows: vec![flow("look", 0), flow("pay", 1)],
            scenarios: vec![
                ScenarioPlan {
                    name: "browse".into(),
                    phases: 0..2,
                    flows: 0..1,
                    start_after: Duration::ZERO,
                },
                ScenarioPlan {
                    name: "buy".into(),
                    phases: 2..3,
                    flows: 1..2,
                    start_after: Duration::from_millis(100),
                },
            ],
            feeders: base.feeders.clone(),
            thresholds: vec![],
            groups: vec![
                GroupInfo {
                    name: "look".into(),
                    kind: "test".into(),
                },
                GroupInfo {
                    name: "pay".into(),
                    kind: "test".into(),
                },
            ],
            protocols: vec![],
            capture_slots: 0,
            graceful_stop: Duration::from_millis(300),
            cache_warm_at: 0.9,
            error_classes: base.error_classes.clone(),
            counters: vec![],
            checks: vec![],
        });
        assert_eq!(p.planned_duration(), Some(Duration::from_millis(700)));
        let r = run(p, RunOptions::default(), Box::new(NoObserver)).await;
        assert_eq!(r.end, EndReason::Completed);
        let t = &r.total;
        // Each scenario's records are in its own phases only.
        for phase in [0, 1] {
            assert!(
                t.in_phase(phase, 1).is_none(),
                "pay in browse's phase {phase}"
            );
        }
        assert!(t.in_phase(2, 0).is_none(), "look in buy's phase");
        assert!(t.phases[0].iterations > 0);
        assert_eq!(t.phases[1].iterations, 20);
        assert_eq!(t.phases[2].iterations, 10);
        assert_eq!(t.in_phase(2, 1).map(|g| g.requests), Some(10));
        assert_eq!(
            t.in_phase(0, 0).map_or(0, |g| g.requests) + t.in_phase(1, 0).map_or(0, |g| g.requests),
            t.phases[0].iterations + 20
        );
        // browse ends at 0.7 s, buy at 0.6 s: buy's phase ends with its driver,
        // browse's last one runs to the end of the run.
        let ms = |d: Duration| d.as_millis();
        assert!(
            (195..300).contains(&ms(r.phase_elapsed[0])),
            "{:?}",
            r.phase_elapsed
        );
        assert!(
            (495..600).contains(&ms(r.phase_elapsed[2])),
            "{:?}",
            r.phase_elapsed
        );
        let browse = r.phase_elapsed[0] + r.phase_elapsed[1];
        assert!(
            r.elapsed - browse < Duration::from_millis(20),
            "{:?} of {:?}",
            r.phase_elapsed,
            r.elapsed
        );
    }
}
