//! Coordination objects held by the scheduler, from a client: variables,
//! queues, leases (locks and semaphores), events, published datasets,
//! fire-and-forget and topics (docs/protocol.md, "Coordination").
//!
//! Each call is one request to the scheduler. A call that waits (a get on
//! an empty queue, an acquire of a held lock, ...) waits up to its own
//! `timeout` (forever with `None`; a lost connection still ends it), not the
//! client's request timeout. A future put into an object keeps its key
//! alive on the scheduler; a future taken out of one is this client's, as
//! if it had been submitted here.

use super::args::too_large;
use super::state::Inner;
use super::{check_futures, Client, ClientError, Future};
use crate::protocol::messages::Item as WireItem;
use crate::protocol::Message;
use crate::value::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a coordination object holds: a value, or a future.
#[derive(Debug)]
pub enum Item {
    Value(Value),
    Future(Future),
}

impl Item {
    /// The value, when this is one.
    pub fn into_value(self) -> Option<Value> {
        match self {
            Item::Value(v) => Some(v),
            Item::Future(_) => None,
        }
    }
    /// The future, when this is one.
    pub fn into_future(self) -> Option<Future> {
        match self {
            Item::Future(f) => Some(f),
            Item::Value(_) => None,
        }
    }
}

impl From<Value> for Item {
    fn from(v: Value) -> Item {
        Item::Value(v)
    }
}

impl From<Future> for Item {
    fn from(f: Future) -> Item {
        Item::Future(f)
    }
}

impl From<&Future> for Item {
    fn from(f: &Future) -> Item {
        Item::Future(f.clone())
    }
}

fn check_name(what: &str, name: &str) -> Result<(), ClientError> {
    if name.is_empty() {
        return Err(ClientError::BadArgument(format!(
            "the {what} name is empty"
        )));
    }
    Ok(())
}

fn check_timeout(timeout: Option<Duration>) -> Option<f64> {
    timeout.map(|t| t.as_secs_f64())
}

fn unexpected(op: &str, m: &Message) -> ClientError {
    ClientError::Protocol(format!("'{op}' answered with '{}'", m.op()))
}

impl Client {
    fn wire_item(&self, item: &Item) -> Result<WireItem, ClientError> {
        Ok(match item {
            Item::Value(v) => WireItem::value(crate::value::encode(v).map_err(too_large)?),
            Item::Future(f) => {
                check_futures(&self.inner, [f])?;
                WireItem::key(f.key())
            }
        })
    }

    /// The item of a reply; a key was adopted by the reader (see
    /// `state::Inner::handle`): one reference is ours.
    fn local_item(&self, item: WireItem) -> Result<Item, ClientError> {
        match (item.value, item.key) {
            (Some(v), None) => crate::value::decode(&v)
                .map(Item::Value)
                .map_err(|e| ClientError::Protocol(format!("a coordination value: {e}"))),
            (None, Some(k)) => {
                let st = self.inner.lock();
                let slot = st.keys.slot_of(&k).ok_or_else(|| {
                    ClientError::Protocol(format!("the key '{k}' handed over was not adopted"))
                })?;
                Ok(Item::Future(Future::counted(&st, slot, &self.inner)))
            }
            _ => Err(ClientError::Protocol(
                "an item with neither or both of value and key".into(),
            )),
        }
    }

    /// A request that may wait `wait` (forever with `None`) on the
    /// scheduler: the reply may take that plus the client's timeout.
    fn coord(
        &self,
        make: impl FnOnce(u64) -> Message,
        wait: Option<Option<Duration>>,
    ) -> Result<Message, ClientError> {
        let within = match wait {
            None => Some(self.inner.config.timeout),
            Some(None) => None,
            Some(Some(t)) => Some(t + self.inner.config.timeout),
        };
        crate::runtime::block_on(self.inner.request_within(make, within))
    }

    fn coord_ok(&self, op: &str, make: impl FnOnce(u64) -> Message) -> Result<(), ClientError> {
        match self.coord(make, None)? {
            Message::CoordReply { .. } => Ok(()),
            m => Err(unexpected(op, &m)),
        }
    }

