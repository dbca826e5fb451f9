//! Ctrl-C, SIGTERM and SIGHUP, from the first moment of a run: the first stops
//! whatever is under way — the protocols' preparation (setup is abandoned) or
//! the load (no new iterations; in-flight ones finish within the graceful stop) —
//! and a second one cuts short what is left: in-flight iterations, or teardown.

use std::sync::Arc;
use std::time::Duration;

use loadline_core::runner::RunOptions;
use tokio_util::sync::CancellationToken;

use crate::Notify;

/// The tokens the signals cancel: `stop` on the first, `kill` on the second.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    pub stop: CancellationToken,
    pub kill: CancellationToken,
}

impl Interrupt {
    /// Tokens no signal cancels (for runs driven by a program).
    pub fn never() -> Self {
        Self::default()
    }

    /// Run options with these tokens.
    pub fn run_options(&self, seed: Option<u64>) -> RunOptions {
        RunOptions {
            stop: self.stop.clone(),
            kill: self.kill.clone(),
            seed,
            ..RunOptions::default()
        }
    }
}

/// Starts listening for SIGINT, SIGTERM and SIGHUP. Call inside the runtime,
/// before anything that a signal should interrupt (the protocols' preparation).
pub fn watch_signals(graceful: Duration, notify: Arc<dyn Notify>) -> Interrupt {
    let interrupt = Interrupt::default();
    tokio::spawn(watch(interrupt.clone(), graceful, notify));
    interrupt
}

/// [`watch_signals`], as run options.
pub fn interruptible(graceful: Duration, seed: Option<u64>, notify: Arc<dyn Notify>) -> RunOptions {
    watch_signals(graceful, notify).run_options(seed)
}

async fn watch(interrupt: Interrupt, graceful: Duration, notify: Arc<dyn Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for signals; Ctrl-C will end loadline without a summary");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
    notify.notice(&format!(
        "\nstopping: no new iterations; in-flight ones get up to {} to finish (signal again to cut them off)",
        loadline_core::duration::format_duration(graceful)
    ));
    interrupt.stop.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
    notify.notice("\ncutting off what is still running");
    interrupt.kill.cancel();
}
