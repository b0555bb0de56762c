//! The accepting gate: the one way a rask server takes connections.
//!
//! The scheduler's port and a worker's data port both accept through a
//! [`Gate`], so what they check cannot differ:
//!
//! - **accept loop** ([`Gate::serve`]): one task per connection, until the
//!   server's stop signal; an `accept` error (out of file descriptors) backs
//!   off and goes on;
//! - **connection limit**: at most `max_connections` open at once
//!   (handshakes in progress and lingering closes count); one more is sent
//!   an `error` with code `too-many-connections` at once (on a TLS port
//!   after the TLS handshake, so it can read it) and closed;
//! - **handshake timeout**: the TLS handshake (when the port serves TLS)
//!   and `hello` must both be done within `handshake_timeout`;
//! - **role check**: only the roles the listener serves (the scheduler:
//!   `client` and `worker`; a data port: `peer`);
//! - **token check**: when the server has a token, the `hello`'s token is
//!   compared in constant time ([`token_matches`], the only token
//!   comparison in rask);
//! - **TLS or plain**, as the server is configured (see [`super::tls`]);
//! - **lingering close**: when the server is done with a connection, the
//!   gate keeps reading (and discarding) until the peer ends its side of the
//!   stream, for at most [`LINGER`], before it closes the socket. Closing a
//!   socket with unread bytes makes the kernel send a reset in place of the
//!   end of the stream, and a reset can cost the peer the last messages
//!   written to it (the `close` of a scheduler that shuts down while a
//!   client is still sending).
//!
//! A refused handshake is answered with an `error` (code `handshake` or
//! `refused`) and closed; each refusal is logged with the peer's address.
//! The outgoing side, for every role, is [`super::conn::connect_with`].

use super::conn::{
    accept_unix, accept_with, refuse_unix, refuse_with, ConnectionLimit, Hello, Inbox, Outbox,
};
use super::messages::{ErrorCode, Role};
use super::{Limits, TlsConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Longest a closed connection keeps reading for the peer's end of the
/// stream (see the module docs).
pub const LINGER: Duration = Duration::from_secs(2);

/// What a listener accepts.
#[derive(Clone, Debug)]
pub struct GateConfig {
    /// This side's name, sent in `welcome` and used in logs.
    pub name: String,
    /// What the listener is, for refusals and logs ("the scheduler", "a
    /// worker's data port").
    pub what: &'static str,
    /// The roles it serves; any other is refused.
    pub roles: &'static [Role],
    /// Where a refused role should go instead (appended to the refusal).
    pub role_hint: &'static str,
    /// When set, a `hello` must carry this token.
    pub token: Option<String>,
    /// When set, the port serves TLS only.
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub handshake_timeout: Duration,
    /// Most connections open at once; 0 means no limit.
    pub max_connections: usize,
    /// The dashboard link sent in `welcome` (a scheduler's).
    pub dashboard: Option<String>,
    /// Whether `welcome` carries an id from the gate's counter (from 1: the
    /// scheduler's clients and workers are known by it); otherwise 0 (a
    /// data port, as docs/protocol.md says).
    pub numbered: bool,
}

/// A connection that passed the gate.
pub struct Admitted {
    /// The id sent in `welcome` (one counter per gate, from 1; 0 when the
    /// gate is not [`GateConfig::numbered`]).
    pub id: u64,
    pub hello: Hello,
    /// The peer's address (for a connection on the Unix socket of a
    /// worker, `0.0.0.0:0`: see `local`).
    pub peer: SocketAddr,
    /// Whether it came through the Unix socket (same host: the connection
    /// can carry descriptors, see [`super::shm`]).
    pub local: bool,
    pub inbox: Inbox,
    pub outbox: Outbox,
}

/// The accepting side of one listener (see the module docs).
#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    connections: Arc<ConnectionLimit>,
    next_id: AtomicU64,
}

/// Whether `given` is the token `want`. Compares without an early exit, so
/// the time taken does not tell how much of a guessed token was right.
pub fn token_matches(want: &str, given: Option<&str>) -> bool {
    let Some(given) = given else {
        return false;
    };
    let (a, b) = (want.as_bytes(), given.as_bytes());
    let n = a.len().max(b.len());
    let mut diff = a.len() ^ b.len();
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as usize;
    }
    std::hint::black_box(diff) == 0
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Client => "client",
        Role::Worker => "worker",
        Role::Peer => "peer",
    }
}

