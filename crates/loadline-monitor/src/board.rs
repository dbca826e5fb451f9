//! The board where samplers post their latest values and their warnings, and where
//! the aggregator reads them once a tick. Each sampler owns one slot and replaces
//! its whole content at every sample, so a series that stops existing (a process
//! that exited, an endpoint that stopped answering) leaves the snapshot at once.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use loadline_core::monitor::MonitorValue;

/// Shared between the samplers' tasks and [`crate::Monitors`].
#[derive(Debug, Default)]
pub(crate) struct Board {
    slots: Mutex<Vec<Vec<MonitorValue>>>,
    warnings: Mutex<Vec<String>>,
    /// Set once loadline itself was seen near CPU saturation.
    pub(crate) saturation_seen: Arc<AtomicBool>,
}

/// Locks a mutex, going on with the data when a panicking holder poisoned it (every
/// writer replaces whole values, so the data is never half-written).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Board {
    /// A new, empty slot for one sampler.
    pub(crate) fn slot(self: &Arc<Self>) -> Slot {
        let mut slots = lock(&self.slots);
        slots.push(Vec::new());
        Slot {
            board: Arc::clone(self),
            index: slots.len() - 1,
        }
    }

    pub(crate) fn warn(&self, message: String) {
        lock(&self.warnings).push(message);
    }

    pub(crate) fn snapshot(&self) -> Vec<MonitorValue> {
        lock(&self.slots).iter().flatten().cloned().collect()
    }

    pub(crate) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.warnings))
    }
}

/// One sampler's place on the board.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    board: Arc<Board>,
    index: usize,
}

impl Slot {
    /// Replaces this sampler's values with `values`.
    pub(crate) fn publish(&self, values: Vec<MonitorValue>) {
        if let Some(slot) = lock(&self.board.slots).get_mut(self.index) {
            *slot = values;
        }
    }

    pub(crate) fn warn(&self, message: String) {
        tracing::debug!(%message, "monitor warning");
        self.board.warn(message);
    }
}

/// Remembers which problems are being reported, so that each is told once per
/// streak: again only after it cleared and came back.
#[derive(Debug, Default)]
pub(crate) struct Latch {
    active: HashSet<String>,
}

impl Latch {
    /// Pushes the message for problem `key` onto `warnings` unless that problem is
    /// already reported.
    pub(crate) fn raise(
        &mut self,
        key: &str,
        warnings: &mut Vec<String>,
        message: impl FnOnce() -> String,
    ) {
        if !self.active.contains(key) {
            self.active.insert(key.to_owned());
            warnings.push(message());
        }
    }

    /// The problem `key` is over; returns whether it was being reported.
    pub(crate) fn clear(&mut self, key: &str) -> bool {
        self.active.remove(key)
    }
}

/// A series key: `name`, then `{k=v,...}` when there are labels.
pub(crate) fn series_key<'a>(
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut key = String::from(name);
    let mut first = true;
    for (k, v) in labels {
        key.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(key, "{k}={v}");
    }
    if !first {
        key.push('}');
    }
    key
}

/// A value for `series`, or none when it is not a finite number (outputs write
/// numbers only).
pub(crate) fn value(series: String, value: f64) -> Option<MonitorValue> {
    value.is_finite().then_some(MonitorValue { series, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_labels_in_braces_only_when_there_are_labels() {
        assert_eq!(series_key("host.load1", []), "host.load1");
        assert_eq!(
            series_key("process.rss_bytes", [("pid", "12"), ("name", "nginx")]),
            "process.rss_bytes{pid=12,name=nginx}"
        );
    }

    #[test]
    fn a_problem_is_told_once_per_streak() {
        let mut latch = Latch::default();
        let mut out = Vec::new();
        latch.raise("a", &mut out, || "first".into());
        latch.raise("a", &mut out, || "again".into());
        assert_eq!(out, ["first"]);
        assert!(latch.clear("a"));
        assert!(!latch.clear("a"));
        latch.raise("a", &mut out, || "back".into());
        assert_eq!(out, ["first", "back"]);
    }

    #[test]
    fn slots_replace_their_values_and_warnings_are_taken_once() {
        let board = Arc::new(Board::default());
        let a = board.slot();
        let b = board.slot();
        a.publish(vec![MonitorValue {
            series: "a".into(),
            value: 1.0,
        }]);
        b.publish(vec![MonitorValue {
            series: "b".into(),
            value: 2.0,
        }]);
        a.publish(Vec::new());
        assert_eq!(board.snapshot().len(), 1);
        a.warn("careful".into());
        assert_eq!(board.take_warnings(), ["careful"]);
        assert!(board.take_warnings().is_empty());
    }

    #[test]
    fn non_finite_values_are_dropped() {
        assert!(value("x".into(), f64::NAN).is_none());
        assert!(value("x".into(), f64::INFINITY).is_none());
        assert!(value("x".into(), 0.5).is_some());
    }
}
