//! `rask-worker`: joins a rask cluster and runs tasks until the scheduler
//! closes it, or until SIGINT or SIGTERM.
//!
//! SIGTERM or SIGINT retires the worker gracefully: it asks the scheduler
//! to move the results only it holds to other workers, hands back the tasks
//! it has not started, finishes the running ones, and exits 0 when the
//! scheduler says `close` (nothing is recomputed). A second signal during
//! retirement exits at once (status 0; what it held is recomputed
//! elsewhere from the graph, as for a worker that dies).
//!
//! Prints `rask-worker NAME serving data on tcp://HOST:PORT, connected to
//! tcp://SCHEDULER` on stdout once registered, logs to stderr through
//! `tracing` (`RUST_LOG`, default `info`). Exit status: 0 after a signal or
//! a `close` from the scheduler; 1 when the scheduler cannot be reached, or
//! the connection to it is lost and cannot be made again within
//! `--reconnect-timeout` (60 s; it registers again as a new worker when it
//! can); 2 for bad arguments or a plugin that does not load.

use clap::Parser;
use rask::protocol::Limits;
use rask::worker::{load_plugin, Worker, WorkerConfig};
use rask::Registry;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[path = "common/mod.rs"]
mod common;
use common::{parse_bytes, seconds};

/// Runs a rask worker: it registers with the scheduler, runs the tasks the
/// scheduler sends it on a pool of threads, and serves the results to
/// other workers and to clients on its data port.
///
/// Besides the builtin functions (inc, add, sum, ...), a worker runs the
/// functions of the plugins it loads: shared libraries exporting
/// `rask_status rask_plugin_init(rask_registry *, rask_error **)`, which
/// registers C functions with `rask_registry_add_callback`.
#[derive(Parser, Debug)]
#[command(name = "rask-worker", version)]
struct Args {
    /// The scheduler's address.
    #[arg(default_value = "tcp://127.0.0.1:8786", value_name = "SCHEDULER")]
    scheduler: String,

    /// Threads running tasks; 0 runs one per CPU.
    #[arg(long, default_value_t = 0, value_name = "N")]
    nthreads: usize,

    /// Name of the worker, in the scheduler's logs and worker list; by
    /// default `worker-<data port>`.
    #[arg(long)]
    name: Option<String>,

    /// Interface the data port listens on. It is also the host announced to
    /// the scheduler, so other workers and clients must be able to reach
    /// it: use this machine's address in a multi-machine cluster.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// The data port, where other workers and clients fetch results and
    /// store scattered data; 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// The worker's memory limit, in bytes with an optional unit: 4GB
    /// (4×10^9), 4GiB (4×2^30), 512MB, 1.5G. `auto`: the machine's memory
    /// (or its cgroup's limit) times this worker's share of the CPUs
    /// (threads / CPUs), as Dask. 0 or `none`: no limit (nothing spills,
    /// pauses or restarts). Results over the target fraction spill to
    /// disk; see the --memory-*-fraction options.
    #[arg(long, default_value = "auto", value_name = "BYTES")]
    memory_limit: String,

    /// Fraction of the memory limit above which results in memory are
    /// spilled to disk, least recently used first; `false` turns it off.
    #[arg(long, default_value = "0.6", value_name = "FRACTION")]
    memory_target_fraction: String,

    /// Fraction of the memory limit that the process's resident memory
    /// may reach before values are spilled until it is back at the target;
    /// `false` turns it off.
    #[arg(long, default_value = "0.7", value_name = "FRACTION")]
    memory_spill_fraction: String,

    /// Fraction of the memory limit above which (process memory) the
    /// worker pauses: it starts no task until memory is back under it;
    /// `false` turns it off.
    #[arg(long, default_value = "0.8", value_name = "FRACTION")]
    memory_pause_fraction: String,

