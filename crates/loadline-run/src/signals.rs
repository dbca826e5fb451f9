//! Ctrl-C and SIGTERM: the first stops new iterations and lets in-flight ones
//! finish within the graceful stop; a second one cuts them off.

use std::sync::Arc;
use std::time::Duration;

use loadline_core::runner::RunOptions;
use tokio_util::sync::CancellationToken;

use crate::Notify;

/// Run options whose tokens Ctrl-C (or SIGTERM) cancels: the first stops new
/// iterations, the second cuts in-flight ones off. Call inside the runtime.
pub fn interruptible(graceful: Duration, seed: Option<u64>, notify: Arc<dyn Notify>) -> RunOptions {
    let stop = CancellationToken::new();
    let kill = CancellationToken::new();
    tokio::spawn(watch_signals(stop.clone(), kill.clone(), graceful, notify));
    RunOptions {
        stop,
        kill,
        seed,
        ..RunOptions::default()
    }
}

async fn watch_signals(
    stop: CancellationToken,
    kill: CancellationToken,
    graceful: Duration,
    notify: Arc<dyn Notify>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for signals; Ctrl-C will end loadline without a summary");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    notify.notice(&format!(
        "\nstopping: no new iterations; in-flight ones get up to {} to finish (signal again to cut them off)",
        loadline_core::duration::format_duration(graceful)
    ));
    stop.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    notify.notice("\ncutting off in-flight iterations");
    kill.cancel();
}
