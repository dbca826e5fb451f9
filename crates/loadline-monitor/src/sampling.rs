//! Drives a sampler that reads `/proc` on an interval. Each sample runs on tokio's
//! blocking pool, so the runtime's workers (which drive the load) never wait on a
//! file read; a sample that takes longer than the interval (and a second) is
//! reported once per streak, and the next one starts only when it is done.

use std::time::Duration;

use loadline_core::monitor::MonitorValue;
use tokio::runtime::Handle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::board::Slot;

/// A monitor that takes one sample at a time by blocking reads.
pub(crate) trait BlockingSampler: Send + 'static {
    /// Names the monitor in warnings, e.g. `host monitor`.
    fn what(&self) -> &'static str;
    /// Takes one sample: pushes its values onto `out`, its problems onto `warnings`.
    fn sample(&mut self, out: &mut Vec<MonitorValue>, warnings: &mut Vec<String>);
}

/// Starts `sampler` on its own task: a sample every `every` until `stop`.
pub(crate) fn spawn<S: BlockingSampler>(
    runtime: &Handle,
    sampler: S,
    slot: Slot,
    every: Duration,
    stop: CancellationToken,
) {
    runtime.spawn(drive(sampler, slot, every, stop));
}

async fn drive<S: BlockingSampler>(
    mut sampler: S,
    slot: Slot,
    every: Duration,
    stop: CancellationToken,
) {
    let what = sampler.what();
    // A sample is late only past the interval, and worth a warning only past a
    // second (at short intervals a busy machine is often a little late).
    let patience = every.max(Duration::from_secs(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut slow = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                tracing::debug!(monitor = %what, "monitor stopped");
                return;
            }
            _ = ticker.tick() => {}
        }
        let mut job = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut warnings = Vec::new();
            sampler.sample(&mut out, &mut warnings);
            (sampler, out, warnings)
        });
        let timed = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            timed = tokio::time::timeout(patience, &mut job) => timed,
        };
        let finished = match timed {
            Ok(finished) => {
                slow = false;
                finished
            }
            Err(_) => {
                if !slow {
                    slow = true;
                    slot.warn(format!(
                        "{what}: one sample took longer than {patience:?}; \
                         its values will be late"
                    ));
                }
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    finished = &mut job => finished,
                }
            }
        };
        match finished {
            Ok((back, out, warnings)) => {
                sampler = back;
                slot.publish(out);
                for warning in warnings {
                    slot.warn(warning);
                }
            }
            Err(error) => {
                tracing::debug!(monitor = %what, %error, "monitor sampler failed");
                slot.publish(Vec::new());
                slot.warn(format!("{what} stopped: {error}"));
                return;
            }
        }
    }
}
