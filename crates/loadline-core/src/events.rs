//! The figures of event-driven load, shared by every broker protocol.
//!
//! Each destination that consumers read for the whole run (a subject, a
//! durable consumer, a queue) is a metric group of kind
//! [`crate::plan::EVENTS_KIND`]. Its latency histogram holds each received
//! message's time end to end, from its producer's send to its receipt (both
//! in this process, so on one clock), and its [`EventCounts`] say how many
//! messages the producers sent towards it, how many arrived, how many
//! arrived twice or out of their producer's order, and how many never
//! arrived within the grace period after the load.

use serde::Serialize;

/// One of a destination's counts, as a protocol records it
/// ([`crate::metrics::MetricsHub::record_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventCount {
    /// Messages published towards the destination (counted by producers, at
    /// the publish or its acknowledgement).
    Sent,
    /// Messages received again (the same producer and sequence number).
    Duplicated,
    /// Messages received after a later one of the same producer.
    OutOfOrder,
    /// Messages sent and not received by the end of the grace period.
    Lost,
    /// Messages the broker holds for the consumer, not yet delivered (the
    /// highest value read is kept).
    Lag,
}

/// The counts of one event destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    pub sent: u64,
    /// Every message received, duplicates included.
    pub received: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub lost: u64,
    /// The highest consumer lag the broker reported (`None`: never read).
    pub lag_max: Option<u64>,
}

impl EventCounts {
    /// Adds `n` to `count` (for [`EventCount::Lag`], keeps the higher value).
    pub fn add(&mut self, count: EventCount, n: u64) {
        match count {
            EventCount::Sent => self.sent += n,
            EventCount::Duplicated => self.duplicated += n,
            EventCount::OutOfOrder => self.out_of_order += n,
            EventCount::Lost => self.lost += n,
            EventCount::Lag => self.lag_max = Some(self.lag_max.map_or(n, |l| l.max(n))),
        }
    }

    /// Adds another span's counts to these.
    pub fn merge(&mut self, o: &EventCounts) {
        self.sent += o.sent;
        self.received += o.received;
        self.duplicated += o.duplicated;
        self.out_of_order += o.out_of_order;
        self.lost += o.lost;
        if let Some(l) = o.lag_max {
            self.add(EventCount::Lag, l);
        }
    }

    /// Whether anything was counted.
    pub fn seen(&self) -> bool {
        *self != EventCounts::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{MetricsHub, Shape};

    #[test]
    fn counts_merge_across_threads_and_lag_keeps_its_highest() {
        let hub = MetricsHub::new(Shape::new(2, 1));
        std::thread::scope(|s| {
            for t in 0..3u64 {
                let hub = &hub;
                s.spawn(move || {
                    for _ in 0..10 {
                        hub.record_event(1, EventCount::Sent, 1);
                        hub.record_received(1, Some(Duration::from_millis(5)), 10);
                    }
                    hub.record_received(1, None, 10);
                    hub.record_event(1, EventCount::Duplicated, 1);
                    hub.record_event(1, EventCount::Lag, 7 * (t + 1));
                });
            }
        });
        hub.record_event(1, EventCount::Lost, 4);
        let st = hub.collect();
        let e = st.groups[1].events;
        assert_eq!(
            e,
            EventCounts {
                sent: 30,
                received: 33,
                duplicated: 3,
                out_of_order: 0,
                lost: 4,
                lag_max: Some(21),
            }
        );
        // Only enveloped messages have a latency.
        assert_eq!(st.groups[1].latency.len(), 30);
        assert_eq!(st.groups[1].bytes_received, 330);
        assert!(!st.groups[0].events.seen());
    }
}