    /// Fraction of the memory limit above which (process memory) the
    /// worker restarts: it drops what it holds and registers again as a
    /// new worker (the scheduler recomputes the data); `false` turns it
    /// off.
    #[arg(long, default_value = "0.95", value_name = "FRACTION")]
    memory_terminate_fraction: String,

    /// Directory where the worker makes its spill directory (inside
    /// `rask-worker-space/`, removed when the worker exits; directories
    /// left by killed workers are removed by the next worker started
    /// here). Default: the system temp dir.
    #[arg(long, value_name = "PATH")]
    local_directory: Option<PathBuf>,

    /// Compression of spill files: `lz4` (used only where a sample
    /// compresses) or `none`.
    #[arg(long, default_value = "lz4", value_name = "NAME")]
    spill_compression: String,

    /// A plugin (shared library) whose functions this worker runs; repeat
    /// the option to load several.
    #[arg(long = "plugin", value_name = "PATH")]
    plugins: Vec<PathBuf>,

    /// Seconds between heartbeats to the scheduler.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    heartbeat_interval: f64,

    /// Seconds connecting to the scheduler (or to another worker) may take.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    connect_timeout: f64,

    /// Seconds a connection to the data port has to send its hello; one
    /// that has not is closed.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    handshake_timeout: f64,

    /// Largest frame accepted (from the scheduler, peers, clients), in
    /// bytes with an optional unit; a connection sending a bigger one is
    /// closed.
    #[arg(long, default_value = "4GiB", value_name = "BYTES", value_parser = parse_bytes)]
    max_frame_size: u64,

    /// Largest message (all its frames) accepted, in bytes; a connection
    /// sending a bigger one is closed.
    #[arg(long, default_value = "8GiB", value_name = "BYTES", value_parser = parse_bytes)]
    max_message_size: u64,

    /// Most connections open at once on the data port (handshakes in
    /// progress included); one more is answered with an error
    /// `too-many-connections` and closed. 0: no limit.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_connections: usize,

    /// Seconds to keep trying to reconnect when the connection to the
    /// scheduler is lost (backoff from 100 ms to 2 s); the worker then
    /// registers again as a new worker, dropping what it held for the old
    /// scheduler. When the time is up it exits with status 1. 0: exit at
    /// once.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    reconnect_timeout: f64,

    #[command(flatten)]
    security: common::Security,
}

/// What ended the worker, as an exit status.
enum Failure {
    Usage(String),
    Runtime(String),
}

