//! The seam between the engine and the protocols. A protocol gives each VU a state
//! of its own (its connections, its cookie jar), builds step executors, and gets
//! lifecycle hooks around the load: [`Protocol::prepare`] before any load
//! (connect, run setup, check statements) and [`Protocol::finish`] after it (run
//! teardown, close), and [`Protocol::load_starting`] / [`Protocol::load_ended`]
//! at the edges of the load itself, for work that records figures outside
//! any VU (a broker's consumers). The engine runs the executors in order and never looks
//! inside them; the run drives the hooks for every protocol of the plan.
//!
//! Steps reach their protocol's per-VU state through a typed [`Slot`], handed out
//! when the protocol joins the plan (`add_typed_protocol` on
//! [`crate::build::BuildCtx`]).

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use crate::metrics::MetricsHub;
use crate::plan::Plan;
use crate::vu::Vu;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Lines for the person running the load, from a lifecycle hook: what was made
/// ready (`Ok`), or every reason the target is not ready (`Err`).
pub type HookResult = Result<Vec<String>, Vec<String>>;

/// A protocol family (HTTP, a database, a broker, …) as the engine sees it: one value per plan,
/// shared by every VU.
pub trait Protocol: Send + Sync + Debug + Any {
    /// A short name such as `http`.
    fn name(&self) -> &'static str;
    /// The fresh per-VU state (connections are opened lazily by the steps).
    fn new_vu_state(&self) -> Box<dyn Any + Send>;
    /// Called before each iteration, e.g. to clear a session's cookies.
    fn start_iteration(&self, _state: &mut (dyn Any + Send)) {}
    /// Before any load: connect, run setup, check what can be checked. An `Err`
    /// means the target is not available: the run sends nothing (exit 1), and
    /// still calls [`Protocol::finish`] on every protocol whose `prepare` ran.
    fn prepare<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// The load is about to start and records go to `hub`: the place for work
    /// that is not a VU's step but records figures for the whole run (a
    /// broker's consumers, reading a destination from start to end). Called
    /// once per run, after [`Protocol::prepare`] succeeded.
    fn load_starting(&self, _hub: &Arc<MetricsHub>) {}
    /// The load is over (every iteration has ended, the graceful stop
    /// included) and the run waits for this before its final figures are
    /// taken: the place to let late messages arrive for a grace period, then
    /// count what never did. Called once after each
    /// [`Protocol::load_starting`].
    fn load_ended(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// After the load, also after a failed `prepare` or an interrupted run: run
    /// teardown, close connections. An `Err` fails a run that had passed.
    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// What `loadline validate` says of this protocol's part of the plan (its
    /// databases, its setup), one line each.
    fn describe(&self) -> Vec<String> {
        Vec::new()
    }
    /// Notes for the run's summary about what happened since the last call
    /// (e.g. redirects that were not followed), one line each. Called once per
    /// summary, after its load.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A typed handle on one protocol's per-VU state: where the VU keeps it, and
/// its type. A protocol gets its slot once, when it joins the plan, and gives
/// it to each step it builds.
pub struct Slot<S> {
    index: usize,
    state: PhantomData<fn() -> S>,
}

impl<S> Slot<S> {
    /// The slot at `index` of the plan's protocols (the build context hands
    /// these out).
    pub const fn new(index: usize) -> Self {
        Self {
            index,
            state: PhantomData,
        }
    }

    pub const fn index(&self) -> usize {
        self.index
    }
}

impl<S> Clone for Slot<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Slot<S> {}

impl<S> Debug for Slot<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({})", self.index)
    }
}

/// What a step tells the VU to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Go on with the next step.
    Continue,
    /// Give up the rest of this iteration (no response, a failed capture).
    AbortIteration,
}

/// One executable step. It reports its samples to the VU's metrics itself. (A
/// step is `Any`, so that the protocol that built it can look inside it again,
/// e.g. for tests: `(step as &dyn Any).downcast_ref::<MyStep>()`.)
pub trait StepExec: Send + Sync + Debug + Any {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome>;
}
