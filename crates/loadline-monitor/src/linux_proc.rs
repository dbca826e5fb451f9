//! Reading Linux's `/proc` through the `procfs` crate, which owns the parsing:
//! this module only picks the few numbers the monitors use and puts them in the
//! units they publish (CPU in clock ticks, memory in bytes). Every read here is
//! quick but blocking: callers run them on the blocking pool.

use std::collections::{BTreeMap, HashSet};

use procfs::net::{TcpNetEntry, TcpState};
use procfs::process::{FDTarget, Process, Stat, Status};
use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo, ProcError};

pub(crate) use procfs::ProcResult;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Pid(u32),
    /// loadline itself (`/proc/self`).
    Myself,
}

fn open(who: Who) -> ProcResult<Process> {
    match who {
        Who::Myself => Process::myself(),
        // A number past `i32::MAX` names no process the kernel can have.
        Who::Pid(pid) => i32::try_from(pid)
            .map_err(|_| ProcError::NotFound(None))
            .and_then(Process::new),
    }
}

/// The fields of `/proc/PID/stat` that the monitors use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PidStat {
    /// The executable's name, as the kernel keeps it (at most 15 bytes).
    pub comm: String,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// When the process started, in clock ticks after boot: with the PID, it tells
    /// a process from a later one that reused its PID.
    pub start_time: u64,
}

impl PidStat {
    fn from_stat(stat: Stat) -> ProcResult<PidStat> {
        let numbers = stat
            .utime
            .checked_add(stat.stime)
            .zip(u64::try_from(stat.num_threads).ok());
        let (cpu_ticks, threads) = numbers.ok_or_else(|| {
            let pid = stat.pid;
            ProcError::Other(format!(
                "CPU time or threads out of range in /proc/{pid}/stat"
            ))
        })?;
        Ok(PidStat {
            comm: stat.comm,
            cpu_ticks,
            threads,
            start_time: stat.starttime,
        })
    }
}

pub(crate) fn read_pid_stat(who: Who) -> ProcResult<PidStat> {
    PidStat::from_stat(open(who)?.stat()?)
}

/// The resident set size in bytes, from `VmRSS` in `/proc/PID/status` (absent for
/// zombies and kernel threads).
fn status_rss(status: &Status) -> Option<u64> {
    status.vmrss?.checked_mul(1024)
}

pub(crate) fn read_rss(who: Who) -> ProcResult<u64> {
    let status = open(who)?.status()?;
    status_rss(&status).ok_or(ProcError::Incomplete(None))
}

pub(crate) fn count_fds(who: Who) -> ProcResult<u64> {
    Ok(open(who)?.fd_count()? as u64)
}

/// Clock ticks per second, the unit of CPU times in `/proc` (100 nearly
/// everywhere).
pub(crate) fn ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

/// The machine's CPU time by kind, in clock ticks (first line of `/proc/stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// All the time that passed, over every core (guest time is already counted in
    /// user time, so it is left out).
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }

    /// Kinds an old kernel does not report count as zero.
    fn from_kernel(stats: &KernelStats) -> CpuTimes {
        let all = &stats.total;
        CpuTimes {
            user: all.user,
            nice: all.nice,
            system: all.system,
            idle: all.idle,
            iowait: all.iowait.unwrap_or(0),
            irq: all.irq.unwrap_or(0),
            softirq: all.softirq.unwrap_or(0),
            steal: all.steal.unwrap_or(0),
        }
    }
}

pub(crate) fn cpu_times() -> ProcResult<CpuTimes> {
    KernelStats::current().map(|stats| CpuTimes::from_kernel(&stats))
}

/// Total and available memory in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub total: u64,
    pub available: u64,
}

impl MemInfo {
    fn from_meminfo(info: &Meminfo) -> MemInfo {
        MemInfo {
            total: info.mem_total,
            // Kernels before 3.14 have no MemAvailable: free memory is the closest.
            available: info.mem_available.unwrap_or(info.mem_free),
        }
    }
}

pub(crate) fn meminfo() -> ProcResult<MemInfo> {
    Meminfo::current().map(|info| MemInfo::from_meminfo(&info))
}

/// The one-minute load average, as the kernel prints it (two decimals: procfs
/// reads it as an `f32`, which would show as 0.519999… for 0.52).
fn load1_of(load: &LoadAverage) -> f64 {
    (f64::from(load.one) * 100.0).round() / 100.0
}

pub(crate) fn load1() -> ProcResult<f64> {
    LoadAverage::current().map(|load| load1_of(&load))
}

