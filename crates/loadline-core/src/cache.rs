//! Cache effectiveness: how a cache in front of (or inside) the system under
//! test answered each request, as the protocol that sent it classified it. An
//! HTTP step reads the response's cache headers; a cache-aside step knows
//! whether its read found the key. The counts, and the latency of hits and of
//! misses apart, are kept per metric group next to its other figures.

use std::time::Duration;

use hdrhistogram::Histogram;

/// How a cache answered one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheOutcome {
    /// Not a request a cache could answer (no response, or a step that does
    /// not classify): not counted.
    #[default]
    None,
    /// Answered from the cache, fresh.
    Hit,
    /// Not in the cache: fetched from the origin.
    Miss,
    /// In the cache but stale: served stale, or revalidated with the origin.
    Stale,
    /// The cache was not used for this request (by policy, method, or a
    /// request directive).
    Bypass,
    /// A response that said nothing a rule could classify (no cache header, or
    /// one that does not parse): counted, never guessed.
    Unknown,
}

impl CacheOutcome {
    /// The counted outcomes, in the order of [`CacheCounts::counts`].
    pub const COUNTED: [CacheOutcome; 5] = [
        CacheOutcome::Hit,
        CacheOutcome::Miss,
        CacheOutcome::Stale,
        CacheOutcome::Bypass,
        CacheOutcome::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::None => "none",
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Unknown => "unknown",
        }
    }

    /// The index into [`CacheCounts::counts`] (`None` is not counted).
    fn index(self) -> Option<usize> {
        match self {
            CacheOutcome::None => None,
            CacheOutcome::Hit => Some(0),
            CacheOutcome::Miss => Some(1),
            CacheOutcome::Stale => Some(2),
            CacheOutcome::Bypass => Some(3),
            CacheOutcome::Unknown => Some(4),
        }
    }
}

/// One cache of a chain (RFC 9211 `Cache-Status` names each cache a response
/// passed), with its own counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheLayer {
    pub name: Box<str>,
    pub counts: [u64; 5],
}

/// What only a group that met a cache keeps: hit and miss latency apart, and
/// the caches of a chain.
#[derive(Debug, Clone)]
pub struct CacheSplit {
    /// Latency of hits, microseconds.
    pub hit: Histogram<u64>,
    /// Latency of misses, microseconds.
    pub miss: Histogram<u64>,
    /// Each cache of a chain by name, in first-seen order (kept only for
    /// responses that named more than one cache).
    pub layers: Vec<CacheLayer>,
}

/// At most this many caches of a chain are kept apart per group; the rest are
/// counted in the totals only.
pub const MAX_LAYERS: usize = 8;

/// A group's cache figures: counts of each outcome, and (once a hit or a miss
/// was seen) their latencies apart.
#[derive(Debug, Clone, Default)]
pub struct CacheCounts {
    /// Hit, miss, stale, bypass, unknown.
    pub counts: [u64; 5],
    pub split: Option<Box<CacheSplit>>,
}

impl CacheCounts {
    pub fn hit(&self) -> u64 {
        self.counts[0]
    }
    pub fn miss(&self) -> u64 {
        self.counts[1]
    }
    pub fn stale(&self) -> u64 {
        self.counts[2]
    }
    pub fn bypass(&self) -> u64 {
        self.counts[3]
    }
    pub fn unknown(&self) -> u64 {
        self.counts[4]
    }

    /// Whether any response was classified (not only unknowns): the group met
    /// a cache.
    pub fn seen(&self) -> bool {
        self.counts[..4].iter().any(|n| *n > 0)
    }

    /// The lookups the hit ratio is over: hits, misses and stale answers
    /// (bypassed and unknown requests did not ask the cache).
    pub fn lookups(&self) -> u64 {
        self.hit() + self.miss() + self.stale()
    }