    fn coord_item(
        &self,
        op: &str,
        make: impl FnOnce(u64) -> Message,
        wait: Option<Option<Duration>>,
    ) -> Result<Item, ClientError> {
        match self.coord(make, wait)? {
            Message::CoordReply { item: Some(i), .. } => self.local_item(i),
            m => Err(unexpected(op, &m)),
        }
    }

    fn coord_flag(
        &self,
        op: &str,
        make: impl FnOnce(u64) -> Message,
        wait: Option<Option<Duration>>,
    ) -> Result<bool, ClientError> {
        match self.coord(make, wait)? {
            Message::CoordReply { flag: Some(f), .. } => Ok(f),
            m => Err(unexpected(op, &m)),
        }
    }

    // ------------------------------------------------------------ variables

    /// Sets the variable `name` (a value or a future; the future's key is
    /// kept alive while it is the variable's item).
    pub fn variable_set(&self, name: &str, item: &Item) -> Result<(), ClientError> {
        check_name("variable", name)?;
        let item = self.wire_item(item)?;
        let name = name.to_string();
        self.coord_ok("variable-set", |id| Message::VariableSet { id, name, item })
    }

    /// The variable's item, waiting up to `timeout` (forever with `None`)
    /// for one to be set. Running out of time is [`ClientError::Timeout`]
    /// naming the variable and the timeout.
    pub fn variable_get(&self, name: &str, timeout: Option<Duration>) -> Result<Item, ClientError> {
        check_name("variable", name)?;
        let name = name.to_string();
        let t = check_timeout(timeout);
        self.coord_item(
            "variable-get",
            |id| Message::VariableGet {
                id,
                name,
                timeout: t,
            },
            Some(timeout),
        )
    }

    /// Deletes the variable (nothing happens if it has no value).
    pub fn variable_delete(&self, name: &str) -> Result<(), ClientError> {
        check_name("variable", name)?;
        let name = name.to_string();
        self.coord_ok("variable-delete", |id| Message::VariableDelete { id, name })
    }

    // ------------------------------------------------------------ queues

    /// Creates the queue `name` with room for `maxsize` items (0: no
    /// limit), unless it exists (then its size limit stays what it was).
    pub fn queue_create(&self, name: &str, maxsize: u64) -> Result<(), ClientError> {
        check_name("queue", name)?;
        let name = name.to_string();
        self.coord_ok("queue-create", |id| Message::QueueCreate {
            id,
            name,
            maxsize,
        })
    }

    /// Appends an item; on a full queue waits up to `timeout` (forever
    /// with `None`) for room, then fails with [`ClientError::Timeout`].
    pub fn queue_put(
        &self,
        name: &str,
        item: &Item,
        timeout: Option<Duration>,
    ) -> Result<(), ClientError> {
        check_name("queue", name)?;
        let item = self.wire_item(item)?;
        let name = name.to_string();
        let t = check_timeout(timeout);
        match self.coord(
            |id| Message::QueuePut {
                id,
                name,
                item,
                timeout: t,
            },
            Some(timeout),
        )? {
            Message::CoordReply { .. } => Ok(()),
            m => Err(unexpected("queue-put", &m)),
        }
    }

    /// Takes the oldest item, waiting up to `timeout` (forever with `None`)
    /// for one; then fails with [`ClientError::Timeout`].
    pub fn queue_get(&self, name: &str, timeout: Option<Duration>) -> Result<Item, ClientError> {
        check_name("queue", name)?;
        let name = name.to_string();
        let t = check_timeout(timeout);
        self.coord_item(
            "queue-get",
            |id| Message::QueueGet {
                id,
                name,
                timeout: t,
            },
            Some(timeout),
        )
    }

    /// The number of items in the queue.
    pub fn queue_size(&self, name: &str) -> Result<u64, ClientError> {
        check_name("queue", name)?;
        let name = name.to_string();
        match self.coord(|id| Message::QueueSize { id, name }, None)? {
            Message::CoordReply { size: Some(n), .. } => Ok(n),
            m => Err(unexpected("queue-size", &m)),
        }
    }

