//! The machine's and the process's memory, as the worker's memory
//! management reads them (Linux `/proc` and cgroup files).

/// The process's resident memory (RSS) in bytes, from `/proc/self/statm`.
pub fn process_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}

/// The memory this process may use: the machine's (`MemTotal`), or the
/// cgroup's limit when that is lower.
pub fn system_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?
        * 1024;
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .find_map(|s| s.trim().parse::<u64>().ok());
    Some(match cgroup {
        Some(c) if c > 0 && c < total => c,
        _ => total,
    })
}

/// The memory limit of a worker with `threads` threads when none is given,
/// as Dask computes it: the memory this process may use
/// ([`system_memory`]) times the worker's share of the CPUs
/// (`threads / CPUs`, at most 1), so the workers of a host that split its
/// CPUs split its memory too. 0 (no limit) if the memory cannot be read.
pub fn auto_memory_limit(threads: usize) -> u64 {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = if threads == 0 { cpus } else { threads };
    let share = (threads as f64 / cpus as f64).min(1.0);
    system_memory().map_or(0, |m| (m as f64 * share) as u64)
}

/// Returns memory the allocator holds free to the system (glibc's
/// `malloc_trim`), after values were spilled.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_plausible() {
        let rss = process_memory().unwrap();
        let total = system_memory().unwrap();
        assert!(rss > 1 << 20 && rss < total, "rss {rss}, total {total}");
        let one = auto_memory_limit(1);
        let all = auto_memory_limit(0);
        assert_eq!(all, total);
        assert!(one <= all && one > 0);
        assert_eq!(auto_memory_limit(100_000), total);
    }
}
