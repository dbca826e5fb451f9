//! Reading Linux's `/proc`: the text of each file is parsed by a pure function
//! (tested on fixed texts), and thin readers put files and parsers together. Every
//! read here is quick but blocking: callers run them on the blocking pool.

use std::collections::HashSet;
use std::fmt::Display;
use std::io;
use std::sync::OnceLock;

const PROC: &str = "/proc";

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

/// Parses `/proc/PID/stat`. The name sits in parentheses and may itself contain
/// spaces and parentheses, so the fields are counted from the last `)`.
pub(crate) fn parse_pid_stat(text: &str) -> Option<PidStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // Fields after the name, numbered from 3 (state) as in proc(5).
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(PidStat {
        comm,
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        threads: field(20)?,
        start_time: field(22)?,
    })
}

/// The resident set size in bytes, from the `VmRSS:` line of `/proc/PID/status`
/// (absent for zombies and kernel threads).
pub(crate) fn parse_status_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    kib_field(line)
}

/// `Name:   123 kB` → 123 × 1024.
fn kib_field(line: &str) -> Option<u64> {
    let mut words = line.split_whitespace().skip(1);
    let number: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => number.checked_mul(1024),
        Some(_) => None,
    }
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
}

pub(crate) fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| numbers.get(i).copied().unwrap_or(0);
    if numbers.len() < 4 {
        return None;
    }
    Some(CpuTimes {
        user: at(0),
        nice: at(1),
        system: at(2),
        idle: at(3),
        iowait: at(4),
        irq: at(5),
        softirq: at(6),
        steal: at(7),
    })
}

/// Total and available memory in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemInfo {
    pub total: u64,
    pub available: u64,
}

pub(crate) fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let mut total = None;
    let mut available = None;
    let mut free = None;
    for line in text.lines() {
        if line.starts_with("MemTotal:") {
            total = kib_field(line);
        } else if line.starts_with("MemAvailable:") {
            available = kib_field(line);
        } else if line.starts_with("MemFree:") {
            free = kib_field(line);
        }
    }
    Some(MemInfo {
        total: total?,
        // Kernels before 3.14 have no MemAvailable: free memory is the closest.
        available: available.or(free)?,
    })
}

/// The one-minute load average, from `/proc/loadavg`.
pub(crate) fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Bytes received and sent by one network interface since boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetDev {
    pub iface: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Parses `/proc/net/dev`: two header lines, then `iface: rx(8 fields) tx(8 fields)`.
pub(crate) fn parse_net_dev(text: &str) -> Vec<NetDev> {
    text.lines()
        .filter_map(|line| {
            let (iface, counters) = line.split_once(':')?;
            let numbers: Vec<u64> = counters
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<_>>()?;
            Some(NetDev {
                iface: iface.trim().to_owned(),
                rx_bytes: *numbers.first()?,
                tx_bytes: *numbers.get(8)?,
            })
        })
        .collect()
}

/// The inodes of the sockets listening on TCP `port`, from `/proc/net/tcp` or
/// `/proc/net/tcp6` (`sl local rem st ... inode`, addresses as `HEXIP:HEXPORT`,
/// state `0A` = LISTEN).
pub(crate) fn parse_listen_inodes(text: &str, port: u16) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let listening = *fields.get(3)? == "0A";
            let same_port = u16::from_str_radix(hex_port, 16).ok()? == port;
            (listening && same_port)
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .filter(|&inode| inode != 0)
        .collect()
}

/// The clock-tick rate (`AT_CLKTCK`) from the auxiliary vector the kernel gave this
/// process (`/proc/self/auxv`: pairs of native words, type then value).
pub(crate) fn parse_auxv_clock_ticks(bytes: &[u8]) -> Option<u64> {
    const AT_CLKTCK: u64 = 17;
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |chunk: &[u8]| -> Option<u64> {
        let array: [u8; WORD] = chunk.try_into().ok()?;
        Some(usize::from_ne_bytes(array) as u64)
    };
    bytes.chunks_exact(2 * WORD).find_map(|pair| {
        let (kind, value) = pair.split_at(WORD);
        (word(kind)? == AT_CLKTCK)
            .then(|| word(value))
            .flatten()
            .filter(|&hz| hz > 0)
    })
}

/// Clock ticks per second, the unit of CPU times in `/proc` (100 nearly
/// everywhere; read once from the auxiliary vector).
pub(crate) fn ticks_per_second() -> f64 {
    static HZ: OnceLock<f64> = OnceLock::new();
    *HZ.get_or_init(|| {
        std::fs::read(format!("{PROC}/self/auxv"))
            .ok()
            .and_then(|bytes| parse_auxv_clock_ticks(&bytes))
            .map_or(100.0, |hz| hz as f64)
    })
}

/// `who` is a PID or `self`.
pub(crate) fn read_pid_stat(who: impl Display) -> io::Result<PidStat> {
    let text = std::fs::read_to_string(format!("{PROC}/{who}/stat"))?;
    parse_pid_stat(&text).ok_or_else(|| unreadable(format!("{PROC}/{who}/stat")))
}

pub(crate) fn read_rss(who: impl Display) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("{PROC}/{who}/status"))?;
    parse_status_rss(&text).ok_or_else(|| unreadable(format!("VmRSS in {PROC}/{who}/status")))
}

pub(crate) fn count_fds(who: impl Display) -> io::Result<u64> {
    let mut count = 0;
    for entry in std::fs::read_dir(format!("{PROC}/{who}/fd"))? {
        entry?;
        count += 1;
    }
    Ok(count)
}

