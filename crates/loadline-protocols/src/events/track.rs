//! A destination's bookkeeping, whatever the broker.
//!
//! Producers: each VU's publish step is a [`Producer`] of its own, numbering
//! its messages 1, 2, 3…; as a VU publishes one message at a time, its
//! numbers leave in order. A producer counts, per destination, the messages
//! it sent there (a destination says which subjects it expects).
//!
//! A [`Destination`] reads each consumed message's envelope: a number already
//! seen from that producer is a duplicate, a number below the producer's
//! highest one seen arrived out of order. After the load and its grace
//! period, what each producer sent there and never arrived is lost: sent
//! minus distinct numbers received, per producer. Messages of another run (a
//! durable consumer's leftovers) are left out; messages without an envelope
//! count as received, without a latency.
//!
//! A `wait_for_event` step waits on a destination for the message whose
//! payload holds a value at a JSONPath (or that carries the envelope of the
//! VU's last publish): messages that arrive before anyone waits are kept for
//! a while (at most [`RECENT`] of them, for [`KEEP`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use loadline_core::events::EventCount;
use loadline_core::metrics::{GroupId, MetricsHub};
use serde_json_path::JsonPath;
use tokio::sync::oneshot;

use super::envelope::{now_micros, Envelope};

/// Messages kept for a wait that has not started yet, at most.
pub const RECENT: usize = 100_000;
/// And for at most this long.
pub const KEEP: Duration = Duration::from_secs(60);
/// The matcher index of envelope matching.
const ENVELOPE: u32 = u32::MAX;

/// One producer: a VU's publish step.
#[derive(Debug)]
pub struct Producer {
    pub id: u64,
    /// Messages sent, per destination (by index).
    sent_to: Vec<AtomicU64>,
}

impl Producer {
    /// Counts a message sent towards destination `dest`.
    pub fn sent(&self, dest: usize) {
        if let Some(n) = self.sent_to.get(dest) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sent_to(&self, dest: usize) -> u64 {
        self.sent_to
            .get(dest)
            .map_or(0, |n| n.load(Ordering::Relaxed))
    }
}

/// Every producer of a run.
#[derive(Debug, Default)]
pub struct Producers {
    next: AtomicU64,
    all: Mutex<Vec<Arc<Producer>>>,
}

impl Producers {
    /// A new producer, counting towards `dests` destinations.
    pub fn add(&self, dests: usize) -> Arc<Producer> {
        let producer = Arc::new(Producer {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            sent_to: (0..dests).map(|_| AtomicU64::new(0)).collect(),
        });
        lock(&self.all).push(producer.clone());
        producer
    }

    fn all(&self) -> Vec<Arc<Producer>> {
        lock(&self.all).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a wait matches: a matcher's index and the value, as text.
type Key = (u32, String);

/// The numbers seen from one producer.
#[derive(Debug, Default)]
struct Seen {
    bits: Vec<u64>,
    highest: u64,
    distinct: u64,
}

impl Seen {
    /// Notes `seq`; says whether it was new and whether it came late.
    fn note(&mut self, seq: u64) -> (bool, bool) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if self.bits[word] & mask != 0 {
            return (false, false);
        }
        self.bits[word] |= mask;
        self.distinct += 1;
        let late = seq < self.highest;
        self.highest = self.highest.max(seq);
        (true, late)
    }
}

#[derive(Debug, Default)]
struct State {
    seen: HashMap<u64, Seen>,
    recent: HashMap<Key, Instant>,
    order: VecDeque<(Key, Instant)>,
    waiters: HashMap<Key, Vec<oneshot::Sender<Instant>>>,
}

/// What a wait found.
#[derive(Debug)]
pub enum Waiting {
    /// The message had arrived already, at this instant.
    Arrived(Instant),
    /// Not yet: the receiver gets its arrival.
    Pending(oneshot::Receiver<Instant>),
}

/// One destination consumers read for the whole run.
#[derive(Debug)]
pub struct Destination {
    /// Its name, as `{dest:NAME}`.
    pub name: String,
    /// Its metric group (kind `events`).
    pub group: GroupId,
    /// Its index among the protocol's destinations (a producer's counts).
    pub index: usize,
    run: u64,
    /// The JSONPaths waits match on (declared while building).
    matchers: Mutex<Vec<JsonPath>>,
    by_envelope: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
    /// The messages already counted as lost (by earlier runs of the plan).
    settled: AtomicU64,
}

impl Destination {
    pub fn new(name: String, group: GroupId, index: usize, run: u64) -> Self {
        Self {
            name,
            group,
            index,
            run,
            matchers: Mutex::new(Vec::new()),
            by_envelope: Default::default(),
            state: Mutex::new(State::default()),
            settled: AtomicU64::new(0),
        }
    }