    // ------------------------------------------------------------ leases

    /// Takes one of the `max_leases` leases of the semaphore `name` (a
    /// lock is a semaphore of 1), waiting up to `timeout` (forever with
    /// `None`). Returns the lease's id (to give to
    /// [`lease_release`](Self::lease_release)), or `None` when the time
    /// ran out. Leases of a client that disconnects are released.
    pub fn lease_acquire(
        &self,
        name: &str,
        max_leases: u32,
        timeout: Option<Duration>,
    ) -> Result<Option<u64>, ClientError> {
        check_name("lock or semaphore", name)?;
        if max_leases == 0 {
            return Err(ClientError::BadArgument(format!(
                "'{name}': max_leases must be at least 1"
            )));
        }
        let name = name.to_string();
        let t = check_timeout(timeout);
        let mut lease = 0;
        let got = self.coord_flag(
            "lease-acquire",
            |id| {
                lease = id;
                Message::LeaseAcquire {
                    id,
                    name,
                    max_leases,
                    timeout: t,
                }
            },
            Some(timeout),
        )?;
        Ok(got.then_some(lease))
    }

    /// Gives back a lease [`lease_acquire`](Self::lease_acquire) took.
    pub fn lease_release(&self, name: &str, lease: u64) -> Result<(), ClientError> {
        check_name("lock or semaphore", name)?;
        let name = name.to_string();
        self.coord_ok("lease-release", |id| Message::LeaseRelease {
            id,
            name,
            lease,
        })
    }

    // ------------------------------------------------------------ events

    /// Sets the event: every waiter wakes, and waits return at once until
    /// it is cleared.
    pub fn event_set(&self, name: &str) -> Result<(), ClientError> {
        check_name("event", name)?;
        let name = name.to_string();
        self.coord_ok("event-set", |id| Message::EventSet { id, name })
    }

    /// Clears the event.
    pub fn event_clear(&self, name: &str) -> Result<(), ClientError> {
        check_name("event", name)?;
        let name = name.to_string();
        self.coord_ok("event-clear", |id| Message::EventClear { id, name })
    }

    /// Waits up to `timeout` (forever with `None`; zero only looks) for
    /// the event to be set; returns whether it is.
    pub fn event_wait(&self, name: &str, timeout: Option<Duration>) -> Result<bool, ClientError> {
        check_name("event", name)?;
        let name = name.to_string();
        let t = check_timeout(timeout);
        self.coord_flag(
            "event-wait",
            |id| Message::EventWait {
                id,
                name,
                timeout: t,
            },
            Some(timeout),
        )
    }

    // ------------------------------------------------------------ datasets

    /// Publishes `item` under `name`. It outlives this client (a future's
    /// key is kept alive) until unpublished. An existing name fails unless
    /// `replace`.
    pub fn publish_dataset(
        &self,
        name: &str,
        item: &Item,
        replace: bool,
    ) -> Result<(), ClientError> {
        check_name("dataset", name)?;
        let item = self.wire_item(item)?;
        let name = name.to_string();
        self.coord_ok("publish-dataset", |id| Message::PublishDataset {
            id,
            name,
            item,
            replace,
        })
    }

    /// A published dataset (an unknown name fails, code `not-found`).
    pub fn get_dataset(&self, name: &str) -> Result<Item, ClientError> {
        check_name("dataset", name)?;
        let name = name.to_string();
        self.coord_item("get-dataset", |id| Message::GetDataset { id, name }, None)
    }

    /// Removes a published dataset.
    pub fn unpublish_dataset(&self, name: &str) -> Result<(), ClientError> {
        check_name("dataset", name)?;
        let name = name.to_string();
        self.coord_ok("unpublish-dataset", |id| Message::UnpublishDataset {
            id,
            name,
        })
    }

    /// The names of the published datasets, sorted.
    pub fn list_datasets(&self) -> Result<Vec<String>, ClientError> {
        match self.coord(|id| Message::ListDatasets { id }, None)? {
            Message::CoordReply { names: Some(n), .. } => Ok(n),
            m => Err(unexpected("list-datasets", &m)),
        }
    }

