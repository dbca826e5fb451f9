//! The protocols' lifecycle around a load: every protocol of the plan is
//! prepared, in order, before the load (connect, setup, checks); when one is
//! not ready, nothing is sent. After the load — also after a failed preparation
//! or an interrupted run — every protocol that was prepared is finished
//! (teardown, close).

use std::future::Future;

use loadline_core::plan::Plan;

use crate::Interrupt;

/// A load that ran, and what the protocols' `finish` said.
#[derive(Debug)]
pub struct Around<T> {
    pub outcome: T,
    /// What the protocols made ready before the load, one line each.
    pub ready: Vec<String>,
    /// Why a protocol's `finish` failed (teardown); the run's outcome stands,
    /// but a passing run should not pass.
    pub finish_errors: Vec<String>,
}

/// The protocols were not ready for the load, or a signal came while they were
/// being prepared: nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// Every reason, then what their `finish` said.
    pub lines: Vec<String>,
    /// A signal stopped the preparation (the run is interrupted, not failed).
    pub interrupted: bool,
}

/// Runs `load` between the preparation of every protocol of `plan` and their
/// finish. `on_ready` gets what was made ready, before the load starts. A first
/// signal (`interrupt.stop`) during the preparation abandons it; a second one
/// (`interrupt.kill`) cuts the finish short.
pub async fn around<T>(
    plan: &Plan,
    interrupt: &Interrupt,
    on_ready: impl FnOnce(&[String]),
    load: impl Future<Output = T>,
) -> Result<Around<T>, NotReady> {
    let mut ready = Vec::new();
    let mut prepared = 0;
    let mut failed = None;
    let mut interrupted = false;
    for protocol in &plan.protocols {
        prepared += 1;
        tracing::debug!(protocol = %protocol.name(), "preparing the protocol");
        let outcome = tokio::select! {
            outcome = protocol.prepare(plan) => outcome,
            _ = interrupt.stop.cancelled() => {
                interrupted = true;
                Err(vec!["interrupted while the protocols were being prepared: nothing was sent".into()])
            }
        };
        match outcome {
            Ok(lines) => {
                tracing::debug!(protocol = %protocol.name(), "the protocol is ready");
                ready.extend(lines)
            }
            Err(lines) => {
                tracing::debug!(protocol = %protocol.name(), interrupted, "the protocol is not ready: nothing will be sent");
                failed = Some(lines);
                break;
            }
        }
    }
    let outcome = match failed {
        None => {
            on_ready(&ready);
            Some(load.await)
        }
        Some(_) => None,
    };
    let mut finish_errors = Vec::new();
    for protocol in plan.protocols.iter().take(prepared) {
        tracing::debug!(protocol = %protocol.name(), "finishing the protocol");
        let finished = tokio::select! {
            finished = protocol.finish() => finished,
            _ = interrupt.kill.cancelled() => {
                Err(vec![format!("`{}`: finishing was cut short by a second signal", protocol.name())])
            }
        };
        if let Err(lines) = finished {
            finish_errors.extend(lines);
        }
    }
    match (outcome, failed) {
        (Some(outcome), _) => Ok(Around {
            outcome,
            ready,
            finish_errors,
        }),
        (None, failed) => {
            let mut lines = failed.unwrap_or_default();
            lines.extend(finish_errors);
            Err(NotReady { lines, interrupted })
        }
    }
}
