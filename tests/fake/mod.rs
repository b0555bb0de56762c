//! A fake scheduler with one fake worker data port, for testing the client
//! against the protocol alone.
//!
//! It runs on a runtime of its own (so killing it closes every socket) and
//! records every message clients send. In *auto* mode it answers like a
//! scheduler: it computes each `update-graph` at once with the local
//! executor, keeps values in one store that its data port serves, answers
//! `who-has`, `get-workers` and `cancel-keys`; in *manual* mode it only
//! records, and the test answers with [`Fake::send`].

#![allow(dead_code)]

use rask::graph::KeyId;
use rask::protocol::conn::{self, Outbox};
use rask::protocol::messages::WorkerInfo;
use rask::protocol::{pack_value, unpack_value, Limits, Message};
use rask::{ComputeError, Graph, Registry, Value};
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Shared {
    pub auto: bool,
    /// Every message a client sent, in order.
    pub log: Mutex<Vec<Message>>,
    pub cond: Condvar,
    /// The values the fake worker holds.
    pub store: Mutex<HashMap<String, Value>>,
    /// Keys that erred: key → (failed key, func, message).
    pub erred: Mutex<HashMap<String, (String, String, String)>>,
    /// Keys computed, in order (a key computed twice appears twice).
    pub computed: Mutex<Vec<String>>,
    pub clients: Mutex<Vec<Outbox>>,
    pub get_data_requests: AtomicUsize,
    /// When non-zero, `data` answers hold at most this many values each
    /// (several messages with the request's id).
    pub data_chunk: AtomicUsize,
    /// Largest msgpack encoding sent inline in key-in-memory.
    pub inline_limit: AtomicUsize,
    pub data_address: Mutex<String>,
    /// When set, the address key-in-memory names instead of the data port.
    pub advertise: Mutex<Option<String>>,
    pub registry: Mutex<Registry>,
}

pub struct Fake {
    pub address: String,
    pub data_address: String,
    pub shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Fake {
    pub fn auto() -> Fake {
        Fake::start(true)
    }

    pub fn manual() -> Fake {
        Fake::start(false)
    }

    fn start(auto: bool) -> Fake {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            auto,
            ..Default::default()
        });
        shared.inline_limit.store(1024, Ordering::Relaxed);
        let (address, data_address) = rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let d = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = format!("tcp://{}", l.local_addr().unwrap());
            let da = format!("tcp://{}", d.local_addr().unwrap());
            *shared.data_address.lock().unwrap() = da.clone();
            tokio::spawn(serve_scheduler(l, Arc::clone(&shared)));
            tokio::spawn(serve_data(d, Arc::clone(&shared)));
            (a, da)
        });
        Fake {
            address,
            data_address,
            shared,
            rt: Some(rt),
        }
    }

    /// Sends `m` to every connected client (waiting, at most 10 s, for a
    /// first one: a client's `connect` returns before the fake has
    /// registered the connection).
    pub fn send(&self, m: Message) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.shared.clients.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for o in self.shared.clients.lock().unwrap().iter() {
            o.send(m.clone());
        }
    }

    /// Waits (at most 10 s) for a message matching `pred` among those
    /// received from index `from` on; returns it and its index.
    pub fn wait_msg(&self, from: usize, pred: impl Fn(&Message) -> bool) -> (usize, Message) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = self.shared.log.lock().unwrap();
        loop {
            if let Some(i) = (from..log.len()).find(|&i| pred(&log[i])) {
                return (i, log[i].clone());
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no matching message; got {:?}",
                &log[from..]
            );
            log = self
                .shared
                .cond
                .wait_timeout(log, deadline - now)
                .unwrap()
                .0;
        }
    }

    pub fn messages(&self) -> Vec<Message> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Message) -> bool) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|m| pred(m))
            .count()
    }

    /// Stops the fake: every connection closes at once.
    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn serve_scheduler(l: TcpListener, s: Arc<Shared>) {
    let mut next_id = 1;
    loop {
        let Ok((stream, _)) = l.accept().await else {
            return;
        };
        let id = next_id;
        next_id += 1;
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            let Ok((mut inbox, outbox, _)) = conn::accept(
                stream,
                Limits::default(),
                Duration::from_secs(5),
                "fake-scheduler",
                |_| Ok(id),
            )
            .await
            else {
                return;
            };
            s.clients.lock().unwrap().push(outbox.clone());
            while let Ok(Some(r)) = inbox.recv().await {
                for m in r.messages.into_iter().flatten() {
                    s.log.lock().unwrap().push(m.clone());
                    s.cond.notify_all();
                    if s.auto {
                        handle(&s, &outbox, m);
                    }
                }
            }
        });
    }
}