impl Gate {
    pub fn new(config: GateConfig) -> Arc<Gate> {
        Arc::new(Gate {
            connections: ConnectionLimit::new(config.max_connections),
            config,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Connections open now (handshakes and lingering closes included).
    pub fn open(&self) -> usize {
        self.connections.open()
    }

    /// Resolves once no connection is open (see [`Self::open`]).
    pub async fn all_closed(&self) {
        self.connections.all_closed().await
    }

    /// The role and token check of a `hello`: `Err` is the refusal.
    pub fn check(&self, h: &Hello) -> Result<(), String> {
        if !self.config.roles.contains(&h.role) {
            let roles: Vec<String> = self
                .config
                .roles
                .iter()
                .map(|r| format!("'{}'", role_name(*r)))
                .collect();
            return Err(format!(
                "{} takes connections with role {}, not '{}'{}",
                self.config.what,
                roles.join(" or "),
                role_name(h.role),
                self.config.role_hint
            ));
        }
        if let Some(want) = &self.config.token {
            if !token_matches(want, h.token.as_deref()) {
                return Err("authentication failed: missing or wrong token".into());
            }
        }
        Ok(())
    }

    /// Accepts connections until `stop` resolves. Each admitted connection
    /// goes to `handle`, which returns the connection's [`Inbox`] when it
    /// is done with it; the gate then closes it lingering (see the module
    /// docs). `stop` also abandons handshakes in progress.
    pub async fn serve<S, SF, H, HF>(self: Arc<Self>, listener: TcpListener, stop: S, handle: H)
    where
        S: Fn() -> SF + Send + Sync + 'static,
        SF: Future<Output = ()> + Send + 'static,
        H: Fn(Admitted) -> HF + Send + Sync + 'static,
        HF: Future<Output = Inbox> + Send + 'static,
    {
        let stop = Arc::new(stop);
        let handle = Arc::new(handle);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off.
                    tracing::warn!(listener = %self.config.name, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.connections.try_open() else {
                tracing::warn!(
                    listener = %self.config.name,
                    "refused a connection from {peer}: {} connections are open (the limit)",
                    self.connections.open()
                );
                let tls = self.config.tls.clone();
                let message = format!("{} has too many connections open", self.config.what);
                tokio::spawn(async move {
                    refuse_with(
                        stream,
                        tls.as_ref(),
                        &message,
                        ErrorCode::TooManyConnections,
                    )
                    .await
                });
                continue;
            };
            let gate = self.clone();
            let (stop, handle) = (stop.clone(), handle.clone());
            tokio::spawn(async move {
                let admitted = tokio::select! {
                    a = gate.admit(stream, peer) => a,
                    _ = stop() => return,
                };
                let Some(admitted) = admitted else {
                    return;
                };
                let inbox = handle(admitted).await;
                inbox.linger(LINGER).await;
                drop(slot);
            });
        }
    }

    /// [`Self::serve`] for the Unix socket on which a worker takes
    /// connections from its own host ([`super::shm`]): the same limit,
    /// timeout, role and token checks (no TLS: nothing leaves the host),
    /// and the connecting process must run as the same user.
    pub async fn serve_unix<S, SF, H, HF>(
        self: Arc<Self>,
        listener: UnixListener,
        stop: S,
        handle: H,
    ) where
        S: Fn() -> SF + Send + Sync + 'static,
        SF: Future<Output = ()> + Send + 'static,
        H: Fn(Admitted) -> HF + Send + Sync + 'static,
        HF: Future<Output = Inbox> + Send + 'static,
    {
        let stop = Arc::new(stop);
        let handle = Arc::new(handle);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop() => return,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(listener = %self.config.name, "accept (local) failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match stream.peer_cred() {
                Ok(c) if c.uid() == me => {}
                other => {
                    let who = other.map_or_else(|e| e.to_string(), |c| format!("uid {}", c.uid()));
                    tracing::warn!(listener = %self.config.name, "refused a local connection from {who}: not this process's user");
                    tokio::spawn(async move {
                        refuse_unix(
                            stream,
                            "local connections are taken from the same user only",
                            ErrorCode::Refused,
                        )
                        .await
                    });
                    continue;
                }
            }
            let Some(slot) = self.connections.try_open() else {
                let message = format!("{} has too many connections open", self.config.what);
                tokio::spawn(async move {
                    refuse_unix(stream, &message, ErrorCode::TooManyConnections).await
                });
                continue;
            };
            let gate = self.clone();
            let (stop, handle) = (stop.clone(), handle.clone());
            tokio::spawn(async move {
                let admitted = tokio::select! {
                    a = gate.admit_unix(stream) => a,
                    _ = stop() => return,
                };
                let Some(admitted) = admitted else {
                    return;
                };
                let inbox = handle(admitted).await;
                inbox.linger(LINGER).await;
                drop(slot);
            });
        }
    }

    async fn admit_unix(&self, stream: UnixStream) -> Option<Admitted> {
        let c = &self.config;
        let mut id = 0;
        let r = accept_unix(stream, c.limits, c.handshake_timeout, &c.name, |h| {
            self.check(h)?;
            if c.numbered {
                id = self.next_id.fetch_add(1, Ordering::Relaxed);
            }
            Ok(id)
        })
        .await;
        match r {
            Ok((inbox, outbox, hello)) => Some(Admitted {
                id,
                hello,
                peer: SocketAddr::from(([0, 0, 0, 0], 0)),
                local: true,
                inbox,
                outbox,
            }),
            Err(e) => {
                tracing::warn!(listener = %c.name, "refused a local connection: {e}");
                None
            }
        }
    }

    /// The handshake of one accepted connection, with its one check.
    async fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Option<Admitted> {
        let c = &self.config;
        let mut id = 0;
        let r = accept_with(
            stream,
            c.tls.as_ref(),
            c.limits,
            c.handshake_timeout,
            &c.name,
            c.dashboard.as_deref(),
            |h| {
                self.check(h)?;
                if c.numbered {
                    id = self.next_id.fetch_add(1, Ordering::Relaxed);
                }
                Ok(id)
            },
        )
        .await;
        match r {
            Ok((inbox, outbox, hello)) => Some(Admitted {
                id,
                hello,
                peer,
                local: false,
                inbox,
                outbox,
            }),
            Err(e) => {
                tracing::warn!(listener = %c.name, "refused a connection from {peer}: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(token_matches("s3cret", Some("s3cret")));
        assert!(!token_matches("s3cret", Some("s3cres")));
        assert!(!token_matches("s3cret", Some("s3cret!")));
        assert!(!token_matches("x", Some("")));
        assert!(!token_matches("x", None));
        assert!(token_matches("", Some("")));
    }
}
