//! The envelope: run id, producer id, sequence number and send time, written
//! into one header of each produced message (`Loadline-Envelope`) as four
//! hexadecimal numbers joined by `-`, e.g. `9f3a…-1c-2a-5f1e…`. Producers and
//! consumers run in one process, so the send time (microseconds since the
//! UNIX epoch) and the receipt are read on one clock.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header that carries the envelope.
pub const HEADER: &str = "Loadline-Envelope";

/// One message's envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// The run that sent it (random, one per plan's protocol).
    pub run: u64,
    /// The producer that sent it (a VU's publish step).
    pub producer: u64,
    /// Its place in the producer's messages, from 1.
    pub seq: u64,
    /// When it was sent, microseconds since the UNIX epoch.
    pub sent_micros: u64,
}

/// Microseconds since the UNIX epoch, now.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Envelope {
    /// Writes the header's value into `out` (cleared first).
    pub fn write(&self, out: &mut String) {
        out.clear();
        let _ = write!(
            out,
            "{:x}-{:x}-{:x}-{:x}",
            self.run, self.producer, self.seq, self.sent_micros
        );
    }

    /// Reads a header's value; `None` when it is not an envelope.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('-');
        let mut next = || u64::from_str_radix(parts.next()?, 16).ok();
        let envelope = Self {
            run: next()?,
            producer: next()?,
            seq: next()?,
            sent_micros: next()?,
        };
        parts.next().is_none().then_some(envelope)
    }

    /// Time from its send to `now_micros` (zero when the clock went back).
    pub fn age(&self, now_micros: u64) -> Duration {
        Duration::from_micros(now_micros.saturating_sub(self.sent_micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_refuse_other_text() {
        let e = Envelope {
            run: 0xdead_beef,
            producer: 7,
            seq: 42,
            sent_micros: 1_700_000_000_000_000,
        };
        let mut text = String::from("stale");
        e.write(&mut text);
        assert_eq!(text, "deadbeef-7-2a-60a24181e4000");
        assert_eq!(Envelope::parse(&text), Some(e));
        assert_eq!(Envelope::parse("1-2-3"), None);
        assert_eq!(Envelope::parse("1-2-3-4-5"), None);
        assert_eq!(Envelope::parse("x-2-3-4"), None);
        assert_eq!(e.age(e.sent_micros + 1500), Duration::from_micros(1500));
        assert_eq!(e.age(0), Duration::ZERO);
    }
}
