//! A VU's side of event-driven load, whatever the broker: its producers (one
//! per publish step, made on first use) with their next sequence numbers, the
//! envelope of its last publish (for `match: { envelope: true }`), and reused
//! buffers. Every broker protocol's per-VU state is a [`VuEvents`].

use std::sync::Arc;

use super::envelope::{now_micros, Envelope};
use super::track::{Producer, Producers};

/// A VU's producers and buffers.
#[derive(Debug, Default)]
pub struct VuEvents {
    producers: Vec<Option<(Arc<Producer>, u64)>>,
    /// The producer and sequence number of the VU's last publish.
    pub last_sent: Option<(u64, u64)>,
    /// A payload's text, rendered.
    pub text: String,
    /// The envelope of the message being sent, as its header's value.
    pub envelope: String,
}

impl VuEvents {
    /// Numbers the next message of publish step `index` (its producer made
    /// on first use, counting towards `dests` destinations), and writes its
    /// envelope into [`VuEvents::envelope`], stamped now.
    pub fn next_message(
        &mut self,
        index: usize,
        run: u64,
        producers: &Producers,
        dests: usize,
    ) -> Arc<Producer> {
        if self.producers.len() <= index {
            self.producers.resize_with(index + 1, || None);
        }
        let (producer, seq) =
            self.producers[index].get_or_insert_with(|| (producers.add(dests), 0));
        *seq += 1;
        let (producer, seq) = (producer.clone(), *seq);
        Envelope {
            run,
            producer: producer.id,
            seq,
            sent_micros: now_micros(),
        }
        .write(&mut self.envelope);
        self.last_sent = Some((producer.id, seq));
        producer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_publish_step_numbers_its_own_messages() {
        let producers = Producers::default();
        let mut vu = VuEvents::default();
        let a = vu.next_message(1, 7, &producers, 2);
        let first = Envelope::parse(&vu.envelope).unwrap_or_else(|| panic!("{}", vu.envelope));
        assert_eq!((first.run, first.producer, first.seq), (7, a.id, 1));
        let b = vu.next_message(0, 7, &producers, 2);
        assert_ne!(a.id, b.id);
        let a2 = vu.next_message(1, 7, &producers, 2);
        assert_eq!(a2.id, a.id);
        assert_eq!(vu.last_sent, Some((a.id, 2)));
    }
}
