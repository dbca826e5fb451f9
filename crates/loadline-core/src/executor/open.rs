//! The open model: iterations start at planned times, whatever the system under
//! test does. A phase's rate ramps linearly from `rate` to `ramp_to` per second;
//! [`arrival_time`] places each arrival, and this run starts only the arrivals its
//! execution segment takes. Each iteration takes an idle VU from a pool, or a new
//! one, so connections are reused across arrivals while every arrival still gets a
//! fresh session (captures and cookies are reset per iteration). At most `max_vus`
//! (the segment's share of it) run at once; an arrival beyond that is dropped and
//! counted, never silently skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::segment::Segment;
use super::{run_iteration, Shared};
use crate::plan::{Arrivals, Pacing, Phase, MAX_LATENESS};

/// How much earlier than an arrival the scheduler's timer is set: half a tick
/// of tokio's millisecond timer wheel.
const TIMER_SLACK: Duration = Duration::from_micros(500);

/// After this many arrivals left to other segments, the loop lets other tasks run:
/// a tiny segment may pass over millions of arrivals between two of its own.
const SKIPS_PER_YIELD: u32 = 4096;

/// The time of the `k`-th arrival (0-based) of a phase whose rate goes linearly
/// from `r0` to `r1` per second over `t_len` seconds; `None` past the phase's end.
#[inline]
pub fn arrival_time(k: u64, r0: f64, r1: f64, t_len: f64) -> Option<f64> {
    time_at(k as f64, r0, r1, t_len)
}

/// The time at which the phase's expected arrivals reach `count` (the inverse
/// of the rate's integral); `None` past the phase's end.
#[inline]
fn time_at(count: f64, r0: f64, r1: f64, t_len: f64) -> Option<f64> {
    let expected = (r0 + r1) / 2.0 * t_len;
    if count >= expected || t_len <= 0.0 {
        return None;
    }
    // Arrivals so far at time t: N(t) = r0 t + a t², a = (r1 - r0) / (2 T).
    // The k-th arrival is at N(t) = k; this form is stable for a = 0 too.
    let a = (r1 - r0) / (2.0 * t_len);
    let disc = r0 * r0 + 4.0 * a * count;
    if disc < 0.0 {
        return None;
    }
    let denom = r0 + disc.sqrt();
    let t = if count == 0.0 {
        0.0
    } else {
        2.0 * count / denom
    };
    (t.is_finite() && t < t_len).then_some(t)
}

/// Where a phase's arrivals fall: asked for arrival 0, 1, 2… in turn.
trait Schedule {
    /// The time of arrival `k`, seconds into the phase; `None` once past its end.
    fn time_of(&mut self, k: u64) -> Option<f64>;
}

/// The phase's rate as it is: arrival k where the rate's integral reaches k.
struct Even {
    r0: f64,
    r1: f64,
    len: f64,
}

impl Schedule for Even {
    #[inline]
    fn time_of(&mut self, k: u64) -> Option<f64> {
        arrival_time(k, self.r0, self.r1, self.len)
    }
}

/// A Poisson process at the phase's rate: the expected count between arrivals
/// is exponentially distributed with mean 1, then mapped to time through the
/// rate's integral, so a ramp stays a ramp. The same seed and phase give the same
/// times on every segment, so segments still share out one sequence.
struct Poisson {
    r0: f64,
    r1: f64,
    len: f64,
    rng: fastrand::Rng,
    count: f64,
}

