//! The processes of the system under test: found by PID, by name, or by the TCP
//! port they listen on, and sampled for CPU, resident memory, threads and open
//! file descriptors. A process found by name or port that goes away (a restart)
//! is looked for again at every sample until it is back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use loadline_core::monitor::MonitorValue;

use crate::board::{series_key, value, Latch};
use crate::config::ProcessSpec;
use crate::linux_proc::{self, PidStat, Who};
use crate::sampling::BlockingSampler;

/// One process (or group of processes) to watch.
#[derive(Debug)]
struct Target {
    spec: ProcessSpec,
    /// Where it was asked for, for messages (`monitor.processes[0]`).
    origin: String,
    /// The processes it currently resolves to.
    pids: Vec<u32>,
    /// Whether it ever resolved to a process.
    found_once: bool,
    /// A PID target whose process is gone: never looked for again.
    finished: bool,
}

/// A process being followed.
#[derive(Debug)]
struct Followed {
    start_time: u64,
    /// CPU ticks at the last sample, and when they were read.
    last_cpu: Option<(u64, Instant)>,
}

pub(crate) struct ProcessSampler {
    targets: Vec<Target>,
    followed: BTreeMap<u32, Followed>,
    latch: Latch,
}

impl ProcessSampler {
    /// `targets` pairs each process to watch with where it was asked for.
    pub(crate) fn new(targets: Vec<(ProcessSpec, String)>) -> Self {
        ProcessSampler {
            targets: targets
                .into_iter()
                .map(|(spec, origin)| Target {
                    spec,
                    origin,
                    pids: Vec::new(),
                    found_once: false,
                    finished: false,
                })
                .collect(),
            followed: BTreeMap::new(),
            latch: Latch::default(),
        }
    }

    /// Looks again for the targets that have no live process (or lost one).
    fn resolve(&mut self, alive: &BTreeMap<u32, (PidStat, Instant)>, warnings: &mut Vec<String>) {
        for (index, target) in self.targets.iter_mut().enumerate() {
            let lost = target.pids.iter().any(|pid| !alive.contains_key(pid));
            if target.finished || (!target.pids.is_empty() && !lost) {
                continue;
            }
            let origin = &target.origin;
            let key = format!("target{index}");
            let found = match &target.spec {
                ProcessSpec::Pid(pid) => {
                    let pid = *pid;
                    target.finished =
                        target.found_once || linux_proc::read_pid_stat(Who::Pid(pid)).is_err();
                    if target.finished {
                        target.pids.clear();
                        warnings.push(if target.found_once {
                            format!("process monitor ({origin}): PID {pid} has exited; no longer watching it")
                        } else {
                            format!("process monitor ({origin}): no process has PID {pid}; not watching it")
                        });
                    } else {
                        target.pids = vec![pid];
                        target.found_once = true;
                    }
                    continue;
                }
                ProcessSpec::Name(name) => linux_proc::pids_named(name)
                    .map(|pids| (pids, format!("no process named `{name}` is running"))),
                ProcessSpec::Port(port) => linux_proc::listening_pids(*port).map(|listeners| {
                    let missing = if listeners.socket_found {
                        format!(
                            "a socket listens on TCP port {port} but its process cannot be seen \
                             (another user's? run loadline as that user or as root)"
                        )
                    } else {
                        format!("no process listens on TCP port {port} on this machine")
                    };
                    (listeners.pids, missing)
                }),
            };
            match found {
                Ok((pids, _)) if !pids.is_empty() => {
                    let was_missing = self.latch.clear(&key);
                    if was_missing && target.found_once {
                        tracing::info!(origin = %origin, ?pids, "process monitor found its process again");
                    }
                    target.pids = pids;
                    target.found_once = true;
                }
                Ok((_, missing)) => {
                    target.pids.clear();
                    let again = target.found_once;
                    self.latch.raise(&key, warnings, || {
                        if again {
                            format!("process monitor ({origin}): the process has gone: {missing}; looking for it again at every sample")
                        } else {
                            format!("process monitor ({origin}): {missing} (yet); looking for it at every sample")
                        }
                    });
                }
                Err(error) => {
                    target.pids.clear();
                    self.latch.raise(&key, warnings, || {
                        format!("process monitor ({origin}): cannot look for the process: {error}")
                    });
                }
            }
        }
    }
}

