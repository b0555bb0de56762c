//! `rask-scheduler`: runs a rask scheduler until SIGINT or SIGTERM.
//!
//! Prints `rask-scheduler listening on tcp://HOST:PORT` (`tls://` with
//! `--tls-ca-file`, `--tls-cert`, `--tls-key`) on stdout once it
//! listens (with the real port when `--port 0`), logs to stderr through
//! `tracing` (`RUST_LOG`, default `info`), and exits 0 after a clean
//! shutdown (every peer is sent `close`), 2 for bad flags or files, and 1
//! if the scheduler core panicked (a bug: logged, the connections end and
//! the process exits instead of living on without a core).

use clap::Parser;
use rask::protocol::Limits;
use rask::scheduler::{Scheduler, SchedulerConfig};
use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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

    /// A file holding the cluster's shared secret (surrounding whitespace is
    /// ignored). Every client and worker must then present it in its hello.
    #[arg(long, value_name = "PATH")]
    auth_token_file: Option<PathBuf>,

    /// TLS: the CA certificate(s) (PEM). With --tls-cert and --tls-key, the
    /// port serves TLS only (address tls://HOST:PORT) and every client and
    /// worker must present a certificate the CA signed.
    #[arg(long, value_name = "PATH", requires_all = ["tls_cert", "tls_key"])]
    tls_ca_file: Option<PathBuf>,

    /// TLS: this process's certificate chain (PEM), signed by the CA; it
    /// must allow both server and client use.
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca_file", "tls_key"])]
    tls_cert: Option<PathBuf>,

    /// TLS: the private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca_file", "tls_cert"])]
    tls_key: Option<PathBuf>,
}

/// Parses `4GB`, `4 GiB`, `1.5g`, `1000000`: decimal units (k, M, G, T,
/// with or without B) and binary ones (KiB, MiB, GiB, TiB).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{s}' is not a size (examples: 4GB, 512MiB, 1000000)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "unknown unit '{u}' in '{s}' (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    let bytes = num * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(bytes.round() as u64)
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

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{name} must be a positive number of seconds, got {s}"))
}

fn is_loopback(host: &str) -> bool {
    match (host, 0).to_socket_addrs() {
        Ok(mut addrs) => addrs.all(|a| a.ip().is_loopback()),
        Err(_) => false,
    }
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
    let token = match &args.auth_token_file {
        Some(path) => {
            let t = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --auth-token-file {}: {e}", path.display()))?;
            let t = t.trim().to_string();
            if t.is_empty() {
                return Err(format!("the token file {} is empty", path.display()).into());
            }
            Some(t)
        }
        None => None,
    };
    // Mutual TLS lets in only holders of a certificate of the cluster's CA.
    if token.is_none() && args.tls_ca_file.is_none() && !is_loopback(&args.host) {
        tracing::warn!(
            "listening on {} without an auth token or TLS: anyone who can reach this port can run tasks on the cluster (see --auth-token-file, --tls-ca-file)",
            args.host
        );
    }
    let tls = rask::protocol::TlsConfig::from_options(
        args.tls_ca_file.as_deref(),
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
    )
    .map_err(|e| e.to_string())?;
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
            panic_on_key: std::env::var("RASK_SCHEDULER_TEST_PANIC_ON_KEY").ok(),
            retire_timeout: seconds("retire-timeout", args.retire_timeout)?.as_secs_f64(),
            ..Default::default()
        },
    };
    let handle = Scheduler::start(config)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let mut signals = rask::runtime::StopSignals::listen();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "rask-scheduler listening on {}", handle.address());
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
