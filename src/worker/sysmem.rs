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

/// The CPU time this process has used (user + system, all threads), from
/// `/proc/self/stat`.
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3:
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(std::time::Duration::from_nanos(
        (utime + stime).saturating_mul(1_000_000_000) / hz,
    ))
}

/// Percent of one CPU this process used between two readings of
/// [`process_cpu_time`] taken `wall` apart.
pub fn cpu_percent(
    before: std::time::Duration,
    after: std::time::Duration,
    wall: std::time::Duration,
) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    100.0 * after.saturating_sub(before).as_secs_f64() / wall.as_secs_f64()
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
/// `malloc_trim`), and the pooled receive buffers, after values were
/// spilled.
pub fn trim() {
    crate::protocol::recvbuf::trim();
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

    #[test]
    fn cpu_time_counts_a_busy_loop() {
        let t0 = process_cpu_time().unwrap();
        let w0 = std::time::Instant::now();
        // Spin until the clock-tick-grained counter has moved.
        let mut x = 0u64;
        let t1 = loop {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            let t = process_cpu_time().unwrap();
            if t > t0 {
                break t;
            }
        };
        std::hint::black_box(x);
        let pct = cpu_percent(t0, t1, w0.elapsed());
        assert!(pct > 0.0, "{pct}");
        assert_eq!(cpu_percent(t1, t0, w0.elapsed()), 0.0);
    }
}