fn worker_info(s: &Shared) -> WorkerInfo {
    WorkerInfo {
        id: 1,
        name: "fake-worker".into(),
        address: s.data_address.lock().unwrap().clone(),
        threads: 1,
        functions: s.registry.lock().unwrap().names(),
        ..WorkerInfo::default()
    }
}

fn handle(s: &Shared, out: &Outbox, m: Message) {
    let data_address = s.data_address.lock().unwrap().clone();
    match m {
        Message::UpdateGraph {
            graph, keys, id, ..
        } => {
            // A refusal echoes the graph's request id, as the scheduler's.
            let bad_graph = |message: String| Message::Error {
                message,
                code: Some("bad-graph".into()),
                id,
            };
            let (mut g, _) = match Graph::from_msgpack(&graph) {
                Ok(g) => g,
                Err(e) => {
                    out.send(bad_graph(e.to_string()));
                    return;
                }
            };
            // Keys the document references but does not define come from
            // the store (earlier results), or erred earlier.
            let undefined: Vec<String> = (0..g.key_capacity() as u32)
                .map(KeyId)
                .filter(|&k| g.node(k).is_none())
                .map(|k| g.key_name(k).to_string())
                .collect();
            let mut failed_dep = None;
            for k in &undefined {
                if let Some(v) = s.store.lock().unwrap().get(k) {
                    g.add_value(k, v.clone()).unwrap();
                } else if let Some(e) = s.erred.lock().unwrap().get(k) {
                    failed_dep = Some(e.clone());
                } else {
                    out.send(bad_graph(format!(
                        "key '{}' depends on '{k}', which is not in the graph",
                        keys[0]
                    )));
                    return;
                }
            }
            let g = Arc::new(g);
            for key in keys {
                if let Some((failed, func, message)) = failed_dep.clone() {
                    s.erred
                        .lock()
                        .unwrap()
                        .insert(key.clone(), (failed.clone(), func.clone(), message.clone()));
                    out.send(Message::KeyErred {
                        key,
                        failed,
                        func,
                        worker: data_address.clone(),
                        message,
                        exception: String::new(),
                        traceback: String::new(),
                    });
                    continue;
                }
                if let Some(v) = s.store.lock().unwrap().get(&key).cloned() {
                    send_in_memory(s, out, key, &v);
                    continue;
                }
                let reg = s.registry.lock().unwrap().clone();
                match rask::compute_keys(&g, &[&key], &reg, &rask::Options::with_threads(1)) {
                    Ok(c) => {
                        let v = c.values.into_iter().next().unwrap();
                        s.computed.lock().unwrap().push(key.clone());
                        s.store.lock().unwrap().insert(key.clone(), v.clone());
                        send_in_memory(s, out, key, &v);
                    }
                    Err(ComputeError::TaskFailed {
                        key: failed,
                        func,
                        message,
                    }) => {
                        s.erred
                            .lock()
                            .unwrap()
                            .insert(key.clone(), (failed.clone(), func.clone(), message.clone()));
                        out.send(Message::KeyErred {
                            key,
                            failed,
                            func,
                            worker: data_address.clone(),
                            message,
                            exception: String::new(),
                            traceback: String::new(),
                        });
                    }
                    // No worker offers it: the key stays pending.
                    Err(ComputeError::UnknownFunction { .. }) => {}
                    Err(e) => {
                        out.send(bad_graph(e.to_string()));
                    }
                }
            }
        }
        Message::ReleaseKeys { keys, .. } => {
            let mut st = s.store.lock().unwrap();
            for k in keys {
                st.remove(&k);
            }
        }
        Message::CancelKeys { keys, .. } => {
            for key in keys {
                out.send(Message::KeyCancelled { key });
            }
        }
        Message::WhoHas { id, keys } => {
            let st = s.store.lock().unwrap();
            let who_has = keys
                .into_iter()
                .map(|k| {
                    let w = if st.contains_key(&k) {
                        vec![data_address.clone()]
                    } else {
                        vec![]
                    };
                    (k, w)
                })
                .collect();
            out.send(Message::WhoHasReply { id, who_has });
        }
        Message::GetWorkers { id } => {
            out.send(Message::WorkersReply {
                id,
                workers: vec![worker_info(s)],
            });
        }
        _ => {}
    }
}

