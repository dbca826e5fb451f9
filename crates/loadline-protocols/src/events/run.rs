//! The run side of a broker's consumers, whatever the broker: where they
//! record (the hub of the run under way; none between the runs of a plan that
//! is run several times, as a capacity search does), the reading tasks and
//! how to stop them, and the end of the load: the grace period for late
//! messages, then the losses.
//!
//! A broker protocol opens its consumers in `prepare`, hands
//! [`Consumers::start`] the tasks that read them in `load_starting`, calls
//! [`Consumers::settle`] in `load_ended` and [`Consumers::stop`] in `finish`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use loadline_core::events::EventCount;
use loadline_core::metrics::MetricsHub;
use loadline_core::protocol::HookResult;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::track::{Destination, Producer, Producers};

/// How long a reading task may take to stop.
const STOP_WITHIN: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a reading task records: the hub of the run under way, if any.
#[derive(Debug, Clone, Default)]
pub struct Sink(Arc<Mutex<Option<Arc<MetricsHub>>>>);

impl Sink {
    /// The hub of the run under way.
    pub fn current(&self) -> Option<Arc<MetricsHub>> {
        lock(&self.0).clone()
    }

    /// Takes in a consumed message of `dest` (dropped between runs).
    pub fn received(&self, dest: &Destination, envelope: Option<&str>, payload: &[u8]) {
        if let Some(hub) = self.current() {
            dest.received(&hub, envelope, payload);
        }
    }

    /// Records the consumer lag the broker reported for `dest`.
    pub fn lag(&self, dest: &Destination, messages: u64) {
        if let Some(hub) = self.current() {
            hub.record_event(dest.group, EventCount::Lag, messages);
        }
    }

    fn set(&self, hub: Option<Arc<MetricsHub>>) {
        *lock(&self.0) = hub;
    }
}

struct Readers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// A protocol's destinations, producers and reading tasks.
pub struct Consumers {
    /// The destinations, in the scenario's order.
    pub dests: Vec<Arc<Destination>>,
    /// Every producer of the run.
    pub producers: Producers,
    /// The run's id, in every envelope.
    pub run: u64,
    /// Per destination, the pattern of the publishes that feed it.
    expects: Vec<Option<String>>,
    matches: fn(&str, &str) -> bool,
    grace: Duration,
    sink: Sink,
    readers: Mutex<Option<Readers>>,
}

impl std::fmt::Debug for Consumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumers")
            .field("dests", &self.dests.len())
            .field("expects", &self.expects)
            .finish_non_exhaustive()
    }
}

impl Consumers {
    /// `dests` with, for each, the pattern of what feeds it; `matches(pattern,
    /// to)` says whether a publish to `to` feeds a pattern.
    pub fn new(
        dests: Vec<(Arc<Destination>, Option<String>)>,
        matches: fn(&str, &str) -> bool,
        run: u64,
        grace: Duration,
    ) -> Self {
        let (dests, expects) = dests.into_iter().unzip();
        Self {
            dests,
            producers: Producers::default(),
            run,
            expects,
            matches,
            grace,
            sink: Sink::default(),
            readers: Mutex::new(None),
        }
    }

    /// The destination called `name`.
    pub fn dest(&self, name: &str) -> Option<&Arc<Destination>> {
        self.dests.iter().find(|d| d.name == name)
    }

    /// Counts a message `producer` sent to `to` (a subject, a topic, a
    /// routing key) as sent to every destination that expects it.
    pub fn sent(&self, hub: &MetricsHub, producer: &Producer, to: &str) {
        for (i, pattern) in self.expects.iter().enumerate() {
            if pattern.as_deref().is_some_and(|p| (self.matches)(p, to)) {
                producer.sent(i);
                if let Some(dest) = self.dests.get(i) {
                    hub.record_event(dest.group, EventCount::Sent, 1);
                }
            }
        }
    }

    /// Where reading tasks record.
    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// The load starts, recording into `hub`: the first time, `spawn` starts
    /// the reading tasks (each stops when the token is cancelled); a later
    /// run of the plan keeps them.
    pub fn start(
        &self,
        hub: &Arc<MetricsHub>,
        spawn: impl FnOnce(CancellationToken) -> Vec<JoinHandle<()>>,
    ) {
        self.sink.set(Some(hub.clone()));
        let mut readers = lock(&self.readers);
        if readers.is_none() {
            let stop = CancellationToken::new();
            let tasks = spawn(stop.clone());
            *readers = Some(Readers { stop, tasks });
        }
    }

    /// The load ended: waits the grace period for the messages still on
    /// their way (less, once everything sent has arrived), then counts the
    /// rest as lost. Returns the losses per destination.
    pub async fn settle(&self) -> Vec<u64> {
        let Some(hub) = self.sink.current() else {
            return Vec::new();
        };
        let start = Instant::now();
        while start.elapsed() < self.grace
            && self.dests.iter().any(|d| d.missing(&self.producers) > 0)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.sink.set(None);
        let lost: Vec<u64> = self
            .dests
            .iter()
            .map(|d| d.settle(&hub, &self.producers))
            .collect();
        tracing::debug!(?lost, "events: destinations settled");
        lost
    }

    /// What `prepare` says for protocol `key` (`nats`): the server (`what`,
    /// e.g. `the NATS server`) at `redacted` ready and the consumers
    /// `opened` (`open`, `subscribed`), or, when `connected` failed, why
    /// nothing was run.
    pub fn prepared(
        &self,
        key: &str,
        what: &str,
        redacted: &str,
        opened: &str,
        connected: Result<(), String>,
    ) -> HookResult {
        if let Err(line) = connected {
            return Err(vec![
                line,
                format!("{what} is not available: nothing was run"),
            ]);
        }
        let mut lines = vec![format!("{key}: ready: {redacted}")];
        if !self.dests.is_empty() {
            let names: Vec<&str> = self.dests.iter().map(|d| d.name.as_str()).collect();
            lines.push(format!("{key}: consumers {opened}: {}", names.join(", ")));
        }
        Ok(lines)
    }

    /// Stops the reading tasks.
    pub async fn stop(&self) {
        let readers = lock(&self.readers).take();
        if let Some(readers) = readers {
            readers.stop.cancel();
            for task in readers.tasks {
                let _ = tokio::time::timeout(STOP_WITHIN, task).await;
            }
        }
    }
}
