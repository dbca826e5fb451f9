//! The closed model: N VUs, each looping over iterations for the phase's duration,
//! or until they have shared out a number of iterations. This run's execution
//! segment gets its share of the VUs and of the iterations; a segment with no VU in
//! a phase waits out its duration (or skips an iterations phase), so all segments
//! move through the phases in step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::time::Instant;

use super::segment::Segment;
use super::{run_iteration, Shared};
use crate::plan::{Pacing, Phase, Stop};

/// A segment's part of a closed-model phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClosedShare {
    pub(crate) vus: u64,
    /// For a phase that stops after a number of iterations: this segment's part.
    pub(crate) iterations: Option<u64>,
}

/// The segment's VUs (`floor(vus·b) − floor(vus·a)`) and iterations of a closed
/// phase. Iterations are cut where the VUs are: with `V(x) = floor(vus·x)` VUs
/// below point x, the segment gets `floor(total·V(b)/vus) − floor(total·V(a)/vus)`.
/// Both telescope to the plan's figures over any partition, and a segment with no
/// VU gets no iteration (cutting `total` on its own would hand iterations to
/// segments with nobody to run them, e.g. one VU shared by three agents).
pub(crate) fn closed_share(segment: &Segment, vus: u64, stop: &Stop) -> ClosedShare {
    let cut = segment.slice(vus);
    let iterations = match *stop {
        Stop::Duration(_) => None,
        Stop::Iterations { total, .. } => {
            let before = |v: u64| match vus {
                0 => 0,
                // v <= vus, so the quotient is at most `total` and fits.
                _ => (u128::from(total) * u128::from(v) / u128::from(vus)) as u64,
            };
            Some(before(cut.end) - before(cut.start))
        }
    };
    ClosedShare {
        vus: cut.end - cut.start,
        iterations,
    }
}

/// Runs this run's segment of a closed-model phase.
pub(crate) async fn run(sh: &Arc<Shared>, phase_idx: usize, phase: &Phase) {
    let Pacing::Closed { vus } = phase.pacing else {
        return;
    };
    let share = closed_share(&sh.segment, vus, &phase.stop);
    let start = Instant::now();
    let (deadline, remaining) = match phase.stop {
        Stop::Duration(d) => (Some(start + d), None),
        Stop::Iterations { max_duration, .. } => {
            let total = share.iterations.unwrap_or(0);
            if share.vus == 0 || total == 0 {
                return;
            }
            (
                max_duration.map(|d| start + d),
                Some(Arc::new(AtomicU64::new(total))),
            )
        }
    };
    let mut handles = Vec::with_capacity(usize::try_from(share.vus).unwrap_or(0));
    for _ in 0..share.vus {
        let sh2 = sh.clone();
        let remaining = remaining.clone();
        handles.push(sh.spawn(phase_idx, async move {
            let mut vu = sh2.new_vu();
            sh2.hub.active_vus.fetch_add(1, Ordering::Relaxed);
            loop {
                if sh2.soft.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(rem) = &remaining {
                    let took = rem
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                    if took.is_err() {
                        break;
                    }
                }
                if !run_iteration(&sh2, &mut vu, phase_idx).await {
                    break;
                }
            }
            sh2.hub.active_vus.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    match phase.stop {
        Stop::Duration(_) => {
            if let Some(d) = deadline {
                tokio::select! {
                    _ = tokio::time::sleep_until(d) => {}
                    _ = sh.soft.cancelled() => {}
                }
            }
        }
        Stop::Iterations { .. } => {
            let all = async {
                for h in handles {
                    let _ = h.await;
                }
            };
            let cap = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = all => {}
                _ = cap => {}
                _ = sh.soft.cancelled() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::segment::tests::partition;
    use proptest::prelude::*;
    use std::time::Duration;

    fn iterations(total: u64) -> Stop {
        Stop::Iterations {
            total,
            max_duration: None,
        }
    }

    #[test]
    fn one_vu_among_three_agents_takes_every_iteration_with_it() {
        let shares: Vec<ClosedShare> = (0..3)
            .map(|i| closed_share(&Segment::nth(i, 3).unwrap(), 1, &iterations(100)))
            .collect();
        let vus: Vec<u64> = shares.iter().map(|s| s.vus).collect();
        let its: Vec<Option<u64>> = shares.iter().map(|s| s.iterations).collect();
        assert_eq!(vus, [0, 0, 1]);
        assert_eq!(its, [Some(0), Some(0), Some(100)]);
        let even = closed_share(&Segment::nth(1, 3).unwrap(), 6, &iterations(100));
        assert_eq!(
            even,
            ClosedShare {
                vus: 2,
                iterations: Some(33)
            }
        );
        let timed = closed_share(&Segment::WHOLE, 5, &Stop::Duration(Duration::from_secs(1)));
        assert_eq!(
            timed,
            ClosedShare {
                vus: 5,
                iterations: None
            }
        );
    }

    proptest! {
        /// Over any partition the segments' VUs and iterations add up to the
        /// plan's, a segment without VUs has no iterations, and each share is
        /// within one of the segment's exact part (iterations: within one VU's worth).
        #[test]
        fn vus_and_iterations_add_up_exactly(
            parts in partition(),
            vus in 0u64..5000,
            total in prop::option::of(0u64..10_000_000),
        ) {
            let stop = match total {
                Some(t) => iterations(t),
                None => Stop::Duration(Duration::from_secs(1)),
            };
            let shares: Vec<ClosedShare> = parts.iter().map(|s| closed_share(s, vus, &stop)).collect();
            prop_assert_eq!(shares.iter().map(|s| s.vus).sum::<u64>(), vus);
            for (seg, share) in parts.iter().zip(&shares) {
                let (a, b) = (seg.start(), seg.end());
                let w = b.numerator() as f64 / b.denominator() as f64
                    - a.numerator() as f64 / a.denominator() as f64;
                prop_assert!((share.vus as f64 - w * vus as f64).abs() < 1.0 + 1e-9);
                match (total, share.iterations) {
                    (Some(t), Some(i)) => {
                        if share.vus == 0 {
                            prop_assert_eq!(i, 0);
                        }
                        if vus > 0 {
                            let per_vu = t as f64 / vus as f64;
                            prop_assert!((i as f64 - w * t as f64).abs() <= per_vu + 1.0 + 1e-6 * t as f64);
                        }
                    }
                    (None, None) => {}
                    other => prop_assert!(false, "{:?}", other),
                }
            }
            if let Some(t) = total {
                let sum: u64 = shares.iter().filter_map(|s| s.iterations).sum();
                prop_assert_eq!(sum, if vus == 0 { 0 } else { t });
            }
        }
    }
}
