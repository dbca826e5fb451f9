//! The comparison of repeated runs, per metric: one value per run on each
//! side (a run's p50, p99, throughput…), compared on the log scale.
//!
//! - **Test**: Welch's t on the logs (unequal variances), two-sided.
//! - **Effect**: the ratio of geometric means, current / baseline, with its
//!   confidence interval (the t interval of the difference of log means,
//!   Welch–Satterthwaite degrees of freedom).
//! - **Verdict**: a change only when the interval excludes 1 *and* the
//!   ratio is at least `min_effect` away from 1 (2% by default, or twice
//!   the machine's A/A spread); which way is worse depends on the metric
//!   (latency up is slower, throughput down is slower).
//! - **Across metrics**: [`holm`] adjusts the p-values of the metrics
//!   compared together, and [`compare_all`] judges each at the adjusted
//!   level.
//!
//! With one run a side there is no run-to-run variance to test against:
//! [`compare`] says [`Strength::Weak`] and gives no interval.

use crate::stats::{mean_var, t_cdf, t_quantile};

/// The default minimum effect: 2%.
pub const MIN_EFFECT: f64 = 0.02;

/// Which direction of a metric is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    /// Latency, errors: up is worse.
    Higher,
    /// Throughput: down is worse.
    Lower,
}

/// What a comparison concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The current runs are worse (slower), beyond noise and the minimum
    /// effect.
    Regressed,
    /// They are better.
    Improved,
    /// No change that the runs can tell from noise, or smaller than the
    /// minimum effect.
    Indistinguishable,
}

/// How much a comparison can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Two runs or more on each side: machine variance is covered.
    Repeated,
    /// One run on a side: no run-to-run variance to test against.
    Weak,
}

/// One metric's comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Current over baseline, of the geometric means.
    pub ratio: f64,
    /// The ratio's confidence interval (`None` with one run on a side).
    pub ci: Option<(f64, f64)>,
    /// Welch's two-sided p-value (`None` with one run on a side).
    pub p: Option<f64>,
    pub verdict: Verdict,
    pub strength: Strength,
}

/// Compares `current` runs with `baseline` runs of one metric (positive
/// values), at confidence `1 − alpha`, calling changes smaller than
/// `min_effect` (0.02 = 2%) indistinguishable.
pub fn compare(
    baseline: &[f64],
    current: &[f64],
    worse: Worse,
    alpha: f64,
    min_effect: f64,
) -> Comparison {
    let logs =
        |xs: &[f64]| -> Vec<f64> { xs.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect() };
    let (a, b) = (logs(baseline), logs(current));
    let (ma, va) = mean_var(&a);
    let (mb, vb) = mean_var(&b);
    let ratio = (mb - ma).exp();
    if a.len() < 2 || b.len() < 2 {
        return Comparison {
            ratio,
            ci: None,
            p: None,
            verdict: Verdict::Indistinguishable,
            strength: Strength::Weak,
        };
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    let se = (sa + sb).sqrt();
    let diff = mb - ma;
    let (p, half) = if se > 0.0 {
        let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
        let t = diff / se;
        let p = 2.0 * t_cdf(-t.abs(), df);
        (p, t_quantile(1.0 - alpha / 2.0, df) * se)
    } else {
        // No variance at all: any difference is certain.
        (if diff == 0.0 { 1.0 } else { 0.0 }, 0.0)
    };
    let ci = ((diff - half).exp(), (diff + half).exp());
    let excludes_one = ci.0 > 1.0 || ci.1 < 1.0;
    let large = (ratio - 1.0).abs() >= min_effect;
    let verdict = if !(excludes_one && large) {
        Verdict::Indistinguishable
    } else if (ratio > 1.0) == (worse == Worse::Higher) {
        Verdict::Regressed
    } else {
        Verdict::Improved
    };
    Comparison {
        ratio,
        ci: Some(ci),
        p: Some(p),
        verdict,
        strength: Strength::Repeated,
    }
}

/// Holm's step-down adjustment of `p` (the family-wise error rate): each
/// adjusted p-value, in the order given.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let v = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(v);
        adjusted[i] = running;
    }
    adjusted
}