fn send_in_memory(s: &Shared, out: &Outbox, key: String, v: &Value) {
    let bytes = rask::value::encode(v).unwrap();
    let inline = bytes.len() <= s.inline_limit.load(Ordering::Relaxed);
    out.send(Message::KeyInMemory {
        key,
        nbytes: v.size_estimate() as u64,
        workers: vec![s
            .advertise
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| s.data_address.lock().unwrap().clone())],
        value: inline.then(|| ByteBuf::from(bytes)),
    });
}

async fn serve_data(l: TcpListener, s: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = l.accept().await else {
            return;
        };
        let s = Arc::clone(&s);
        tokio::spawn(async move {
            let Ok((mut inbox, outbox, _)) = conn::accept(
                stream,
                Limits::default(),
                Duration::from_secs(5),
                "fake-worker",
                |_| Ok(0),
            )
            .await
            else {
                return;
            };
            while let Ok(Some(r)) = inbox.recv().await {
                for m in r.messages.into_iter().flatten() {
                    match m {
                        Message::GetData { id, keys } => {
                            s.get_data_requests.fetch_add(1, Ordering::Relaxed);
                            let st = s.store.lock().unwrap();
                            let chunk = match s.data_chunk.load(Ordering::Relaxed) {
                                0 => usize::MAX,
                                n => n,
                            };
                            let mut missing = Vec::new();
                            let mut present = Vec::new();
                            for k in keys {
                                match st.get(&k) {
                                    Some(v) => present.push((k, v.clone())),
                                    None => missing.push(k),
                                }
                            }
                            let mut parts: Vec<_> =
                                present.chunks(chunk).map(|c| c.to_vec()).collect();
                            if parts.is_empty() {
                                parts.push(Vec::new());
                            }
                            let n = parts.len();
                            for (i, part) in parts.into_iter().enumerate() {
                                let mut payloads = Vec::new();
                                let data: BTreeMap<_, _> = part
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.clone(), pack_value(v, &mut payloads).unwrap())
                                    })
                                    .collect();
                                let missing = if i + 1 == n {
                                    std::mem::take(&mut missing)
                                } else {
                                    Vec::new()
                                };
                                outbox.send_with_payloads(
                                    Message::Data {
                                        id,
                                        data,
                                        missing,
                                        unsendable: Default::default(),
                                    },
                                    payloads,
                                );
                            }
                        }
                        Message::PutData { id, data } => {
                            let mut nbytes = BTreeMap::new();
                            let mut st = s.store.lock().unwrap();
                            for (k, p) in data {
                                let v = unpack_value(&p, &r.frames).unwrap();
                                nbytes.insert(k.clone(), v.size_estimate() as u64);
                                st.insert(k, v);
                            }
                            outbox.send(Message::DataStored { id, nbytes });
                        }
                        _ => {}
                    }
                }
            }
        });
    }
}

/// Keys named in a set of messages of one kind, flattened.
pub fn released(msgs: &[Message]) -> HashSet<String> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::ReleaseKeys { keys, .. } => Some(keys.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// An address where nothing listens, held for as long as the returned
/// socket lives: a TCP socket bound to a free port but not listening, so
/// connecting is refused and no other process can take the port meanwhile
/// (unlike assuming nothing listens on ports 1 or 9, or freeing a port and
/// hoping it stays free).
pub fn refused_address() -> (tokio::net::TcpSocket, String) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let a = format!("tcp://{}", s.local_addr().unwrap());
    (s, a)
}