/// Reads and parses one machine-wide file such as `stat` or `meminfo`.
pub(crate) fn read_system<T>(file: &str, parse: impl FnOnce(&str) -> Option<T>) -> io::Result<T> {
    let path = format!("{PROC}/{file}");
    let text = std::fs::read_to_string(&path)?;
    parse(&text).ok_or_else(|| unreadable(path))
}

fn unreadable(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cannot parse {what}"))
}

/// Every PID in `/proc`.
pub(crate) fn all_pids() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(PROC)? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// The PIDs whose executable is called `name`: the kernel's name for it, or the
/// file name of its first argument (the kernel's name is cut at 15 bytes).
pub(crate) fn pids_named(name: &str) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    for pid in all_pids()? {
        let comm = std::fs::read_to_string(format!("{PROC}/{pid}/comm")).unwrap_or_default();
        if comm.trim_end_matches('\n') == name {
            found.push(pid);
            continue;
        }
        let cmdline = std::fs::read(format!("{PROC}/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if !base.is_empty() && base == name.as_bytes() {
            found.push(pid);
        }
    }
    Ok(found)
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
/// inodes from `/proc/net/tcp{,6}`, then every process's `fd` links that point at
/// `socket:[INODE]`.
pub(crate) fn listening_pids(port: u16) -> io::Result<Listeners> {
    let mut inodes = HashSet::new();
    let mut read_any = false;
    for table in ["net/tcp", "net/tcp6"] {
        // An IPv4-only or IPv6-only machine has only one of the two tables.
        if let Ok(text) = std::fs::read_to_string(format!("{PROC}/{table}")) {
            read_any = true;
            inodes.extend(parse_listen_inodes(&text, port));
        }
    }
    if !read_any {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot read {PROC}/net/tcp nor {PROC}/net/tcp6"),
        ));
    }
    if inodes.is_empty() {
        return Ok(Listeners::default());
    }
    let wanted: HashSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids = Vec::new();
    for pid in all_pids()? {
        // Processes of other users cannot be looked into without privileges.
        let Ok(fds) = std::fs::read_dir(format!("{PROC}/{pid}/fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|target| target.to_str().map(|t| wanted.contains(t)))
                .unwrap_or(false)
        });
        if holds {
            pids.push(pid);
        }
    }
    Ok(Listeners {
        socket_found: true,
        pids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 7 0 123456 100000 500 18446744073709551615\n";
        let stat = parse_pid_stat(text).unwrap();
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!(stat.cpu_ticks, 325);
        assert_eq!(stat.threads, 7);
        assert_eq!(stat.start_time, 123456);
        assert!(parse_pid_stat("12 (short) S 1 2").is_none());
    }

    #[test]
    fn rss_comes_from_vmrss_in_kib() {
        let text = "Name:\tnginx\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t4\n";
        assert_eq!(parse_status_rss(text), Some(5120 * 1024));
        assert_eq!(parse_status_rss("Name:\tkworker\nThreads:\t1\n"), None);
    }

    #[test]
    fn proc_stat_reads_the_all_cpus_line() {
        let text = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1\n";
        let cpu = parse_proc_stat(text).unwrap();
        assert_eq!(cpu.user, 100);
        assert_eq!(cpu.iowait, 20);
        assert_eq!(cpu.total(), 980);
        assert!(parse_proc_stat("intr 1\n").is_none());
    }

    #[test]
    fn meminfo_total_and_available() {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n\
                    MemAvailable:    8000000 kB\nBuffers:          1 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(MemInfo {
                total: 16_000_000 * 1024,
                available: 8_000_000 * 1024
            })
        );
        let old = "MemTotal: 100 kB\nMemFree: 40 kB\n";
        assert_eq!(parse_meminfo(old).unwrap().available, 40 * 1024);
    }

    #[test]
    fn loadavg_first_number() {
        assert_eq!(parse_loadavg("0.52 0.41 0.30 2/345 6789\n"), Some(0.52));
    }

    #[test]
    fn net_dev_rx_and_tx_bytes() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
    lo: 1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n  \
  eth0:5000 50 0 0 0 0 0 0 6000 60 0 0 0 0 0 0\n";
        let devs = parse_net_dev(text);
        assert_eq!(devs.len(), 2);
        assert_eq!(
            devs[0],
            NetDev {
                iface: "lo".into(),
                rx_bytes: 1000,
                tx_bytes: 2000
            }
        );
        assert_eq!(devs[1].iface, "eth0");
        assert_eq!(devs[1].rx_bytes, 5000);
        assert_eq!(devs[1].tx_bytes, 6000);
    }

    #[test]
    fn listen_inodes_match_port_and_state() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11111 1 0000000000000000 100 0 0 10 0\n   \
1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 22222 1 0000000000000000 20 4 30 10 -1\n   \
2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 33333 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listen_inodes(text, 8080), vec![11111]);
        assert_eq!(parse_listen_inodes(text, 80), vec![33333]);
        assert!(parse_listen_inodes(text, 9090).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 44444 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listen_inodes(v6, 8080), vec![44444]);
    }

    #[test]
    fn clock_ticks_from_the_auxiliary_vector() {
        let mut bytes = Vec::new();
        for (kind, value) in [(6usize, 4096usize), (17, 250), (0, 0)] {
            bytes.extend_from_slice(&kind.to_ne_bytes());
            bytes.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(parse_auxv_clock_ticks(&bytes), Some(250));
        let first_pair = 2 * std::mem::size_of::<usize>();
        assert_eq!(parse_auxv_clock_ticks(&bytes[..first_pair]), None);
    }
}
