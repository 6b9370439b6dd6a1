//! Reading a process's CPU time and memory from Linux's /proc, for the resource columns of the report.

use anyhow::Context;

/// Kernel clock ticks per second for /proc/PID/stat times. It is 100 on every mainstream Linux
/// build (USER_HZ), and reading the real value would need libc.
const CLK_TCK: f64 = 100.0;

/// User plus system CPU time a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_seconds(&text).with_context(|| format!("parsing {path}"))
}

fn parse_cpu_seconds(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in the stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' the first field is field 3 (state); utime and stime are fields 14 and 15.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("stat line too short")?
            .parse::<u64>()
            .context("not a number")
    };
    Ok((field(14)? + field(15)?) as f64 / CLK_TCK)
}

/// Where the whole machine's CPU time has gone so far (all cores), in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTimes {
    /// Time spent running processes (user, nice, system). Interrupt and softirq time is left out: with
    /// IRQ time accounting the kernel books loopback packet processing there, not on any process, so
    /// it would count our own network traffic as someone else's.
    pub processes: f64,
    /// Time the hypervisor gave our virtual CPUs to someone else while they had work to do.
    pub steal: f64,
}

pub fn machine_times() -> anyhow::Result<MachineTimes> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_times(&text).context("parsing /proc/stat")
}

fn parse_machine_times(stat: &str) -> anyhow::Result<MachineTimes> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no aggregate cpu line")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("not a number")?;
    // Columns: user nice system idle iowait irq softirq steal (guest time is inside user and nice).
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0) as f64 / CLK_TCK;
    Ok(MachineTimes {
        processes: at(0) + at(1) + at(2),
        steal: at(7),
    })
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Current resident set size.
    pub rss_kib: u64,
    /// Peak resident set size since the process started.
    pub hwm_kib: u64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_memory(&text).with_context(|| format!("parsing {path}"))
}

fn parse_memory(status: &str) -> anyhow::Result<Memory> {
    let kib = |key: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .with_context(|| format!("no {key} line"))?;
        let number = line.trim().trim_end_matches("kB").trim();
        number
            .parse()
            .with_context(|| format!("bad {key} value {number:?}"))
    };
    Ok(Memory {
        rss_kib: kib("VmRSS:")?,
        hwm_kib: kib("VmHWM:")?,
    })
}

/// `pid` and every process below it (a gateway with worker processes: nginx, LiteLLM's uvicorn, node).
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if let Some(parent) = parse_parent(&stat) {
                parents.push((child, parent));
            }
        }
    }
    descendants(pid, &parents)
}

/// `root` and its descendants, given (child, parent) pairs.
fn descendants(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, parent)| *parent == p).map(|(c, _)| *c));
        i += 1;
    }
    found
}

fn parse_parent(stat: &str) -> Option<u32> {
    let rest = stat.rsplit_once(')')?.1;
    // Field 4 (ppid) is the second after the command name.
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds used so far by `pid` and its descendants. A process that exited in between is
/// skipped (its time is then lost, so gateways are measured while their workers are stable).
pub fn tree_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let root = cpu_seconds(pid)?;
    let children: f64 = tree(pid)
        .into_iter()
        .skip(1)
        .filter_map(|p| cpu_seconds(p).ok())
        .sum();
    Ok(root + children)
}

/// Resident memory of `pid` and its descendants, summed (shared pages are counted once per process,
/// so this is an upper bound for multi-process gateways).
pub fn tree_memory(pid: u32) -> anyhow::Result<Memory> {
    let mut total = memory(pid)?;
    for p in tree(pid).into_iter().skip(1) {
        if let Ok(m) = memory(p) {
            total.rss_kib += m.rss_kib;
            total.hwm_kib += m.hwm_kib;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_from_stat_line_with_odd_name() {
        let line = "1234 (moat d) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_cpu_seconds(line).unwrap(), 3.0);
    }

    #[test]
    fn machine_times_split_processes_and_steal() {
        let stat = "cpu  100 20 30 5000 40 1 2 3 0 0\ncpu0 50 10 15 2500 20 0 1 1 0 0\n";
        let t = parse_machine_times(stat).unwrap();
        assert_eq!((t.processes, t.steal), (1.5, 0.03));
    }

    #[test]
    fn memory_from_status() {
        let status = "Name:\tmoatd\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        let m = parse_memory(status).unwrap();
        assert_eq!((m.rss_kib, m.hwm_kib), (6789, 12345));
    }

    #[test]
    fn descendants_follow_parent_links() {
        let pairs = [(2, 1), (3, 2), (4, 9), (5, 1)];
        assert_eq!(descendants(1, &pairs), vec![1, 2, 5, 3]);
        assert_eq!(parse_parent("77 (a b) S 42 1 1"), Some(42));
    }

    #[test]
    fn reads_own_process() {
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
        assert!(memory(std::process::id()).unwrap().rss_kib > 0);
    }
}