impl BlockingSampler for ProcessSampler {
    fn what(&self) -> &'static str {
        "process monitor"
    }

    fn sample(&mut self, out: &mut Vec<MonitorValue>, warnings: &mut Vec<String>) {
        // 1. Which followed processes are still there: same PID, same start time.
        let mut alive = BTreeMap::new();
        for (&pid, followed) in &self.followed {
            if let Ok(stat) = linux_proc::read_pid_stat(Who::Pid(pid)) {
                if stat.start_time == followed.start_time {
                    alive.insert(pid, (stat, Instant::now()));
                }
            }
        }
        // 2. Look again for the targets without a live process.
        self.resolve(&alive, warnings);
        // 3. Follow the processes found now, forget the others.
        let wanted: BTreeSet<u32> = self
            .targets
            .iter()
            .flat_map(|t| t.pids.iter().copied())
            .collect();
        self.followed.retain(|pid, _| wanted.contains(pid));
        alive.retain(|pid, _| wanted.contains(pid));
        for &pid in &wanted {
            if alive.contains_key(&pid) {
                continue;
            }
            if let Ok(stat) = linux_proc::read_pid_stat(Who::Pid(pid)) {
                let start_time = stat.start_time;
                alive.insert(pid, (stat, Instant::now()));
                self.followed.insert(
                    pid,
                    Followed {
                        start_time,
                        last_cpu: None,
                    },
                );
            }
        }
        // 4. Sample them.
        let hz = linux_proc::ticks_per_second();
        for (pid, (stat, at)) in alive {
            let Some(followed) = self.followed.get_mut(&pid) else {
                continue;
            };
            let pid_text = pid.to_string();
            let labels = [("pid", pid_text.as_str()), ("name", stat.comm.as_str())];
            let mut push = |name: &str, v: f64| out.extend(value(series_key(name, labels), v));
            if let Some(percent) = cpu_percent(followed.last_cpu, (stat.cpu_ticks, at), hz) {
                push("process.cpu_percent", percent);
            }
            followed.last_cpu = Some((stat.cpu_ticks, at));
            if let Ok(rss) = linux_proc::read_rss(Who::Pid(pid)) {
                push("process.rss_bytes", rss as f64);
            }
            push("process.threads", stat.threads as f64);
            let fd_key = format!("fds{pid}");
            match linux_proc::count_fds(Who::Pid(pid)) {
                Ok(fds) => {
                    self.latch.clear(&fd_key);
                    push("process.fds", fds as f64);
                }
                Err(error) => self.latch.raise(&fd_key, warnings, || {
                    format!(
                        "process monitor: cannot count the open files of PID {pid} ({}): {error}",
                        stat.comm
                    )
                }),
            }
        }
    }
}

/// CPU use between two readings of a process's CPU ticks, in percent of one core.
pub(crate) fn cpu_percent(
    before: Option<(u64, Instant)>,
    now: (u64, Instant),
    hz: f64,
) -> Option<f64> {
    let (ticks_before, at_before) = before?;
    let (ticks_now, at_now) = now;
    let wall = at_now.checked_duration_since(at_before)?.as_secs_f64();
    let ticks = ticks_now.checked_sub(ticks_before)?;
    (wall > 0.0 && hz > 0.0).then(|| ticks as f64 / hz / wall * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cpu_percent_is_of_one_core() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        // 300 ticks at 100 Hz in 2 s: 1.5 cores.
        assert_eq!(
            cpu_percent(Some((1000, t0)), (1300, t1), 100.0),
            Some(150.0)
        );
        assert_eq!(cpu_percent(None, (1300, t1), 100.0), None);
        assert_eq!(cpu_percent(Some((1000, t0)), (900, t1), 100.0), None);
        assert_eq!(cpu_percent(Some((1000, t1)), (1100, t1), 100.0), None);
    }
}