    /// Declares a JSONPath waits match on; gives its matcher.
    pub fn matcher(&self, path: JsonPath) -> u32 {
        let mut all = lock(&self.matchers);
        if let Some(i) = all.iter().position(|p| p.to_string() == path.to_string()) {
            return i as u32;
        }
        all.push(path);
        (all.len() - 1) as u32
    }

    /// Declares that waits match by envelope.
    pub fn match_envelopes(&self) {
        self.by_envelope.store(true, Ordering::Relaxed);
    }

    /// The key of a wait on `matcher` for `value`.
    pub fn key(matcher: u32, value: String) -> (u32, String) {
        (matcher, value)
    }

    /// The key of a wait for the message of `producer`'s `seq`.
    pub fn envelope_key(producer: u64, seq: u64) -> (u32, String) {
        (ENVELOPE, format!("{producer:x}-{seq:x}"))
    }

    /// Takes in one consumed message: its envelope header's value (if any)
    /// and its payload. Records it in `hub`.
    pub fn received(&self, hub: &MetricsHub, envelope: Option<&str>, payload: &[u8]) {
        let now = Instant::now();
        let envelope = envelope.and_then(Envelope::parse);
        if envelope.is_some_and(|e| e.run != self.run) {
            return;
        }
        let latency = envelope.map(|e| e.age(now_micros()));
        let mut keys = Vec::new();
        let matchers = lock(&self.matchers);
        if !matchers.is_empty() {
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(payload) {
                for (i, path) in matchers.iter().enumerate() {
                    if let Some(v) = path.query(&doc).first() {
                        keys.push((i as u32, value_text(v)));
                    }
                }
            }
        }
        drop(matchers);
        if let Some(e) = envelope.filter(|_| self.by_envelope.load(Ordering::Relaxed)) {
            keys.push(Self::envelope_key(e.producer, e.seq));
        }
        let mut state = lock(&self.state);
        if let Some(e) = envelope {
            let (new, late) = state.seen.entry(e.producer).or_default().note(e.seq);
            if !new {
                hub.record_event(self.group, EventCount::Duplicated, 1);
            } else if late {
                hub.record_event(self.group, EventCount::OutOfOrder, 1);
            }
        }
        hub.record_received(self.group, latency, payload.len() as u64);
        for key in keys {
            state.arrived(key, now);
        }
    }

    /// Starts waiting for the message of `key`.
    pub fn wait(&self, key: (u32, String)) -> Waiting {
        let mut state = lock(&self.state);
        if let Some(at) = state.recent.remove(&key) {
            return Waiting::Arrived(at);
        }
        let (tx, rx) = oneshot::channel();
        state.waiters.entry(key).or_default().push(tx);
        Waiting::Pending(rx)
    }

    /// Forgets the waits for `key` that gave up.
    pub fn gave_up(&self, key: &(u32, String)) {
        let mut state = lock(&self.state);
        if let Some(list) = state.waiters.get_mut(key) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                state.waiters.remove(key);
            }
        }
    }