    // ------------------------------------------------------------ others

    /// The tasks of `futures` run to the end (in memory or erred) even
    /// when nobody wants them any more.
    pub fn fire_and_forget(&self, futures: &[Future]) -> Result<(), ClientError> {
        check_futures(&self.inner, futures)?;
        let keys = futures.iter().map(|f| f.key().to_string()).collect();
        self.inner.lock().send(Message::FireAndForget {
            keys,
            id: Some(self.inner.next_id()),
        })
    }

    /// Sends `value` to every subscriber of `topic` (those subscribed
    /// now; nothing is kept for later ones).
    pub fn publish(&self, topic: &str, value: &Value) -> Result<(), ClientError> {
        check_name("topic", topic)?;
        self.inner.lock().send(Message::Publish {
            name: topic.to_string(),
            value: serde_bytes::ByteBuf::from(crate::value::encode(value).map_err(too_large)?),
            id: Some(self.inner.next_id()),
        })
    }

    /// Subscribes to `topic`: what is published there from now on is
    /// buffered in the subscription until read.
    pub fn subscribe(&self, topic: &str) -> Result<Subscription, ClientError> {
        check_name("topic", topic)?;
        let id = self.inner.next_id();
        let first = {
            let mut st = self.inner.lock();
            st.check_open()?;
            let subs = st.topics.entry(topic.to_string()).or_default();
            subs.push((id, Default::default()));
            subs.len() == 1
        };
        let sub = Subscription {
            inner: Arc::clone(&self.inner),
            _client: self.clone(),
            name: topic.to_string(),
            id,
        };
        if first {
            // Acknowledged: what anyone publishes after this returns
            // reaches the subscription.
            let name = topic.to_string();
            self.coord_ok("subscribe", |id| Message::Subscribe { id: Some(id), name })?;
        }
        Ok(sub)
    }
}

/// A subscription to a topic ([`Client::subscribe`]). Dropping it
/// unsubscribes.
pub struct Subscription {
    inner: Arc<Inner>,
    _client: Client,
    name: String,
    id: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.name)
            .finish()
    }
}

impl Subscription {
    /// The topic.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next message, waiting up to `timeout` (forever with `None`).
    /// Running out of time is [`ClientError::Timeout`]; a lost connection
    /// ends the wait with its error.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Value, ClientError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut got = None;
        let mut closed = None;
        self.inner.wait_until(deadline, |st| {
            if let Err(e) = st.check_open() {
                closed = Some(e);
                return true;
            }
            got = st
                .topics
                .get(&self.name)
                .and_then(|subs| subs.iter().find(|s| s.0 == self.id))
                .is_some_and(|s| !s.1.is_empty())
                .then_some(());
            got.is_some()
        });
        if let Some(e) = closed {
            return Err(e);
        }
        if got.is_none() {
            return Err(ClientError::Timeout(format!(
                "topic '{}': no message within {:?}",
                self.name,
                timeout.unwrap_or_default()
            )));
        }
        let mut st = self.inner.lock();
        let v = st
            .topics
            .get_mut(&self.name)
            .and_then(|subs| subs.iter_mut().find(|s| s.0 == self.id))
            .and_then(|s| s.1.pop_front());
        v.ok_or_else(|| ClientError::Protocol("a topic message vanished".into()))
    }

    /// Messages waiting to be read.
    pub fn pending(&self) -> usize {
        let st = self.inner.lock();
        st.topics
            .get(&self.name)
            .and_then(|subs| subs.iter().find(|s| s.0 == self.id))
            .map_or(0, |s| s.1.len())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        let Some(subs) = st.topics.get_mut(&self.name) else {
            return;
        };
        subs.retain(|s| s.0 != self.id);
        if subs.is_empty() {
            st.topics.remove(&self.name);
            let _ = st.send(Message::Unsubscribe {
                name: self.name.clone(),
                id: None,
            });
        }
    }
}
