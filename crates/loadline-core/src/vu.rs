//! A virtual user: its template variables, its per-protocol states and a handle on
//! the run's metrics. A VU is a plain struct driven by one task at a time.

use std::any::Any;
use std::sync::Arc;

use crate::metrics::{ErrorKind, GroupId, MetricsHub, RequestSample};
use crate::plan::Plan;
use crate::protocol::Slot;
use crate::template::Vars;

/// One virtual user.
pub struct Vu {
    pub id: u64,
    pub vars: Vars,
    pub states: Vec<Box<dyn Any + Send>>,
    pub metrics: Arc<MetricsHub>,
}

impl std::fmt::Debug for Vu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vu")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Vu {
    pub fn new(plan: &Plan, id: u64, metrics: Arc<MetricsHub>, seed: u64) -> Self {
        Self {
            id,
            vars: Vars::new(plan.capture_slots, plan.feeders.clone(), id, seed),
            states: plan.protocols.iter().map(|p| p.new_vu_state()).collect(),
            metrics,
        }
    }

    /// Splits the VU into its variables, the state in `slot` and its metrics, so
    /// a step can render templates while holding its connection. `None` only for
    /// a plan whose protocols are not the ones its steps were built with.
    pub fn parts<S: 'static>(&mut self, slot: Slot<S>) -> Option<(&mut Vars, &mut S, &MetricsHub)> {
        let state = self.states.get_mut(slot.index())?.downcast_mut::<S>()?;
        Some((&mut self.vars, state, &self.metrics))
    }

    /// [`Vu::parts`] for a step of metric group `group`; when the plan pairs the
    /// step with another protocol's state, the step counts as unsent (error
    /// `other`) and `None` tells it to give up the iteration.
    pub fn parts_for<S: 'static>(
        &mut self,
        slot: Slot<S>,
        group: GroupId,
    ) -> Option<(&mut Vars, &mut S, &MetricsHub)> {
        let fits = self.states.get(slot.index()).is_some_and(|s| s.is::<S>());
        if !fits {
            self.metrics
                .record_request(&RequestSample::unsent(group, ErrorKind::Other));
            return None;
        }
        self.parts(slot)
    }
}
