//! The protocols' lifecycle around a load: every protocol of the plan is
//! prepared, in order, before the load (connect, setup, checks); when one is
//! not ready, nothing is sent. After the load — also after a failed preparation
//! or an interrupted run — every protocol that was prepared is finished
//! (teardown, close).

use std::future::Future;

use loadline_core::plan::Plan;

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

/// The protocols were not ready for the load: nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// Every reason, then what their `finish` said.
    pub lines: Vec<String>,
}

/// Runs `load` between the preparation of every protocol of `plan` and their
/// finish. `on_ready` gets what was made ready, before the load starts.
pub async fn around<T>(
    plan: &Plan,
    on_ready: impl FnOnce(&[String]),
    load: impl Future<Output = T>,
) -> Result<Around<T>, NotReady> {
    let mut ready = Vec::new();
    let mut prepared = 0;
    let mut failed = None;
    for protocol in &plan.protocols {
        prepared += 1;
        match protocol.prepare(plan).await {
            Ok(lines) => ready.extend(lines),
            Err(lines) => {
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
        if let Err(lines) = protocol.finish().await {
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
            Err(NotReady { lines })
        }
    }
}
