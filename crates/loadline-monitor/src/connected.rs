//! Drives a monitor that samples a server over a connection of its own (a
//! database's statistics, Redis' `INFO`): it connects when it has no
//! connection, bounds each connect and sample by a timeout, and after a
//! failure starts again on a fresh connection with fresh rates. A failed
//! sample publishes no values and warns once per streak of failures.

use std::time::Duration;

use loadline_core::monitor::MonitorValue;
use loadline_core::protocol::BoxFuture;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::board::Slot;

/// A monitor that samples a server over a connection of its own (a database,
/// Redis): it connects when it has no connection, and after a failed sample
/// starts again on a fresh connection with fresh rates.
pub(crate) trait ConnectedSampler: Send {
    type Conn: Send;
    /// Names the monitor in warnings, e.g. ``redis monitor `cache` (…)``.
    fn what(&self) -> String;
    /// What the log says when the server answers again after failures.
    fn answers_again(&self) -> &'static str;
    /// Opens a connection; an error's text is safe to print (no secrets).
    fn connect(&self) -> BoxFuture<'_, Result<Self::Conn, String>>;
    /// Takes one sample over `conn`: the values it gives (rates against the
    /// previous sample); an error's text is safe to print.
    fn sample<'a>(
        &'a mut self,
        conn: &'a mut Self::Conn,
    ) -> BoxFuture<'a, Result<Vec<MonitorValue>, String>>;
    /// Forgets the previous sample (after a failure, rates start again).
    fn reset(&mut self);
    /// Closes a connection that is no longer used.
    fn close(_conn: Self::Conn) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Samples every `every` until `stop`, each connect and sample bounded by
/// `timeout`; a failure publishes no values and warns once per streak.
pub(crate) async fn drive_connected<S: ConnectedSampler>(
    mut sampler: S,
    slot: Slot,
    every: Duration,
    timeout: Duration,
    stop: CancellationToken,
) {
    let what = sampler.what();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut conn: Option<S::Conn> = None;
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let mut current = match conn.take() {
            Some(c) => c,
            None => {
                let opened = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    opened = tokio::time::timeout(timeout, sampler.connect()) => opened,
                };
                match opened {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        failed(&slot, &mut failing, &what, &format!("cannot connect: {e}"));
                        continue;
                    }
                    Err(_) => {
                        let problem = format!("no connection within {timeout:?}");
                        failed(&slot, &mut failing, &what, &problem);
                        continue;
                    }
                }
            }
        };
        let sampled = tokio::select! {
            biased;
            () = stop.cancelled() => {
                S::close(current).await;
                break;
            }
            sampled = tokio::time::timeout(timeout, sampler.sample(&mut current)) => sampled,
        };
        match sampled {
            Ok(Ok(values)) => {
                if failing {
                    failing = false;
                    tracing::info!(monitor = %what, "{}", sampler.answers_again());
                }
                slot.publish(values);
                conn = Some(current);
            }
            Ok(Err(e)) => {
                failed(&slot, &mut failing, &what, &format!("sample failed: {e}"));
                sampler.reset();
            }
            Err(_) => {
                let problem = format!("no answer within {timeout:?}");
                failed(&slot, &mut failing, &what, &problem);
                sampler.reset();
            }
        }
    }
    if let Some(c) = conn {
        S::close(c).await;
    }
}

/// A failed sample: no values this interval, and a warning at the start of a
/// streak of failures.
fn failed(slot: &Slot, failing: &mut bool, what: &str, problem: &str) {
    tracing::trace!(monitor = %what, %problem, "monitor sample failed");
    slot.publish(Vec::new());
    if !*failing {
        *failing = true;
        slot.warn(format!(
            "{what}: {problem} (will keep trying each interval; the load goes on)"
        ));
    }
}