/// Bytes received and sent so far, by interface.
pub(crate) type NetCounters = BTreeMap<String, (u64, u64)>;

/// The counters of every interface in `/proc/net/dev`.
pub(crate) fn net_counters() -> ProcResult<NetCounters> {
    let devices = procfs::net::dev_status()?;
    Ok(devices
        .into_values()
        .map(|dev| (dev.name, (dev.recv_bytes, dev.sent_bytes)))
        .collect())
}

/// The inodes of the sockets listening on TCP `port` in one socket table.
fn listen_inodes(table: &[TcpNetEntry], port: u16) -> impl Iterator<Item = u64> + '_ {
    table
        .iter()
        .filter(move |e| e.state == TcpState::Listen && e.local_address.port() == port)
        .map(|e| e.inode)
        .filter(|&inode| inode != 0)
}

/// The PIDs of the processes this user may see that `keep` accepts, in order
/// (one that goes away while they are looked at is left out). Each process's
/// handle is let go as soon as it was looked at: holding them all could use up
/// loadline's file descriptors.
fn pids_where(keep: impl Fn(&Process) -> bool) -> ProcResult<Vec<u32>> {
    let mut pids: Vec<u32> = procfs::process::all_processes()?
        .flatten()
        .filter(|process| keep(process))
        .filter_map(|process| u32::try_from(process.pid).ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The PIDs whose executable is called `name`: the kernel's name for it, or the
/// file name of its first argument (the kernel's name is cut at 15 bytes).
pub(crate) fn pids_named(name: &str) -> ProcResult<Vec<u32>> {
    pids_where(|process| {
        if process.stat().is_ok_and(|stat| stat.comm == name) {
            return true;
        }
        let argv = process.cmdline().unwrap_or_default();
        let argv0 = argv.first().map_or("", String::as_str);
        let base = argv0.rsplit('/').next().unwrap_or_default();
        !base.is_empty() && base == name
    })
}

/// What owns the TCP port.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Listeners {
    /// Whether any socket listens on the port at all.
    pub socket_found: bool,
    /// The processes holding one of those sockets (those this user may look at).
    pub pids: Vec<u32>,
}

/// The processes listening on TCP `port` on this machine: the listening sockets'
/// inodes from `/proc/net/tcp{,6}`, then every process's open files that are one
/// of those sockets.
pub(crate) fn listening_pids(port: u16) -> ProcResult<Listeners> {
    // An IPv4-only or IPv6-only machine has only one of the two tables.
    let tables = match (procfs::net::tcp(), procfs::net::tcp6()) {
        (Err(error), Err(_)) => return Err(error),
        (v4, v6) => [v4, v6],
    };
    let inodes: HashSet<u64> = tables
        .iter()
        .flatten()
        .flat_map(|table| listen_inodes(table, port))
        .collect();
    if inodes.is_empty() {
        return Ok(Listeners::default());
    }
    let pids = pids_where(|process| {
        // Processes of other users cannot be looked into without privileges.
        let Ok(fds) = process.fd() else { return false };
        fds.flatten()
            .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if inodes.contains(&inode)))
    })?;
    Ok(Listeners {
        socket_found: true,
        pids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::{ExplicitSystemInfo, FromRead, FromReadSI};

    const SYSTEM: ExplicitSystemInfo = ExplicitSystemInfo {
        boot_time_secs: 1_700_000_000,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: true,
    };

    #[test]
    fn pid_stat_adds_user_and_system_ticks() {
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 7 0 123456 100000 500 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = PidStat::from_stat(Stat::from_read(text.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            stat,
            PidStat {
                comm: "my (odd) name".into(),
                cpu_ticks: 325,
                threads: 7,
                start_time: 123456,
            }
        );
        assert!(Stat::from_read("12 (short) S 1 2".as_bytes()).is_err());
    }

    /// A `/proc/PID/status` with the lines procfs requires, plus `extra`.
    fn status(extra: &str) -> Status {
        let text = format!(
            "Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t77\nNgid:\t0\n\
             Pid:\t77\nPPid:\t1\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
             FDSize:\t64\nGroups:\t\n{extra}Threads:\t4\nSigQ:\t0/63374\n\
             SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
             SigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n\
             SigCgt:\t0000000180000000\nCapInh:\t0000000000000000\n\
             CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
        );
        Status::from_read(text.as_bytes()).unwrap()
    }

    #[test]
    fn rss_comes_from_vmrss_in_kib() {
        let running = status("VmPeak:\t    9000 kB\nVmRSS:\t    5120 kB\n");
        assert_eq!(status_rss(&running), Some(5120 * 1024));
        assert_eq!(status_rss(&status("")), None, "a zombie has no VmRSS");
    }

    #[test]
    fn cpu_times_come_from_the_all_cpus_line() {
        let text = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n\
                    intr 1\nctxt 10\nbtime 1700000000\nprocesses 9\n";
        let stats = KernelStats::from_read(text.as_bytes(), &SYSTEM).unwrap();
        let cpu = CpuTimes::from_kernel(&stats);
        assert_eq!(cpu.user, 100);
        assert_eq!(cpu.iowait, 20);
        assert_eq!(cpu.total(), 980);

        let old = "cpu  100 5 50 800\nctxt 10\nbtime 1700000000\nprocesses 9\n";
        let stats = KernelStats::from_read(old.as_bytes(), &SYSTEM).unwrap();
        assert_eq!(CpuTimes::from_kernel(&stats).total(), 955);
    }

    /// A `/proc/meminfo` with the lines procfs requires, plus `extra`.
    fn meminfo_text(extra: &str) -> Meminfo {
        let mut text = String::from("MemTotal:       16000000 kB\nMemFree:         1000000 kB\n");
        text.push_str(extra);
        for name in [
            "Buffers",
            "Cached",
            "SwapCached",
            "Active",
            "Inactive",
            "SwapTotal",
            "SwapFree",
            "Dirty",
            "Writeback",
            "Mapped",
            "Slab",
            "Committed_AS",
            "VmallocTotal",
            "VmallocUsed",
            "VmallocChunk",
        ] {
            text.push_str(&format!("{name}: 1 kB\n"));
        }
        Meminfo::from_read(text.as_bytes()).unwrap()
    }

    #[test]
    fn meminfo_total_and_available_in_bytes() {
        let info = meminfo_text("MemAvailable:    8000000 kB\n");
        assert_eq!(
            MemInfo::from_meminfo(&info),
            MemInfo {
                total: 16_000_000 * 1024,
                available: 8_000_000 * 1024
            }
        );
        let old = meminfo_text("");
        assert_eq!(MemInfo::from_meminfo(&old).available, 1_000_000 * 1024);
    }

    #[test]
    fn loadavg_first_number_as_printed() {
        let load = LoadAverage::from_read("0.52 0.41 0.30 2/345 6789\n".as_bytes()).unwrap();
        assert_eq!(load1_of(&load), 0.52);
    }

    #[test]
    fn net_dev_rx_and_tx_bytes() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
    lo: 1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n  \
  eth0: 5000 50 0 0 0 0 0 0 6000 60 0 0 0 0 0 0\n";
        let devices = procfs::net::InterfaceDeviceStatus::from_read(text.as_bytes()).unwrap();
        let lo = &devices.0["lo"];
        assert_eq!((lo.recv_bytes, lo.sent_bytes), (1000, 2000));
        let eth0 = &devices.0["eth0"];
        assert_eq!((eth0.recv_bytes, eth0.sent_bytes), (5000, 6000));
    }

    #[test]
    fn listen_inodes_match_port_and_state() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11111 1 0000000000000000 100 0 0 10 0\n   \
1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 22222 1 0000000000000000 20 4 30 10 -1\n   \
2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 33333 1 0000000000000000 100 0 0 10 0\n   \
3: 00000000:0051 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0\n";
        let table = procfs::net::TcpNetEntries::from_read(text.as_bytes(), &SYSTEM)
            .unwrap()
            .0;
        let inodes = |port| listen_inodes(&table, port).collect::<Vec<_>>();
        assert_eq!(inodes(8080), vec![11111]);
        assert_eq!(inodes(80), vec![33333]);
        assert!(inodes(81).is_empty(), "inode 0: a socket being set up");
        assert!(inodes(9090).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 44444 1 0000000000000000 100 0 0 10 0\n";
        let table6 = procfs::net::TcpNetEntries::from_read(v6.as_bytes(), &SYSTEM)
            .unwrap()
            .0;
        assert_eq!(
            listen_inodes(&table6, 8080).collect::<Vec<_>>(),
            vec![44444]
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let me = read_pid_stat(Who::Myself).unwrap();
        let by_pid = read_pid_stat(Who::Pid(std::process::id())).unwrap();
        assert_eq!(me.start_time, by_pid.start_time);
        assert!(me.threads >= 1);
        assert!(read_rss(Who::Myself).unwrap() > 0);
        assert!(count_fds(Who::Myself).unwrap() >= 1);
        assert!(read_pid_stat(Who::Pid(u32::MAX)).is_err());
        assert!(ticks_per_second() > 0.0);
    }
}
