//! The seam between the engine and the protocols. A protocol gives each VU a state
//! of its own (its connections, its cookie jar) and builds step executors; the
//! engine runs the executors in order and never looks inside them.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use crate::vu::Vu;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A protocol family (HTTP, SQL, …) as the engine sees it.
pub trait Protocol: Send + Sync + Debug {
    /// A short name such as `http`.
    fn name(&self) -> &'static str;
    /// The fresh per-VU state (connections are opened lazily by the steps).
    fn new_vu_state(&self) -> Box<dyn Any + Send>;
    /// Called before each iteration, e.g. to clear a session's cookies.
    fn start_iteration(&self, _state: &mut (dyn Any + Send)) {}
}

/// What a step tells the VU to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Go on with the next step.
    Continue,
    /// Give up the rest of this iteration (no response, a failed capture).
    AbortIteration,
}

/// One executable step. It reports its samples to the VU's metrics itself.
pub trait StepExec: Send + Sync + Debug {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome>;
}