    /// Fresh hits over lookups; `None` before any lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.lookups();
        (lookups > 0).then(|| self.hit() as f64 / lookups as f64)
    }

    pub(crate) fn record(&mut self, outcome: CacheOutcome, micros: u64) {
        let Some(i) = outcome.index() else {
            return;
        };
        self.counts[i] += 1;
        match outcome {
            CacheOutcome::Hit => self.split_mut().hit.saturating_record(micros),
            CacheOutcome::Miss => self.split_mut().miss.saturating_record(micros),
            _ => {}
        }
    }

    fn split_mut(&mut self) -> &mut CacheSplit {
        self.split.get_or_insert_with(|| {
            Box::new(CacheSplit {
                hit: crate::metrics::new_histogram(),
                miss: crate::metrics::new_histogram(),
                layers: Vec::new(),
            })
        })
    }

    /// Counts one cache of a chain's verdict on a response.
    pub(crate) fn record_layer(&mut self, name: &str, outcome: CacheOutcome) {
        let Some(i) = outcome.index() else {
            return;
        };
        let layers = &mut self.split_mut().layers;
        match layers.iter().position(|l| &*l.name == name) {
            Some(at) => layers[at].counts[i] += 1,
            None if layers.len() < MAX_LAYERS => {
                let mut counts = [0; 5];
                counts[i] = 1;
                layers.push(CacheLayer {
                    name: name.into(),
                    counts,
                });
            }
            None => {}
        }
    }

    /// Adds another group's (or span's) cache figures to these.
    pub fn merge(&mut self, o: &CacheCounts) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        if let Some(theirs) = &o.split {
            let mine = self.split_mut();
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.hit.add(&theirs.hit);
            let _ = mine.miss.add(&theirs.miss);
            for layer in &theirs.layers {
                match mine.layers.iter().position(|l| l.name == layer.name) {
                    Some(at) => {
                        for (a, b) in mine.layers[at].counts.iter_mut().zip(layer.counts) {
                            *a += b;
                        }
                    }
                    None if mine.layers.len() < MAX_LAYERS => mine.layers.push(layer.clone()),
                    None => {}
                }
            }
        }
    }

    /// The median latency of hits and of misses, ms (`None` when there were none).
    pub fn p50_ms(&self) -> (Option<f64>, Option<f64>) {
        let p50 =
            |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1000.0);
        match &self.split {
            Some(s) => (p50(&s.hit), p50(&s.miss)),
            None => (None, None),
        }
    }
}

/// When the hit ratio first reached the plan's warm level, per group and over
/// all request groups (see [`crate::plan::Plan::cache_warm_at`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Warmup {
    /// By group index; `None` until reached.
    pub groups: Vec<Option<Duration>>,
    pub all: Option<Duration>,
}

/// A tick's hit ratio counts only from this many lookups in it: one lucky hit
/// in a quiet second does not make a cache warm.
pub const WARM_MIN_LOOKUPS: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ratio_and_split_latency() {
        let mut c = CacheCounts::default();
        assert!(!c.seen());
        c.record(CacheOutcome::Unknown, 10);
        assert!(!c.seen());
        assert_eq!(c.hit_ratio(), None);
        for _ in 0..9 {
            c.record(CacheOutcome::Hit, 1_000);
        }
        c.record(CacheOutcome::Miss, 20_000);
        c.record(CacheOutcome::Bypass, 5);
        c.record(CacheOutcome::None, 5);
        assert!(c.seen());
        assert_eq!(c.counts, [9, 1, 0, 1, 1]);
        assert_eq!(c.hit_ratio(), Some(0.9));
        let (hit, miss) = c.p50_ms();
        assert!((hit.unwrap_or(0.0) - 1.0).abs() < 0.01);
        assert!((miss.unwrap_or(0.0) - 20.0).abs() < 0.05);

        let mut d = CacheCounts::default();
        d.record(CacheOutcome::Stale, 1);
        d.record_layer("edge", CacheOutcome::Hit);
        d.record_layer("origin-cache", CacheOutcome::Miss);
        d.record_layer("edge", CacheOutcome::Hit);
        c.merge(&d);
        assert_eq!(c.counts, [9, 1, 1, 1, 1]);
        let layers = &c
            .split
            .as_ref()
            .map(|s| s.layers.clone())
            .unwrap_or_default();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].counts, [2, 0, 0, 0, 0]);
        assert_eq!(layers[1].counts, [0, 1, 0, 0, 0]);
    }

    #[test]
    fn layers_are_bounded() {
        let mut c = CacheCounts::default();
        for i in 0..20 {
            c.record_layer(&format!("cache{i}"), CacheOutcome::Miss);
        }
        assert_eq!(c.split.map(|s| s.layers.len()), Some(MAX_LAYERS));
    }
}