    /// Messages `producers` sent here that have not arrived (yet).
    pub fn missing(&self, producers: &Producers) -> u64 {
        let state = lock(&self.state);
        producers
            .all()
            .iter()
            .map(|p| {
                let got = state.seen.get(&p.id).map_or(0, |s| s.distinct);
                p.sent_to(self.index).saturating_sub(got)
            })
            .sum()
    }

    /// Records what never arrived as lost (what an earlier run of the plan
    /// counted already, left out).
    pub fn settle(&self, hub: &MetricsHub, producers: &Producers) -> u64 {
        let missing = self.missing(producers);
        let before = self.settled.swap(missing, Ordering::Relaxed);
        let lost = missing.saturating_sub(before);
        if lost > 0 {
            hub.record_event(self.group, EventCount::Lost, lost);
        }
        lost
    }
}

impl State {
    fn arrived(&mut self, key: Key, at: Instant) {
        if let Some(list) = self.waiters.remove(&key) {
            for tx in list {
                let _ = tx.send(at);
            }
            return;
        }
        while let Some((_, t)) = self.order.front() {
            if self.order.len() < RECENT && at.duration_since(*t) < KEEP {
                break;
            }
            if let Some((old, t)) = self.order.pop_front() {
                if self.recent.get(&old) == Some(&t) {
                    self.recent.remove(&old);
                }
            }
        }
        self.recent.insert(key.clone(), at);
        self.order.push_back((key, at));
    }
}

/// A matched value as text: a string as it is, anything else as JSON.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadline_core::metrics::Shape;

    fn header(run: u64, producer: u64, seq: u64) -> String {
        let mut out = String::new();
        Envelope {
            run,
            producer,
            seq,
            sent_micros: now_micros(),
        }
        .write(&mut out);
        out
    }

    #[test]
    fn duplicates_late_messages_and_losses_are_counted_per_producer() {
        let hub = MetricsHub::new(Shape::new(1, 1));
        let producers = Producers::default();
        let dest = Destination::new("d".into(), 0, 0, 9);
        let (a, b) = (producers.add(1), producers.add(1));
        for _ in 0..5 {
            a.sent(0);
            b.sent(0);
        }
        // a: 1 2 4 3 3 (5 lost); b: 1..=5 in order, one of another run, one bare.
        for seq in [1, 2, 4, 3, 3] {
            dest.received(&hub, Some(&header(9, a.id, seq)), b"{}");
        }
        for seq in 1..=5 {
            dest.received(&hub, Some(&header(9, b.id, seq)), b"{}");
        }
        dest.received(&hub, Some(&header(8, b.id, 6)), b"{}");
        dest.received(&hub, None, b"{}");
        assert_eq!(dest.missing(&producers), 1);
        assert_eq!(dest.settle(&hub, &producers), 1);
        // A later run of the plan counts only its own losses.
        a.sent(0);
        assert_eq!(dest.settle(&hub, &producers), 1);
        assert_eq!(dest.settle(&hub, &producers), 0);
        let e = hub.collect().groups[0].events;
        assert_eq!(
            (e.received, e.duplicated, e.out_of_order, e.lost),
            (11, 1, 1, 2)
        );
    }

    #[test]
    fn waits_match_values_that_arrive_before_or_after() {
        let hub = MetricsHub::new(Shape::new(1, 1));
        let dest = Destination::new("d".into(), 0, 0, 1);
        let m = dest.matcher(JsonPath::parse("$.order_id").unwrap());
        dest.received(&hub, None, br#"{"order_id": 17}"#);
        assert!(matches!(
            dest.wait(Destination::key(m, "17".into())),
            Waiting::Arrived(_)
        ));
        let Waiting::Pending(mut rx) = dest.wait(Destination::key(m, "18".into())) else {
            panic!("18 has not arrived");
        };
        assert!(rx.try_recv().is_err());
        dest.received(&hub, None, br#"{"order_id": "18"}"#);
        assert!(rx.try_recv().is_ok());
    }
}
