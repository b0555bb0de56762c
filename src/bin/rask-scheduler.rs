//! `rask-scheduler`: runs a rask scheduler until SIGINT or SIGTERM.
//!
//! Prints `rask-scheduler listening on tcp://HOST:PORT` (`tls://` with
//! `--tls-ca-file`, `--tls-cert`, `--tls-key`) on stdout once it
//! listens (with the real port when `--port 0`), then `rask-scheduler
//! dashboard at http://HOST:PORT/status` unless `--no-dashboard`, logs to stderr through
//! `tracing` (`RUST_LOG`, default `info`), and exits 0 after a clean
//! shutdown (every peer is sent `close`), 2 for bad flags or files, and 1
//! if the scheduler core panicked (a bug: logged, the connections end and
//! the process exits instead of living on without a core).

use clap::Parser;
use rask::protocol::Limits;
use rask::scheduler::{Scheduler, SchedulerConfig};
use std::io::Write;
use std::process::ExitCode;

#[path = "common/mod.rs"]
mod common;
use common::{parse_bytes, seconds};

/// Runs a rask scheduler: clients submit task graphs to it, workers
/// register with it and run the tasks it sends them.
#[derive(Parser, Debug)]
#[command(name = "rask-scheduler", version)]
struct Args {
    /// Address to listen on. Anything but a loopback address exposes the
    /// scheduler to the network: use --auth-token-file then.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on; 0 picks a free port (the line printed on stdout
    /// tells which).
    #[arg(long, default_value_t = 8786)]
    port: u16,

    /// Name of the scheduler, sent to every peer in the handshake and used
    /// in logs.
    #[arg(long, default_value = "scheduler")]
    name: String,

    /// Seconds a worker may stay silent (no heartbeat, no message) before it
    /// is considered gone and its tasks are rescheduled.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    heartbeat_timeout: f64,

    /// A task that was running on this many workers that died errs (with a
    /// message saying so) instead of being placed again; 0 never gives up.
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=255))]
    allowed_failures: u32,

    /// A worker named in this many `missing-data` reports within a minute
    /// (other workers could not fetch its results: its data port is
    /// unreachable) is removed, its results recomputed elsewhere; 0 never
    /// removes one.
    #[arg(long, default_value_t = 3, value_name = "N")]
    missing_data_per_worker: u32,

    /// A task whose inputs could not be fetched this many times
    /// (`missing-data`) errs with a message saying so; 0 never gives up.
    #[arg(long, default_value_t = 5, value_name = "N")]
    missing_data_per_key: u32,

    /// Seconds tasks may wait for a worker that offers their function (no
    /// connected worker does) before they err; by default they wait for
    /// ever (their clients are warned at once either way).
    #[arg(long, value_name = "SECONDS")]
    no_workers_timeout: Option<f64>,

    /// Seconds a retiring worker whose results have nowhere to go (no
    /// other worker) waits for a worker to join before it leaves anyway
    /// (its results are then recomputed if needed).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    retire_timeout: f64,

    /// Seconds a new connection has to send its hello; one that has not
    /// is closed.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    handshake_timeout: f64,

    /// Largest frame accepted, in bytes (units as for sizes: 64MiB, 4GB);
    /// a connection sending a bigger one is closed.
    #[arg(long, default_value = "4GiB", value_name = "BYTES", value_parser = parse_bytes)]
    max_frame_size: u64,

    /// Largest message (all its frames) accepted, in bytes; a connection
    /// sending a bigger one is closed.
    #[arg(long, default_value = "8GiB", value_name = "BYTES", value_parser = parse_bytes)]
    max_message_size: u64,

    /// Most connections open at once (handshakes in progress included); one
    /// more is answered with an error `too-many-connections` and closed. 0:
    /// no limit.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_connections: usize,

    /// Where to serve the web dashboard and Prometheus /metrics (HOST:PORT;
    /// port 0 picks a free port). Without this flag: 127.0.0.1:8787, or a
    /// free port on 127.0.0.1 when 8787 is taken (a warning says so). The
    /// dashboard shows the cluster's tasks, workers and logs to anyone who
    /// can reach it: keep it on loopback unless that is what you want.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dashboard")]
    dashboard_address: Option<String>,

    /// Serve no dashboard and no /metrics.
    #[arg(long)]
    no_dashboard: bool,

    #[command(flatten)]
    security: common::Security,
}

