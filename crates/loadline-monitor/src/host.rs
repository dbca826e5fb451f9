//! The machine loadline runs on: CPU by kind (of all cores), memory, load average
//! and network bytes per second, from `/proc` deltas between samples.

use std::time::Instant;

use loadline_core::monitor::MonitorValue;

use crate::board::{series_key, value, Latch};
use crate::linux_proc::{self, CpuTimes, NetCounters, ProcResult};
use crate::sampling::BlockingSampler;

pub(crate) struct HostSampler {
    /// Watch every interface, not only the loopback (the target is elsewhere).
    all_interfaces: bool,
    last_cpu: Option<CpuTimes>,
    last_net: Option<(Instant, NetCounters)>,
    latch: Latch,
}

impl HostSampler {
    pub(crate) fn new(all_interfaces: bool) -> Self {
        HostSampler {
            all_interfaces,
            last_cpu: None,
            last_net: None,
            latch: Latch::default(),
        }
    }

    /// Reads one file of `/proc` with `read`, telling a failure once per streak.
    fn read<T>(
        &mut self,
        file: &'static str,
        read: impl FnOnce() -> ProcResult<T>,
        warnings: &mut Vec<String>,
    ) -> Option<T> {
        match read() {
            Ok(parsed) => {
                self.latch.clear(file);
                Some(parsed)
            }
            Err(error) => {
                self.latch.raise(file, warnings, || {
                    format!("host monitor: cannot read /proc/{file}: {error}")
                });
                None
            }
        }
    }
}

impl BlockingSampler for HostSampler {
    fn what(&self) -> &'static str {
        "host monitor"
    }

    fn sample(&mut self, out: &mut Vec<MonitorValue>, warnings: &mut Vec<String>) {
        if let Some(cpu) = self.read("stat", linux_proc::cpu_times, warnings) {
            if let Some(before) = self.last_cpu {
                out.extend(cpu_values(&before, &cpu));
            }
            self.last_cpu = Some(cpu);
        }
        if let Some(mem) = self.read("meminfo", linux_proc::meminfo, warnings) {
            let used = mem.total.saturating_sub(mem.available);
            out.extend(value("host.mem_used_bytes".into(), used as f64));
            out.extend(value(
                "host.mem_available_bytes".into(),
                mem.available as f64,
            ));
        }
        if let Some(load1) = self.read("loadavg", linux_proc::load1, warnings) {
            out.extend(value("host.load1".into(), load1));
        }
        if let Some(mut counters) = self.read("net/dev", linux_proc::net_counters, warnings) {
            let now = Instant::now();
            if !self.all_interfaces {
                counters.retain(|iface, _| iface == "lo");
            }
            if let Some((then, before)) = &self.last_net {
                out.extend(net_values(
                    before,
                    &counters,
                    now.duration_since(*then).as_secs_f64(),
                ));
            }
            self.last_net = Some((now, counters));
        }
    }
}

/// The share of all cores' time spent in user, system and iowait between two
/// readings of `/proc/stat`, in percent (user counts nice; system counts irq and
/// softirq).
pub(crate) fn cpu_values(before: &CpuTimes, now: &CpuTimes) -> Vec<MonitorValue> {
    let total = now.total().saturating_sub(before.total());
    if total == 0 {
        return Vec::new();
    }
    let share = |now: u64, before: u64| now.saturating_sub(before) as f64 / total as f64 * 100.0;
    let user = share(now.user + now.nice, before.user + before.nice);
    let system = share(
        now.system + now.irq + now.softirq,
        before.system + before.irq + before.softirq,
    );
    let iowait = share(now.iowait, before.iowait);
    [
        ("host.cpu_user_percent", user),
        ("host.cpu_system_percent", system),
        ("host.cpu_iowait_percent", iowait),
    ]
    .into_iter()
    .filter_map(|(name, v)| value(name.into(), v))
    .collect()
}

/// Bytes per second received and sent by each interface between two readings.
fn net_values(before: &NetCounters, now: &NetCounters, seconds: f64) -> Vec<MonitorValue> {
    let mut out = Vec::new();
    if seconds <= 0.0 {
        return out;
    }
    for (iface, &(rx, tx)) in now {
        let Some(&(rx0, tx0)) = before.get(iface) else {
            continue;
        };
        let labels = [("iface", iface.as_str())];
        // A counter that went down was reset (the interface came back): skip once.
        if let Some(d) = rx.checked_sub(rx0) {
            out.extend(value(
                series_key("host.net_rx_bytes_per_s", labels),
                d as f64 / seconds,
            ));
        }
        if let Some(d) = tx.checked_sub(tx0) {
            out.extend(value(
                series_key("host.net_tx_bytes_per_s", labels),
                d as f64 / seconds,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn cpu_shares_are_of_the_time_that_passed() {
        let before = CpuTimes {
            user: 100,
            idle: 100,
            ..CpuTimes::default()
        };
        let now = CpuTimes {
            user: 130,
            nice: 10,
            system: 15,
            softirq: 5,
            iowait: 10,
            idle: 130,
            ..CpuTimes::default()
        };
        let values = cpu_values(&before, &now);
        let get = |name: &str| values.iter().find(|v| v.series == name).unwrap().value;
        assert_eq!(get("host.cpu_user_percent"), 40.0);
        assert_eq!(get("host.cpu_system_percent"), 20.0);
        assert_eq!(get("host.cpu_iowait_percent"), 10.0);
        assert!(cpu_values(&now, &now).is_empty());
    }

    #[test]
    fn net_rates_per_interface() {
        let before = BTreeMap::from([("lo".to_string(), (1000, 2000))]);
        let now = BTreeMap::from([
            ("lo".to_string(), (3000, 2500)),
            ("eth0".to_string(), (10, 10)),
        ]);
        let values = net_values(&before, &now, 2.0);
        assert_eq!(
            values,
            vec![
                MonitorValue {
                    series: "host.net_rx_bytes_per_s{iface=lo}".into(),
                    value: 1000.0
                },
                MonitorValue {
                    series: "host.net_tx_bytes_per_s{iface=lo}".into(),
                    value: 250.0
                },
            ]
        );
    }
}
