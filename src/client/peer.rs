//! Connections to workers' data ports (`get-data`, `put-data`), pooled: one
//! connection per worker address, shared by every call of the client and
//! multiplexed by request id.

use super::error::ClientError;
use crate::protocol::conn::{self, Inbox, Outbox};
use crate::protocol::messages::Role;
use crate::protocol::{narrow, DataReply, ErrorCode, Limits, Message};
use bytes::Bytes;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A reply from a worker: the message and the frames of its wire message
/// (for payloads).
pub(crate) struct Reply {
    pub msg: Message,
    pub frames: Vec<Bytes>,
}

type Waiter = mpsc::UnboundedSender<Result<Reply, ClientError>>;

/// One data-port connection.
pub(crate) struct Peer {
    address: String,
    outbox: Outbox,
    state: Mutex<PeerState>,
}

struct PeerState {
    pending: FxHashMap<u64, Waiter>,
    /// Why the connection is gone, once it is.
    closed: Option<String>,
}

impl Peer {
    fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Sends `msg` (with payload frames) and collects the replies carrying
    /// `id` until `complete` says the last one came (a worker answers a
    /// large `get-data` in several `data` messages) or an `error` arrives.
    pub(crate) async fn request(
        &self,
        id: u64,
        msg: Message,
        payloads: Vec<Bytes>,
        mut complete: impl FnMut(&Reply) -> bool,
    ) -> Result<Vec<Reply>, ClientError> {
        let lost = || ClientError::Data(format!("connection to worker {} lost", self.address));
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut st = self.state.lock();
            if let Some(why) = &st.closed {
                return Err(ClientError::Data(format!(
                    "connection to worker {} lost: {why}",
                    self.address
                )));
            }
            st.pending.insert(id, tx);
        }
        // Forget the request however this call ends (even cancelled).
        struct Done<'a>(&'a Peer, u64);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.state.lock().pending.remove(&self.1);
            }
        }
        let _done = Done(self, id);
        if !self.outbox.send_with_payloads(msg, payloads) {
            return Err(lost());
        }
        let mut out = Vec::new();
        loop {
            match rx.recv().await {
                Some(Ok(r)) => {
                    let last = matches!(r.msg, Message::Error { .. }) || complete(&r);
                    out.push(r);
                    if last {
                        return Ok(out);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Err(lost()),
            }
        }
    }

    fn fail_all(&self, why: String) {
        let pending = {
            let mut st = self.state.lock();
            st.closed.get_or_insert(why.clone());
            std::mem::take(&mut st.pending)
        };
        for (_, w) in pending {
            let _ = w.send(Err(ClientError::Data(format!(
                "connection to worker {} lost: {why}",
                self.address
            ))));
        }
    }
}

/// The pool of data-port connections of one client.
pub(crate) struct PeerPool {
    name: String,
    token: Option<String>,
    tls: Option<crate::protocol::TlsConfig>,
    limits: Limits,
    timeout: Duration,
    peers: Mutex<FxHashMap<String, Arc<Peer>>>,
    shutdown: watch::Receiver<bool>,
}

impl PeerPool {
    pub(crate) fn new(
        name: String,
        token: Option<String>,
        tls: Option<crate::protocol::TlsConfig>,
        limits: Limits,
        timeout: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> PeerPool {
        PeerPool {
            name,
            token,
            tls,
            limits,
            timeout,
            peers: Mutex::new(FxHashMap::default()),
            shutdown,
        }
    }

    /// The connection to `address`, opened if there is none (or the last
    /// one broke).
    pub(crate) async fn get(&self, address: &str) -> Result<Arc<Peer>, ClientError> {
        if let Some(p) = self.peers.lock().get(address) {
            if !p.is_closed() {
                return Ok(Arc::clone(p));
            }
        }
        if *self.shutdown.borrow() {
            return Err(ClientError::ConnectionClosed("the client is closed".into()));
        }
        let (inbox, outbox, _) = conn::connect_with(
            address,
            self.tls.as_ref(),
            Role::Peer,
            &self.name,
            self.token.clone(),
            self.limits,
            self.timeout,
        )
        .await
        .map_err(|e| ClientError::Data(format!("worker {address}: {e}")))?;
        let peer = Arc::new(Peer {
            address: address.to_string(),
            outbox,
            state: Mutex::new(PeerState {
                pending: FxHashMap::default(),
                closed: None,
            }),
        });
        // Two calls may have connected at once: keep the first, let the
        // other connection close (its reader ends when its outbox drops).
        let peer = {
            let mut peers = self.peers.lock();
            match peers.get(address) {
                Some(p) if !p.is_closed() => return Ok(Arc::clone(p)),
                _ => {
                    peers.insert(address.to_string(), Arc::clone(&peer));
                    peer
                }
            }
        };
        tokio::spawn(read_peer(Arc::clone(&peer), inbox, self.shutdown.clone()));
        Ok(peer)
    }

    /// Closes every connection (their writers stop once the pool's
    /// outboxes are dropped; readers stop on the shutdown signal).
    pub(crate) fn clear(&self) {
        let peers = std::mem::take(&mut *self.peers.lock());
        for (_, p) in peers {
            p.fail_all("the client is closed".into());
        }
    }

    /// Forgets a broken connection so the next call reconnects.
    pub(crate) fn forget(&self, address: &str) {
        let mut peers = self.peers.lock();
        if peers.get(address).is_some_and(|p| p.is_closed()) {
            peers.remove(address);
        }
    }
}

async fn read_peer(peer: Arc<Peer>, mut inbox: Inbox, mut shutdown: watch::Receiver<bool>) {
    let why = loop {
        // An `error` about the connection itself (no id, a closing code): a
        // worker sends one before it closes a connection it cannot go on
        // reading (a message over its limits). The requests it ends hear it
        // at once, not after the worker's lingering close.
        let mut closing: Option<String> = None;
        let r = tokio::select! {
            r = inbox.recv() => r,
            _ = shutdown.wait_for(|s| *s) => break "the client is closed".to_string(),
        };
        match r {
            Ok(Some(r)) => {
                for m in r.messages {
                    let (id, m) = match narrow::<DataReply>(m, "a client takes from a data port") {
                        Ok(m @ DataReply::Data { id, .. })
                        | Ok(m @ DataReply::DataStored { id, .. })
                        | Ok(m @ DataReply::Error { id: Some(id), .. }) => (id, Message::from(m)),
                        Ok(DataReply::Close { reason }) => {
                            tracing::debug!(peer = %peer.address, %reason, "worker closes the data connection");
                            continue;
                        }
                        Ok(DataReply::Error { message, code, .. }) => {
                            tracing::warn!(peer = %peer.address, %message, "error from a worker");
                            if code
                                .as_deref()
                                .and_then(ErrorCode::parse)
                                .is_some_and(|c| c.closes_connection())
                            {
                                closing = Some(message);
                            }
                            continue;
                        }
                        // Undecodable, or a message of another direction:
                        // the request it answers (when its id could be read)
                        // hears why.
                        Err(e) => {
                            tracing::warn!(peer = %peer.address, error = %e, "bad message from a worker");
                            let Some(id) = e.id else { continue };
                            (id, e.reply())
                        }
                    };
                    let waiter = peer.state.lock().pending.get(&id).cloned();
                    if let Some(w) = waiter {
                        let _ = w.send(Ok(Reply {
                            msg: m,
                            frames: r.frames.clone(),
                        }));
                    }
                }
                if let Some(e) = closing {
                    break format!("the worker closed the connection: {e}");
                }
            }
            Ok(None) => break "the worker closed the connection".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    peer.fail_all(why);
}
