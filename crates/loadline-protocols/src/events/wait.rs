//! The `wait_for_event` step, whatever the broker: waits on a destination
//! for the message that concerns this VU, timed from the step's start to
//! the message's arrival (zero when it came before the step began).

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadline_core::cache::CacheOutcome;
use loadline_core::metrics::{ErrorKind, GroupId, RequestSample};
use loadline_core::protocol::{BoxFuture, Slot, StepExec, StepOutcome};
use loadline_core::template::Template;
use loadline_core::vu::Vu;

use super::track::{value_text, Destination, Waiting};
use super::vu::VuEvents;

/// Which message a wait is for.
#[derive(Debug)]
pub enum Wanted {
    /// The value at a matcher's JSONPath, rendered.
    Value { matcher: u32, equals: Template },
    /// The envelope of the VU's last publish.
    Envelope,
}

/// A `wait_for_event` step.
#[derive(Debug)]
pub struct WaitStep {
    pub slot: Slot<VuEvents>,
    pub group: GroupId,
    pub dest: Arc<Destination>,
    pub wanted: Wanted,
    pub timeout: Duration,
}

fn outcome(group: GroupId, latency: Duration, failed: Option<ErrorKind>) -> RequestSample {
    RequestSample {
        group,
        latency,
        status: None,
        failed: failed.is_some(),
        error: failed.map(Into::into),
        bytes_sent: 0,
        bytes_received: 0,
        cache: CacheOutcome::None,
    }
}

impl StepExec for WaitStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let Some((vars, state, hub)) = vu.parts_for(self.slot, self.group) else {
                return StepOutcome::AbortIteration;
            };
            let key = match &self.wanted {
                Wanted::Value { matcher, equals } => {
                    let v = equals.eval(vars);
                    Destination::key(*matcher, value_text(&v))
                }
                Wanted::Envelope => match state.last_sent {
                    Some((producer, seq)) => Destination::envelope_key(producer, seq),
                    None => {
                        hub.record_request(&RequestSample::unsent(self.group, ErrorKind::Other));
                        return StepOutcome::AbortIteration;
                    }
                },
            };
            let arrived = match self.dest.wait(key.clone()) {
                Waiting::Arrived(_) => Some(started),
                Waiting::Pending(rx) => match tokio::time::timeout(self.timeout, rx).await {
                    Ok(Ok(at)) => Some(at),
                    _ => None,
                },
            };
            let Some(at) = arrived else {
                self.dest.gave_up(&key);
                hub.record_request(&outcome(
                    self.group,
                    started.elapsed(),
                    Some(ErrorKind::Timeout),
                ));
                return StepOutcome::AbortIteration;
            };
            hub.record_request(&outcome(
                self.group,
                at.saturating_duration_since(started),
                None,
            ));
            StepOutcome::Continue
        })
    }
}
