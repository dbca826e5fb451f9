//! loadline itself: its CPU and memory, and a loud warning when it nears CPU
//! saturation, because from then on its latencies include its own queueing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use loadline_core::monitor::MonitorValue;

use crate::board::{value, Latch};
use crate::linux_proc::{self, Who};
use crate::process::cpu_percent;
use crate::sampling::BlockingSampler;

/// Above this share of its available cores, loadline counts as busy…
pub(crate) const SATURATION_SHARE: f64 = 0.85;
/// …and after this many busy samples in a row, as saturated.
pub(crate) const SATURATION_SAMPLES: u32 = 2;

/// Tells when loadline's own CPU use stays near all of its cores.
#[derive(Debug, Default)]
pub(crate) struct SaturationDetector {
    streak: u32,
    saturated: bool,
}

impl SaturationDetector {
    /// Feeds one sample of loadline's CPU use (percent of one core) on `cores`
    /// cores; returns the warning to give when saturation begins.
    pub(crate) fn observe(&mut self, cpu_percent: f64, cores: usize) -> Option<String> {
        let cores = cores.max(1);
        let share = cpu_percent / (100.0 * cores as f64);
        if share <= SATURATION_SHARE {
            self.streak = 0;
            self.saturated = false;
            return None;
        }
        self.streak += 1;
        if self.streak < SATURATION_SAMPLES || self.saturated {
            return None;
        }
        self.saturated = true;
        let unit = if cores == 1 { "core" } else { "cores" };
        Some(format!(
            "loadline is near CPU saturation ({:.0}% of {cores} {unit}): \
             its latencies include its own queueing",
            share * 100.0
        ))
    }

    pub(crate) fn saturated(&self) -> bool {
        self.saturated
    }
}

pub(crate) struct SelfSampler {
    cores: usize,
    last_cpu: Option<(u64, Instant)>,
    detector: SaturationDetector,
    seen: Arc<AtomicBool>,
    latch: Latch,
}

impl SelfSampler {
    /// `seen` is set once saturation was seen.
    pub(crate) fn new(seen: Arc<AtomicBool>) -> Self {
        SelfSampler {
            cores: available_cores(),
            last_cpu: None,
            detector: SaturationDetector::default(),
            seen,
            latch: Latch::default(),
        }
    }
}

/// The cores this process may use (its affinity and CPU quota included).
pub(crate) fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl BlockingSampler for SelfSampler {
    fn what(&self) -> &'static str {
        "loadline's own monitor"
    }

    fn sample(&mut self, out: &mut Vec<MonitorValue>, warnings: &mut Vec<String>) {
        out.extend(value("loadline.cores".into(), self.cores as f64));
        match linux_proc::read_pid_stat(Who::Myself) {
            Ok(stat) => {
                self.latch.clear("stat");
                let now = (stat.cpu_ticks, Instant::now());
                let hz = linux_proc::ticks_per_second();
                if let Some(percent) = cpu_percent(self.last_cpu, now, hz) {
                    out.extend(value("loadline.cpu_percent".into(), percent));
                    if let Some(warning) = self.detector.observe(percent, self.cores) {
                        self.seen.store(true, Ordering::Relaxed);
                        warnings.push(warning);
                    }
                }
                self.last_cpu = Some(now);
            }
            Err(error) => self.latch.raise("stat", warnings, || {
                format!("loadline's own monitor: cannot read /proc/self/stat: {error}")
            }),
        }
        if let Ok(rss) = linux_proc::read_rss(Who::Myself) {
            out.extend(value("loadline.rss_bytes".into(), rss as f64));
        }
        let saturated = if self.detector.saturated() { 1.0 } else { 0.0 };
        out.extend(value("loadline.saturated".into(), saturated));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_needs_two_busy_samples_in_a_row() {
        let mut d = SaturationDetector::default();
        // 2 cores: 85% of them is 170% of one core.
        assert_eq!(d.observe(190.0, 2), None);
        assert!(!d.saturated());
        assert_eq!(d.observe(100.0, 2), None, "a calm sample breaks the streak");
        assert_eq!(d.observe(180.0, 2), None);
        let warning = d
            .observe(195.0, 2)
            .expect("saturated after two busy samples");
        assert_eq!(
            warning,
            "loadline is near CPU saturation (98% of 2 cores): \
             its latencies include its own queueing"
        );
        assert!(d.saturated());
        assert_eq!(d.observe(199.0, 2), None, "told once while it lasts");
        assert!(d.saturated());
        assert_eq!(d.observe(20.0, 2), None);
        assert!(!d.saturated());
        assert_eq!(d.observe(95.0, 1), None);
        assert!(d.observe(99.0, 1).unwrap().contains("(99% of 1 core)"));
    }

    #[test]
    fn exactly_the_threshold_is_not_busy() {
        let mut d = SaturationDetector::default();
        assert_eq!(d.observe(85.0, 1), None);
        assert_eq!(d.observe(85.0, 1), None);
        assert!(!d.saturated());
    }
}