/// `--dashboard-address`, or the default (`DEFAULT_DASHBOARD`: loopback
/// port 8787, or any free port when that one is taken), or none.
fn dashboard_address(args: &Args) -> Option<String> {
    if args.no_dashboard {
        return None;
    }
    Some(
        args.dashboard_address
            .clone()
            .unwrap_or_else(|| rask::scheduler::DEFAULT_DASHBOARD.into()),
    )
}

fn limits(max_frame_size: u64, max_message_size: u64) -> Result<Limits, String> {
    if max_frame_size == 0 || max_message_size == 0 {
        return Err("--max-frame-size and --max-message-size must be positive".into());
    }
    Ok(Limits {
        max_frame_size,
        max_message_size,
        ..Limits::default()
    })
}

/// Why the program ends with an error: bad flags or files (status 2), or a
/// panic of the scheduler core while serving (status 1).
enum Failure {
    Usage(String),
    Core(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Usage(e)
    }
}

fn run(args: Args) -> Result<(), Failure> {
    let token = args.security.token()?;
    // Mutual TLS lets in only holders of a certificate of the cluster's CA.
    if args.security.open_to_anyone(&args.host) {
        tracing::warn!(
            "listening on {} without an auth token or TLS: anyone who can reach this port can run tasks on the cluster (see --auth-token-file, --tls-ca-file)",
            args.host
        );
    }
    let tls = args.security.tls()?;
    let dashboard = dashboard_address(&args);
    let config = SchedulerConfig {
        host: args.host.clone(),
        port: args.port,
        name: args.name.clone(),
        heartbeat_timeout: seconds("heartbeat-timeout", args.heartbeat_timeout)?,
        handshake_timeout: seconds("handshake-timeout", args.handshake_timeout)?,
        limits: limits(args.max_frame_size, args.max_message_size)?,
        max_connections: args.max_connections,
        token,
        tls,
        options: rask::scheduler::SchedulerOptions {
            allowed_failures: args.allowed_failures,
            missing_data_per_worker: args.missing_data_per_worker,
            missing_data_per_key: args.missing_data_per_key,
            no_workers_timeout: match args.no_workers_timeout {
                Some(s) => Some(seconds("no-workers-timeout", s)?.as_secs_f64()),
                None => None,
            },
            panic_on_key: std::env::var("RASK_SCHEDULER_TEST_PANIC_ON_KEY").ok(),
            break_on_key: std::env::var("RASK_SCHEDULER_TEST_BREAK_ON_KEY").ok(),
            retire_timeout: seconds("retire-timeout", args.retire_timeout)?.as_secs_f64(),
            ..Default::default()
        },
        dashboard,
    };
    let handle = Scheduler::start(config)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let mut signals = rask::runtime::StopSignals::listen();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "rask-scheduler listening on {}", handle.address());
        if let Some(link) = handle.dashboard_link() {
            let _ = writeln!(out, "rask-scheduler dashboard at {link}");
        }
        let _ = out.flush();
    }
    let stop = rask::runtime::block_on(async {
        tokio::select! {
            s = signals.next() => Ok(s),
            m = handle.failed() => Err(m),
        }
    });
    match stop {
        Ok(signal) => {
            tracing::info!("{signal}: shutting down");
            handle.shutdown();
            Ok(())
        }
        // Not a hang with a dead core: the process ends, and says why.
        Err(m) => Err(Failure::Core(format!(
            "the scheduler core panicked (a bug in rask, please report it): {m}"
        ))),
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
        Err(Failure::Usage(e)) => {
            eprintln!("rask-scheduler: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Core(e)) => {
            eprintln!("rask-scheduler: {e}");
            ExitCode::from(1)
        }
    }
}