fn run(args: Args) -> Result<(), Failure> {
    let token = args.security.token().map_err(Failure::Usage)?;
    // Mutual TLS lets in only holders of a certificate of the cluster's CA.
    if args.security.open_to_anyone(&args.host) {
        tracing::warn!(
            "serving data on {} without an auth token or TLS: anyone who can reach the data port can read and store the cluster's data (see --auth-token-file, --tls-ca-file)",
            args.host
        );
    }
    let mut registry = Registry::new();
    for p in &args.plugins {
        load_plugin(p, &mut registry).map_err(|e| Failure::Usage(e.to_string()))?;
    }
    let tls = args.security.tls().map_err(Failure::Usage)?;
    let memory_limit = match args.memory_limit.trim() {
        "auto" => rask::worker::auto_memory_limit(args.nthreads),
        "none" => 0,
        s => parse_bytes(s).map_err(|e| Failure::Usage(format!("--memory-limit: {e}")))?,
    };
    let fraction = |name: &str, s: &str| -> Result<Option<f64>, Failure> {
        match s.trim() {
            "false" | "off" | "none" => Ok(None),
            v => v.parse::<f64>().map(Some).map_err(|_| {
                Failure::Usage(format!(
                    "--memory-{name}-fraction must be a number in (0, 1] or false, got {v:?}"
                ))
            }),
        }
    };
    let memory_policy = rask::worker::MemoryPolicy {
        target: fraction("target", &args.memory_target_fraction)?,
        spill: fraction("spill", &args.memory_spill_fraction)?,
        pause: fraction("pause", &args.memory_pause_fraction)?,
        terminate: fraction("terminate", &args.memory_terminate_fraction)?,
    };
    memory_policy.check().map_err(Failure::Usage)?;
    let spill_compression = match args.spill_compression.as_str() {
        "lz4" => true,
        "none" => false,
        other => {
            return Err(Failure::Usage(format!(
                "--spill-compression must be lz4 or none, got {other:?}"
            )))
        }
    };
    let config = WorkerConfig {
        scheduler: args.scheduler.clone(),
        name: args.name.clone().unwrap_or_default(),
        threads: args.nthreads,
        pull_threads: 0, // no pulled functions: plugins run on the pool
        host: args.host.clone(),
        data_port: args.port,
        memory_limit,
        memory_policy,
        local_directory: args.local_directory.clone(),
        spill_compression,
        memory_monitor_interval: Duration::from_millis(100),
        heartbeat_interval: seconds("heartbeat-interval", args.heartbeat_interval)
            .map_err(Failure::Usage)?,
        connect_timeout: seconds("connect-timeout", args.connect_timeout)
            .map_err(Failure::Usage)?,
        handshake_timeout: seconds("handshake-timeout", args.handshake_timeout)
            .map_err(Failure::Usage)?,
        limits: if args.max_frame_size == 0 || args.max_message_size == 0 {
            return Err(Failure::Usage(
                "--max-frame-size and --max-message-size must be positive".into(),
            ));
        } else {
            Limits {
                max_frame_size: args.max_frame_size,
                max_message_size: args.max_message_size,
                ..Limits::default()
            }
        },
        max_connections: args.max_connections,
        runtime: "rust".into(),
        reconnect_timeout: Duration::try_from_secs_f64(args.reconnect_timeout).map_err(|_| {
            Failure::Usage(format!(
                "--reconnect-timeout must be a number of seconds (0 or more), got {}",
                args.reconnect_timeout
            ))
        })?,
        token,
        tls,
    };
    // Before joining: a signal may come as soon as the scheduler sees the
    // worker register, before the address is printed.
    let mut signals = rask::runtime::StopSignals::listen();
    let worker = Worker::start(config, registry).map_err(|e| Failure::Runtime(e.to_string()))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "rask-worker {} serving data on {}, connected to {}",
            worker.name(),
            worker.data_address(),
            args.scheduler
        );
        let _ = out.flush();
    }
    let signal = rask::runtime::block_on(async {
        tokio::select! {
            s = signals.next() => Some(s),
            _ = worker.stopped() => None,
        }
    });
    let signal = match signal {
        Some(s) => {
            tracing::info!(
                "{s}: retiring (moving the results only this worker holds to other workers);                  send it again to stop at once"
            );
            worker.retire(&format!("{s} received"));
            rask::runtime::block_on(async {
                tokio::select! {
                    s = signals.next() => Some(s),
                    _ = worker.stopped() => None,
                }
            })
        }
        None => None,
    };
    match signal {
        Some(s) => {
            tracing::info!("{s} again: stopping at once");
            // Sends `close` and waits (up to 2 s) until it is written: the
            // process exits right after.
            worker.stop();
            Ok(())
        }
        None => {
            let reason = worker.wait();
            // Before the process exits: what was queued for the scheduler
            // is written (or 2 s pass; `stop` is idempotent).
            worker.stop();
            if worker.stopped_cleanly() {
                tracing::info!("{reason}");
                Ok(())
            } else {
                Err(Failure::Runtime(reason))
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Runtime(e)) => {
            eprintln!("rask-worker: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("rask-worker: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1000000"), Ok(1_000_000));
        assert_eq!(parse_bytes("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_bytes("4 GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("1.5g"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("10kB"), Ok(10_000));
        assert!(parse_bytes("4 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1").is_err());
    }
}
