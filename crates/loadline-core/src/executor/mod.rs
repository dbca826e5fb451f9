//! The executors: they turn each phase of a plan into iterations on virtual users.
//! `open` starts iterations at planned times (arrivals per second), `closed`
//! keeps N VUs looping; both run only their execution [`segment`] of each phase.
//! This module holds what they share: the run's state, VU creation, and running one
//! iteration of a flow on a VU.

pub(crate) mod closed;
pub(crate) mod open;
pub mod segment;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{IterationEnd, MetricsHub, SCENARIO};
use crate::plan::{Pacing, Phase, Plan, Step};
use crate::protocol::{BoxFuture, StepOutcome};
use crate::runner::{EndReason, RunOptions};
use crate::vu::Vu;
use segment::Segment;

/// The state of one run, shared by the executors, their iterations and the aggregator.
pub(crate) struct Shared {
    pub(crate) plan: Arc<Plan>,
    pub(crate) hub: Arc<MetricsHub>,
    /// The slice of every phase this run executes.
    pub(crate) segment: Segment,
    /// No new iterations (end of load, stop request, abort).
    pub(crate) soft: CancellationToken,
    /// Cut off in-flight iterations (end of the graceful stop).
    pub(crate) hard: CancellationToken,
    pub(crate) tracker: TaskTracker,
    next_vu: AtomicU64,
    seed: u64,
    end: Mutex<Option<EndReason>>,
    /// The index of the phase that started last (in any scenario).
    pub(crate) phase: AtomicU64,
    /// Whether each phase has started: scenarios run at once, so a phase's
    /// index says nothing of whether another scenario's phase has.
    started: Box<[AtomicBool]>,
    /// Idle VUs of open-model phases.
    pub(crate) pool: Mutex<Vec<Vu>>,
    /// Per scenario, the cumulative weights of its flows, for picking one.
    flow_weights: Vec<Vec<u32>>,
    /// The scenario (index into [`Plan::scenario_list`]) of each phase.
    scenario_of: Vec<usize>,
    /// Each scenario's flows, as a range of `plan.flows`.
    flows_of: Vec<std::ops::Range<usize>>,
    /// Whether the plan has several scenarios: then each iteration's task runs
    /// inside [`SCENARIO`], so its records count in its scenario's phase.
    multi: bool,
}

impl Shared {
    pub(crate) fn new(plan: Arc<Plan>, hub: Arc<MetricsHub>, opts: &RunOptions, seed: u64) -> Self {
        let scenarios = plan.scenario_list();
        let flow_weights = scenarios
            .iter()
            .map(|s| {
                let mut acc = 0u32;
                plan.flows
                    .get(s.flows.clone())
                    .unwrap_or_default()
                    .iter()
                    .map(|f| {
                        acc = acc.saturating_add(f.weight);
                        acc
                    })
                    .collect()
            })
            .collect();
        let scenario_of = (0..plan.phases.len())
            .map(|i| plan.scenario_of_phase(i))
            .collect();
        let flows_of = scenarios.iter().map(|s| s.flows.clone()).collect();
        let multi = scenarios.len() > 1;
        let started = plan.phases.iter().map(|_| AtomicBool::new(false)).collect();
        // Segments number their VUs from their own start in the whole plan's id
        // space, so ids stay distinct across agents (unless a tiny segment rounds
        // its share of VUs up past its room).
        let first_vu = opts.segment.start().of(vu_id_space(&plan));
        Self {
            hub,
            segment: opts.segment,
            soft: opts.stop.child_token(),
            hard: opts.kill.child_token(),
            tracker: TaskTracker::new(),
            next_vu: AtomicU64::new(first_vu),
            seed,
            end: Mutex::new(None),
            phase: AtomicU64::new(0),
            started,
            pool: Mutex::new(Vec::new()),
            flow_weights,
            scenario_of,
            flows_of,
            multi,
            plan,
        }
    }