/// Compares several metrics at once (each: baseline runs, current runs,
/// which way is worse), judging each at the family-wise level `alpha`:
/// a metric whose Holm-adjusted p-value is not below `alpha` is
/// indistinguishable, whatever its own interval says.
pub fn compare_all(
    metrics: &[(&[f64], &[f64], Worse)],
    alpha: f64,
    min_effect: f64,
) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = metrics
        .iter()
        .map(|(a, b, w)| compare(a, b, *w, alpha, min_effect))
        .collect();
    let ps: Vec<f64> = out.iter().map(|c| c.p.unwrap_or(1.0)).collect();
    for (c, adjusted) in out.iter_mut().zip(holm(&ps)) {
        if adjusted >= alpha {
            c.verdict = Verdict::Indistinguishable;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A normal variate (Box–Muller) from `rng`.
    fn normal(rng: &mut fastrand::Rng) -> f64 {
        let u1 = rng.f64().max(1e-300);
        let u2 = rng.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `n` runs of a metric around `level`, with `noise` run-to-run spread
    /// (log-normal, as machine noise multiplies).
    fn runs(rng: &mut fastrand::Rng, n: usize, level: f64, noise: f64) -> Vec<f64> {
        (0..n)
            .map(|_| level * (noise * normal(rng)).exp())
            .collect()
    }

    #[test]
    fn known_values() {
        let base = [100.0, 102.0, 98.0, 101.0, 99.0];
        let same = compare(&base, &base, Worse::Higher, 0.05, MIN_EFFECT);
        assert_eq!(same.verdict, Verdict::Indistinguishable);
        assert!((same.ratio - 1.0).abs() < 1e-12);
        assert!(same.p.is_some_and(|p| (p - 1.0).abs() < 1e-9));
        let slower: Vec<f64> = base.iter().map(|x| x * 1.2).collect();
        let c = compare(&base, &slower, Worse::Higher, 0.05, MIN_EFFECT);
        assert_eq!(c.verdict, Verdict::Regressed);
        assert!((c.ratio - 1.2).abs() < 1e-9);
        let (lo, hi) = c.ci.unwrap_or((0.0, 0.0));
        assert!(lo > 1.1 && hi < 1.3 && lo < 1.2 && hi > 1.2, "{lo} {hi}");
        // Throughput down 20%: a regression too.
        let fewer: Vec<f64> = base.iter().map(|x| x * 0.8).collect();
        let t = compare(&base, &fewer, Worse::Lower, 0.05, MIN_EFFECT);
        assert_eq!(t.verdict, Verdict::Regressed);
        assert_eq!(
            compare(&base, &fewer, Worse::Higher, 0.05, MIN_EFFECT).verdict,
            Verdict::Improved
        );
        // A certain but tiny change is below the minimum effect.
        let tiny: Vec<f64> = base.iter().map(|x| x * 1.01).collect();
        assert_eq!(
            compare(&base, &tiny, Worse::Higher, 0.05, MIN_EFFECT).verdict,
            Verdict::Indistinguishable
        );
        // One run a side: weak, no verdict.
        let weak = compare(&[100.0], &[150.0], Worse::Higher, 0.05, MIN_EFFECT);
        assert_eq!(
            (weak.strength, weak.verdict, weak.ci),
            (Strength::Weak, Verdict::Indistinguishable, None)
        );
    }

    #[test]
    fn holm_adjusts_step_down() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.5]);
        let want = [0.04, 0.09, 0.09, 0.5];
        for (a, w) in adjusted.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adjusted:?}");
        }
    }

    /// The two-run targets, on simulated runs with 3% run-to-run noise, 10
    /// runs a side: A/A false alarms at most 5%, a +10% shift found at least
    /// 95% of the time.
    #[test]
    fn aa_false_alarms_and_power_on_simulated_runs() {
        let mut rng = fastrand::Rng::with_seed(20_261_207);
        let trials = 2_000;
        let (mut false_alarms, mut found) = (0, 0);
        for _ in 0..trials {
            let a = runs(&mut rng, 10, 100.0, 0.03);
            let b = runs(&mut rng, 10, 100.0, 0.03);
            if compare(&a, &b, Worse::Higher, 0.05, MIN_EFFECT).verdict
                != Verdict::Indistinguishable
            {
                false_alarms += 1;
            }
            let c = runs(&mut rng, 10, 110.0, 0.03);
            if compare(&a, &c, Worse::Higher, 0.05, MIN_EFFECT).verdict == Verdict::Regressed {
                found += 1;
            }
        }
        let (fa, power) = (
            f64::from(false_alarms) / f64::from(trials),
            f64::from(found) / f64::from(trials),
        );
        println!("A/A false alarms {fa:.3}, power at +10% {power:.3} ({trials} trials)");
        assert!(fa <= 0.05, "A/A false alarms {fa}");
        assert!(power >= 0.95, "power at +10% {power}");
    }

    /// Three metrics unchanged, compared together: Holm keeps the family's
    /// false alarms at most alpha.
    #[test]
    fn holm_keeps_a_familys_false_alarms_down() {
        let mut rng = fastrand::Rng::with_seed(7);
        let trials = 1_000;
        let mut any = 0;
        for _ in 0..trials {
            let sides: Vec<(Vec<f64>, Vec<f64>)> = (0..3)
                .map(|_| {
                    (
                        runs(&mut rng, 10, 50.0, 0.03),
                        runs(&mut rng, 10, 50.0, 0.03),
                    )
                })
                .collect();
            let metrics: Vec<(&[f64], &[f64], Worse)> = sides
                .iter()
                .map(|(a, b)| (a.as_slice(), b.as_slice(), Worse::Higher))
                .collect();
            if compare_all(&metrics, 0.05, 0.0)
                .iter()
                .any(|c| c.verdict != Verdict::Indistinguishable)
            {
                any += 1;
            }
        }
        let rate = f64::from(any) / f64::from(trials);
        println!("family-wise false alarms over 3 metrics: {rate:.3}");
        assert!(rate <= 0.06, "{rate}");
    }
}
