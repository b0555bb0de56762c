//! What `rask-scheduler` and `rask-worker` share: the security flags (token
//! file, TLS files) and the parsing of sizes and durations. Included by each
//! binary with `#[path]` (a directory without `main.rs` is not a binary).

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

/// The flags that keep strangers out, the same on both programs.
#[derive(clap::Args, Debug)]
pub struct Security {
    /// A file holding the cluster's shared secret (surrounding whitespace is
    /// ignored). It is presented on every connection this process makes and
    /// required on every connection it accepts.
    #[arg(long, value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,

    /// TLS: the CA certificate(s) (PEM). With --tls-cert and --tls-key, the
    /// port this process listens on serves TLS only (announced as
    /// tls://HOST:PORT), whoever connects must present a certificate the CA
    /// signed, and tls:// addresses are reached with TLS.
    #[arg(long, value_name = "PATH", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca_file: Option<PathBuf>,

    /// TLS: this process's certificate chain (PEM), signed by the CA; it
    /// must allow both server and client use.
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca_file", "tls_key"])]
    pub tls_cert: Option<PathBuf>,

    /// TLS: the private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca_file", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

impl Security {
    /// The token of --auth-token-file, if given.
    pub fn token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.auth_token_file else {
            return Ok(None);
        };
        let t = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --auth-token-file {}: {e}", path.display()))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(format!("the token file {} is empty", path.display()));
        }
        Ok(Some(t))
    }

    /// The loaded TLS configuration of the --tls-* files, if given.
    pub fn tls(&self) -> Result<Option<rask::protocol::TlsConfig>, String> {
        rask::protocol::TlsConfig::from_options(
            self.tls_ca_file.as_deref(),
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
        )
        .map_err(|e| e.to_string())
    }

    /// Whether listening on `host` lets anyone in: no token, no TLS, and
    /// an address beyond loopback (the programs warn then).
    pub fn open_to_anyone(&self, host: &str) -> bool {
        self.auth_token_file.is_none() && self.tls_ca_file.is_none() && !is_loopback(host)
    }
}

/// Parses `4GB`, `4 GiB`, `1.5g`, `1000000`: decimal units (k, M, G, T,
/// with or without B) and binary ones (KiB, MiB, GiB, TiB).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
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

/// A positive duration from a `--name` flag in seconds.
pub fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{name} must be a positive number of seconds, got {s}"))
}

/// Whether every address `host` resolves to is a loopback one.
pub fn is_loopback(host: &str) -> bool {
    match (host, 0).to_socket_addrs() {
        Ok(mut addrs) => addrs.all(|a| a.ip().is_loopback()),
        Err(_) => false,
    }
}