impl Poisson {
    fn new(r0: f64, r1: f64, len: f64, seed: u64, phase_idx: usize) -> Self {
        let seed = seed ^ (phase_idx as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        Self {
            r0,
            r1,
            len,
            rng: fastrand::Rng::with_seed(seed),
            count: 0.0,
        }
    }
}

impl Schedule for Poisson {
    fn time_of(&mut self, _k: u64) -> Option<f64> {
        // 1 - u is in (0, 1]: the logarithm is finite.
        self.count += -(1.0 - self.rng.f64()).ln();
        time_at(self.count, self.r0, self.r1, self.len)
    }
}

/// The segment's cap on concurrent iterations: its share of `max_vus`, and at least
/// one so that a segment with arrivals can run them.
pub(crate) fn segment_max_vus(segment: &Segment, max_vus: u64) -> u64 {
    segment.share(max_vus).max(1)
}

/// Runs this run's segment of an open-model phase.
pub(crate) async fn run(sh: &Arc<Shared>, phase_idx: usize, phase: &Phase) {
    let Pacing::Open {
        rate,
        ramp_to,
        max_vus,
        arrivals,
    } = phase.pacing
    else {
        return;
    };
    let Some(len) = phase.planned_duration() else {
        return;
    };
    let r1 = ramp_to.unwrap_or(rate);
    let secs = len.as_secs_f64();
    match arrivals {
        Arrivals::Uniform => {
            let even = Even {
                r0: rate,
                r1,
                len: secs,
            };
            drive(sh, phase_idx, len, max_vus, even).await;
        }
        Arrivals::Poisson => {
            let poisson = Poisson::new(rate, r1, secs, sh.seed, phase_idx);
            drive(sh, phase_idx, len, max_vus, poisson).await;
        }
    }
}

/// Starts the segment's arrivals of `schedule`, then waits out the phase.
async fn drive(
    sh: &Arc<Shared>,
    phase_idx: usize,
    len: Duration,
    max_vus: u64,
    mut schedule: impl Schedule,
) {
    let max_vus = segment_max_vus(&sh.segment, max_vus);
    let pick = sh.segment.arrivals();
    let start = Instant::now();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut k = 0u64;
    let mut skipped = 0u32;
    while let Some(t) = schedule.time_of(k) {
        let ours = pick.takes(k);
        k += 1;
        if !ours {
            skipped = skipped.wrapping_add(1);
            if skipped.is_multiple_of(SKIPS_PER_YIELD) {
                tokio::task::yield_now().await;
                if sh.soft.is_cancelled() {
                    return;
                }
            }
            continue;
        }
        let due = start + Duration::from_secs_f64(t);
        // The timer wheel ticks every millisecond and rounds a deadline up to the
        // next tick; aiming half a tick early starts each iteration within half a
        // millisecond of its planned time, early or late, instead of up to a
        // whole tick late. Lateness beyond that is measured as schedule lag.
        let now = Instant::now();
        if due > now + TIMER_SLACK {
            tokio::select! {
                _ = tokio::time::sleep_until(due - TIMER_SLACK) => {}
                _ = sh.soft.cancelled() => return,
            }
        } else if now.saturating_duration_since(due) > MAX_LATENESS {
            // The generator fell behind: dropped and counted, not started late,
            // so that it catches up instead of stretching the phase.
            if sh.soft.is_cancelled() {
                return;
            }
            sh.hub.record_late(phase_idx);
            continue;
        }
        if sh.soft.is_cancelled() {
            return;
        }
        if in_flight.load(Ordering::Relaxed) >= max_vus {
            sh.hub.record_dropped(phase_idx);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let sh2 = sh.clone();
        let in_flight2 = in_flight.clone();
        sh.spawn(phase_idx, async move {
            let lag = Instant::now().saturating_duration_since(due);
            if lag > MAX_LATENESS {
                // Spawned in time but not run in time (the runtime is flooded):
                // dropped and counted like an arrival the scheduler was late for.
                sh2.hub.record_late(phase_idx);
                in_flight2.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            sh2.hub.record_schedule_lag(lag);
            let popped = sh2.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut vu = popped.unwrap_or_else(|| sh2.new_vu());
            sh2.hub.active_vus.fetch_add(1, Ordering::Relaxed);
            let _ = run_iteration(&sh2, &mut vu, phase_idx).await;
            sh2.hub.active_vus.fetch_sub(1, Ordering::Relaxed);
            in_flight2.fetch_sub(1, Ordering::Relaxed);
            sh2.pool.lock().unwrap_or_else(|p| p.into_inner()).push(vu);
        });
    }
    // Wait out the rest of the phase (the last arrival is before its end); a
    // segment with no arrivals here waits too, so all segments move in step.
    let end = start + len;
    tokio::select! {
        _ = tokio::time::sleep_until(end) => {}
        _ = sh.soft.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::segment::tests::partition;
    use proptest::prelude::*;

    #[test]
    fn constant_rate_arrivals_are_evenly_spaced() {
        let times: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 5.0, 5.0, 10.0))
            .collect();
        assert_eq!(times.len(), 50);
        assert!((times[1] - 0.2).abs() < 1e-9);
        assert!((times[49] - 9.8).abs() < 1e-9);
    }

    #[test]
    fn ramps_deliver_the_area_under_the_rate() {
        // 5/s rising to 50/s over 10 s: (5 + 50) / 2 * 10 = 275 arrivals.
        let times: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 5.0, 50.0, 10.0))
            .collect();
        assert_eq!(times.len(), 275);
        assert!(times.windows(2).all(|w| w[1] > w[0]));
        // Denser at the end than at the start.
        assert!(times[1] - times[0] > times[274] - times[273]);
        let down: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 50.0, 0.0, 10.0))
            .collect();
        assert_eq!(down.len(), 250);
        assert!(down.iter().all(|t| *t < 10.0));
        assert_eq!(arrival_time(0, 0.0, 0.0, 10.0), None);
        let from_zero: Vec<f64> = (0..)
            .map_while(|k| arrival_time(k, 0.0, 10.0, 10.0))
            .collect();
        assert_eq!(from_zero.len(), 50);
    }

    /// Per-second counts of a schedule's arrivals over `secs` seconds.
    fn per_second(mut s: impl Schedule, secs: usize) -> Vec<f64> {
        let mut counts = vec![0.0; secs];
        let mut k = 0;
        while let Some(t) = s.time_of(k) {
            counts[t as usize] += 1.0;
            k += 1;
        }
        counts
    }

    fn mean_and_variance(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn poisson_counts_vary_like_their_mean_and_uniform_ones_do_not() {
        let (len, rate) = (200.0, 200.0);
        let even = per_second(
            Even {
                r0: rate,
                r1: rate,
                len,
            },
            200,
        );
        let (mean, var) = mean_and_variance(&even);
        assert!((mean - 200.0).abs() < 1e-9 && var < 1.0, "{mean} {var}");
        for seed in [1, 2, 3] {
            let counts = per_second(Poisson::new(rate, rate, len, seed, 0), 200);
            let (mean, var) = mean_and_variance(&counts);
            assert!((mean - 200.0).abs() < 5.0, "seed {seed}: mean {mean}");
            // The dispersion index of 200 Poisson counts is 1 ± 0.1 (one sd).
            let index = var / mean;
            assert!((0.65..1.35).contains(&index), "seed {seed}: {var} / {mean}");
        }
    }

    #[test]
    fn poisson_arrivals_follow_the_ramp_and_the_seed() {
        let times = |seed| {
            let mut p = Poisson::new(0.0, 400.0, 10.0, seed, 2);
            (0..).map_while(|k| p.time_of(k)).collect::<Vec<f64>>()
        };
        let a = times(9);
        assert_eq!(a, times(9));
        assert_ne!(a, times(10));
        assert!(a.windows(2).all(|w| w[1] >= w[0]));
        // 2,000 expected; the count's sd is about 45.
        assert!((1800..2200).contains(&a.len()), "{}", a.len());
        let late = a.iter().filter(|t| **t >= 5.0).count();
        // Three quarters of a rising ramp's arrivals come in its second half.
        let share = late as f64 / a.len() as f64;
        assert!((0.70..0.80).contains(&share), "{share}");
        // Another phase of the same run draws other times.
        let mut other = Poisson::new(0.0, 400.0, 10.0, 9, 3);
        assert_ne!(other.time_of(0), Some(a[0]));
    }

    /// How far a segment's count among the first `m` arrivals may stray from
    /// (b − a)·m: the golden-ratio sequence's discrepancy, measured at under
    /// 1 + 0.4·ln m for every interval, with room to spare.
    fn spread_bound(m: u64) -> f64 {
        1.5 + 0.5 * (m as f64).ln()
    }

    fn width(s: &Segment) -> f64 {
        let (a, b) = (s.start(), s.end());
        b.numerator() as f64 / b.denominator() as f64
            - a.numerator() as f64 / a.denominator() as f64
    }

    /// Whether `s`'s count among the first `m` arrivals is close to its share.
    fn spread_ok(s: &Segment, count: u64, m: u64) -> bool {
        (count as f64 - width(s) * m as f64).abs() <= spread_bound(m)
    }

    #[test]
    fn agents_interleave_over_the_phase() {
        // 3 agents at 1000/s for 10 s: each runs a third of every second, not a
        // third of the phase.
        let parts: Vec<Segment> = (0..3).map(|i| Segment::nth(i, 3).unwrap()).collect();
        let mut per_second = [[0u64; 10]; 3];
        for k in 0.. {
            let Some(t) = arrival_time(k, 1000.0, 1000.0, 10.0) else {
                break;
            };
            for (i, s) in parts.iter().enumerate() {
                if s.takes_arrival(k) {
                    per_second[i][t as usize] += 1;
                }
            }
        }
        for agent in per_second {
            assert!(agent.iter().all(|n| (330..=337).contains(n)), "{agent:?}");
        }
    }

    fn open_phase() -> impl Strategy<Value = (f64, f64, f64)> {
        (
            0.0f64..2000.0,
            prop::option::of(0.0f64..2000.0),
            0.05f64..12.0,
        )
            .prop_map(|(r0, r1, len)| (r0, r1.unwrap_or(r0), len))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// Every planned arrival runs on exactly one segment, at its planned time,
        /// and each segment's arrivals are spread over the phase: at every prefix
        /// of the plan's arrival sequence its count is near its share.
        #[test]
        fn segments_share_out_the_arrivals_exactly(parts in partition(), (r0, r1, len) in open_phase()) {
            let whole: Vec<f64> = (0..).map_while(|k| arrival_time(k, r0, r1, len)).collect();
            let picks: Vec<_> = parts.iter().map(|s| s.arrivals()).collect();
            let mut counts = vec![0u64; parts.len()];
            let mut per_segment: Vec<Vec<(u64, f64)>> = vec![Vec::new(); parts.len()];
            for (k, &t) in whole.iter().enumerate() {
                let k = k as u64;
                let owners: Vec<usize> = (0..parts.len()).filter(|&i| picks[i].takes(k)).collect();
                prop_assert_eq!(owners.len(), 1, "arrival {} taken by {:?}", k, owners);
                counts[owners[0]] += 1;
                per_segment[owners[0]].push((k, t));
                for (s, &c) in parts.iter().zip(&counts) {
                    prop_assert!(
                        spread_ok(s, c, k + 1),
                        "segment {} has {} of the first {} arrivals", s, c, k + 1
                    );
                }
            }
            // Merged back in time order, the segments' schedules are the plan's.
            let mut merged: Vec<(u64, f64)> = per_segment.concat();
            merged.sort_by_key(|&(k, _)| k);
            prop_assert_eq!(merged.len(), whole.len());
            for (i, (k, t)) in merged.into_iter().enumerate() {
                prop_assert_eq!(k, i as u64);
                prop_assert_eq!(t, whole[i]);
            }
        }

        #[test]
        fn max_vus_is_shared_out(parts in partition(), max_vus in 1u64..100_000) {
            let caps: Vec<u64> = parts.iter().map(|s| segment_max_vus(s, max_vus)).collect();
            prop_assert!(caps.iter().all(|&c| c >= 1));
            // Exact, except where a segment's share rounds down to 0 and is lifted to 1.
            let lifted = parts.iter().filter(|s| s.share(max_vus) == 0).count() as u64;
            prop_assert_eq!(caps.iter().sum::<u64>(), max_vus + lifted);
        }
    }
}