    pub(crate) fn new_vu(&self) -> Vu {
        let id = self.next_vu.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let seed = self.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Vu::new(&self.plan, id, self.hub.clone(), seed)
    }

    /// Records why the run ends (the first reason wins) and stops new iterations.
    pub(crate) fn set_end(&self, reason: EndReason) {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        if end.is_none() {
            *end = Some(reason);
        }
        self.soft.cancel();
    }

    /// Whether phase `phase` has started.
    pub(crate) fn has_started(&self, phase: usize) -> bool {
        self.started
            .get(phase)
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The scenario phase `phase` belongs to.
    pub(crate) fn scenario_of(&self, phase: usize) -> usize {
        self.scenario_of.get(phase).copied().unwrap_or(0)
    }

    /// Spawns an iteration task of phase `phase` on the tracker: with several
    /// scenarios inside its scenario's [`SCENARIO`], with one as it is.
    pub(crate) fn spawn<F>(&self, phase: usize, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.multi {
            self.tracker
                .spawn(SCENARIO.scope(self.scenario_of(phase), task))
        } else {
            self.tracker.spawn(task)
        }
    }

    /// The reason recorded by [`Self::set_end`], if any.
    pub(crate) fn end_reason(&self) -> Option<EndReason> {
        self.end.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A bound on how many VUs the whole plan creates: every closed phase's VUs plus
/// every open phase's cap.
fn vu_id_space(plan: &Plan) -> u64 {
    plan.phases
        .iter()
        .map(|p| match p.pacing {
            Pacing::Open { max_vus, .. } => max_vus,
            Pacing::Closed { vus } => vus,
        })
        .fold(0, u64::saturating_add)
}

/// Runs this run's segment of phase `phase_idx` to its end (or until stopped).
pub(crate) async fn run_phase(sh: &Arc<Shared>, phase_idx: usize, phase: &Phase) {
    sh.phase.store(phase_idx as u64, Ordering::Relaxed);
    if let Some(flag) = sh.started.get(phase_idx) {
        flag.store(true, Ordering::Relaxed);
    }
    sh.hub.set_phase(sh.scenario_of(phase_idx), phase_idx);
    let model = match phase.pacing {
        Pacing::Open { .. } => "open",
        Pacing::Closed { .. } => "closed",
    };
    tracing::debug!(phase = %phase.name, index = phase_idx, %model, plan = %phase.describe(), "phase started");
    let started = tokio::time::Instant::now();
    match phase.pacing {
        Pacing::Open { .. } => open::run(sh, phase_idx, phase).await,
        Pacing::Closed { .. } => closed::run(sh, phase_idx, phase).await,
    }
    tracing::debug!(
        phase = %phase.name,
        index = phase_idx,
        took_ms = started.elapsed().as_millis() as u64,
        stopped_early = sh.soft.is_cancelled(),
        in_flight = sh.hub.active_vus.load(Ordering::Relaxed),
        "phase ended"
    );
}

/// Runs one iteration on `vu`. Returns false when no further iteration may start
/// (the run was cut off, or a unique data file is used up).
pub(crate) async fn run_iteration(sh: &Shared, vu: &mut Vu, phase_idx: usize) -> bool {
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
    let scenario = sh.scenario_of(phase_idx);
    let (Some(flows), Some(weights)) = (
        sh.flows_of
            .get(scenario)
            .and_then(|r| plan.flows.get(r.clone())),
        sh.flow_weights.get(scenario),
    ) else {
        return false;
    };
    let flow = match flows.len() {
        0 => return false,
        1 => &flows[0],
        _ => {
            let total = weights.last().copied().unwrap_or(1).max(1);
            let pick = vu.vars.rng.u32(0..total);
            let idx = weights.partition_point(|&w| w <= pick);
            &flows[idx.min(flows.len() - 1)]
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

pub fn run_steps<'a>(steps: &'a [Step], vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
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
