//! Coordination objects held by the scheduler: variables, queues, leases
//! (locks and semaphores), events, published datasets, fire-and-forget and
//! topics (docs/protocol.md, "Coordination").
//!
//! Every request is a client's message with an `id`, answered by
//! `coord-reply` (or an `error` with that id) now, or later for the ones
//! that wait (`variable-get`, `queue-put` on a full queue, `queue-get`,
//! `lease-acquire`, `event-wait`). A wait has an optional deadline (`now +
//! timeout`): [`SchedulerState::coord_tick`] answers the ones that passed
//! (the server calls it at [`SchedulerState::coord_deadline`]), with an
//! `error` of code `timeout` naming the object and the timeout, or for
//! `lease-acquire` and `event-wait` with `flag: false` (as Dask's `acquire`
//! and `wait` return `False`).
//!
//! # Futures held by objects
//!
//! An item may be a future's key. The objects hold such a key as one
//! more *wanted* reference: `held` counts the places holding each key
//! (variables, queue items and blocked puts, datasets, fire-and-forget), and
//! a key held anywhere adds exactly 1 to its task's `wanted` (as one more
//! client would). So a key in a queue is computed and kept in memory even
//! when every client released it. A client that gets a key (from a queue,
//! a variable or a dataset) wants it from then on, as if it had submitted
//! it: it is told `key-in-memory` (or `key-erred`) after the reply.
//!
//! # Owners
//!
//! Leases, waits and subscriptions belong to a client: when it leaves
//! (disconnects, or its process dies: the connection closes) its leases go
//! to the next waiters, its waits are dropped and it is unsubscribed. A
//! task's client lives in its worker process, so a killed worker's leases
//! come back when its connection closes.

use super::*;
use crate::protocol::messages::Item as WireItem;
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// Error codes of coordination replies.
pub mod coord_codes {
    use crate::protocol::ErrorCode;
    /// A wait ran out of time.
    pub const TIMEOUT: &str = ErrorCode::Timeout.as_str();
    /// An empty name, or an item with neither or both of value and key.
    pub const BAD_ARGUMENT: &str = ErrorCode::BadArgument.as_str();
    /// An item names a key the scheduler does not know.
    pub const UNKNOWN_KEY: &str = ErrorCode::UnknownKey.as_str();
    /// No such dataset, or a lease that is not held.
    pub const NOT_FOUND: &str = ErrorCode::NotFound.as_str();
    /// A dataset name already in use, or a semaphore asked with another
    /// number of leases than it has.
    pub const CONFLICT: &str = ErrorCode::Conflict.as_str();
}

/// What an object holds.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    /// A msgpack-encoded value.
    Value(Box<[u8]>),
    /// A future's key (held: see the module docs).
    Key(TaskId),
}

/// A request waiting for an answer.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    client: ClientId,
    id: u64,
    deadline: Option<f64>,
    /// The timeout asked, seconds (for the error message).
    timeout: f64,
}

impl Waiter {
    fn expired(&self, now: f64) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }
}

#[derive(Debug, Default)]
struct Variable {
    item: Option<Item>,
    waiters: Vec<Waiter>,
}

#[derive(Debug, Default)]
struct Queue {
    /// 0: unbounded.
    maxsize: u64,
    items: VecDeque<Item>,
    getters: VecDeque<Waiter>,
    /// Puts waiting for room, with their items (held).
    putters: VecDeque<(Waiter, Item)>,
}

impl Queue {
    fn full(&self) -> bool {
        self.maxsize > 0 && self.items.len() as u64 >= self.maxsize
    }
}

#[derive(Debug, Default)]
struct Leases {
    max: u32,
    /// (holder, the id of the `lease-acquire` that took it).
    holders: Vec<(ClientId, u64)>,
    waiters: VecDeque<Waiter>,
}

#[derive(Debug, Default)]
struct Flag {
    set: bool,
    waiters: Vec<Waiter>,
}

/// The coordination objects (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Coord {
    variables: BTreeMap<String, Variable>,
    queues: BTreeMap<String, Queue>,
    leases: BTreeMap<String, Leases>,
    events: BTreeMap<String, Flag>,
    datasets: BTreeMap<String, Item>,
    topics: BTreeMap<String, Vec<ClientId>>,
    /// Key → number of places holding it.
    held: FxHashMap<TaskId, u32>,
    /// Fire-and-forget keys not finished yet (each also counted in `held`).
    forget: FxHashSet<TaskId>,
    /// Fire-and-forget keys that reached memory or erred during this
    /// stimulus (set by `set_state`).
    pub(crate) forget_done: Vec<TaskId>,
    /// Waits with a deadline (an upper bound: some may have been answered).
    timed: usize,
}

impl Coord {
    /// Whether `t` is a fire-and-forget key (checked by `set_state`).
    #[inline]
    pub(crate) fn forgets(&self, t: TaskId) -> bool {
        !self.forget.is_empty() && self.forget.contains(&t)
    }

    /// Number of places holding `t`.
    pub(crate) fn holds(&self, t: TaskId) -> bool {
        self.held.contains_key(&t)
    }
}

fn fmt_timeout(t: f64) -> String {
    format!("{t} s")
}

impl SchedulerState {
    /// Handles a client's coordination message (see the module docs).
    /// `now` is seconds on the server's clock (for timeouts).
    pub fn coord_message(
        &mut self,
        c: ClientId,
        msg: ClientMessage,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) {
        if self.client(c).is_none() {
            return;
        }
        if now > self.clock {
            self.clock = now;
        }
        self.begin(Stimulus::Coordination);
        if let Err((id, code, message)) = self.coord_step(c, msg, now, out) {
            out.push(Outgoing::Message(
                Dest::Client(c),
                Message::Error {
                    message,
                    code: Some(code.into()),
                    id,
                },
            ));
        }
        self.finish(out);
    }

    /// Ends the fire-and-forget of keys that finished (from `finish`).
    pub(crate) fn coord_finish(&mut self) {
        while let Some(t) = self.coord.forget_done.pop() {
            if self.coord.forget.remove(&t) {
                self.unhold(t);
            }
        }
    }

    /// The earliest deadline of a waiting request, if any.
    pub fn coord_deadline(&self) -> Option<f64> {
        if self.coord.timed == 0 {
            return None;
        }
        let co = &self.coord;
        let mut best: Option<f64> = None;
        let mut see = |w: &Waiter| {
            if let Some(d) = w.deadline {
                best = Some(best.map_or(d, |b: f64| b.min(d)));
            }
        };
        co.variables
            .values()
            .for_each(|v| v.waiters.iter().for_each(&mut see));
        for q in co.queues.values() {
            q.getters.iter().for_each(&mut see);
            q.putters.iter().for_each(|(w, _)| see(w));
        }
        co.leases
            .values()
            .for_each(|l| l.waiters.iter().for_each(&mut see));
        co.events
            .values()
            .for_each(|e| e.waiters.iter().for_each(&mut see));
        best
    }

    /// Answers the waits whose deadline passed.
    pub fn coord_tick(&mut self, now: f64, out: &mut Vec<Outgoing>) {
        if self.coord.timed == 0 {
            return;
        }
        if now > self.clock {
            self.clock = now;
        }
        self.begin(Stimulus::Coordination);
        let timeout_err = |w: &Waiter, message: String| {
            Outgoing::Message(
                Dest::Client(w.client),
                Message::Error {
                    message,
                    code: Some(coord_codes::TIMEOUT.into()),
                    id: Some(w.id),
                },
            )
        };
        let mut timed = 0;
        let mut unhold = Vec::new();
        for (name, v) in self.coord.variables.iter_mut() {
            v.waiters.retain(|w| {
                if w.expired(now) {
                    out.push(timeout_err(
                        w,
                        format!(
                            "variable '{name}': no value was set within {}",
                            fmt_timeout(w.timeout)
                        ),
                    ));
                    return false;
                }
                timed += w.deadline.is_some() as usize;
                true
            });
        }
        for (name, q) in self.coord.queues.iter_mut() {
            q.getters.retain(|w| {
                if w.expired(now) {
                    out.push(timeout_err(
                        w,
                        format!(
                            "queue '{name}': nothing to get within {}",
                            fmt_timeout(w.timeout)
                        ),
                    ));
                    return false;
                }
                timed += w.deadline.is_some() as usize;
                true
            });
            let maxsize = q.maxsize;
            q.putters.retain(|(w, item)| {
                if w.expired(now) {
                    out.push(timeout_err(
                        w,
                        format!(
                            "queue '{name}' is full (maxsize {maxsize}): no room to put within {}",
                            fmt_timeout(w.timeout)
                        ),
                    ));
                    if let Item::Key(k) = item {
                        unhold.push(*k);
                    }
                    return false;
                }
                timed += w.deadline.is_some() as usize;
                true
            });
        }
        for l in self.coord.leases.values_mut() {
            l.waiters.retain(|w| {
                if w.expired(now) {
                    out.push(flag_reply(w, false));
                    return false;
                }
                timed += w.deadline.is_some() as usize;
                true
            });
        }
        self.coord
            .leases
            .retain(|_, l| !l.holders.is_empty() || !l.waiters.is_empty());
        for e in self.coord.events.values_mut() {
            e.waiters.retain(|w| {
                if w.expired(now) {
                    out.push(flag_reply(w, false));
                    return false;
                }
                timed += w.deadline.is_some() as usize;
                true
            });
        }
        self.coord
            .events
            .retain(|_, e| e.set || !e.waiters.is_empty());
        self.coord.timed = timed;
        for k in unhold {
            self.unhold(k);
        }
        self.finish(out);
    }

    /// A client left: its waits are dropped, its leases go to the next
    /// waiters, its subscriptions end. Called inside its stimulus.
    pub(crate) fn coord_client_left(&mut self, c: ClientId, out: &mut Vec<Outgoing>) {
        let mine = |w: &Waiter| w.client == c;
        let mut unhold = Vec::new();
        for v in self.coord.variables.values_mut() {
            v.waiters.retain(|w| !mine(w));
        }
        for q in self.coord.queues.values_mut() {
            q.getters.retain(|w| !mine(w));
            q.putters.retain(|(w, item)| {
                if mine(w) {
                    if let Item::Key(k) = item {
                        unhold.push(*k);
                    }
                    return false;
                }
                true
            });
        }
        let names: Vec<String> = self
            .coord
            .leases
            .iter()
            .filter(|(_, l)| l.holders.iter().any(|h| h.0 == c) || l.waiters.iter().any(mine))
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            let l = self.coord.leases.get_mut(&n).expect("listed");
            l.holders.retain(|h| h.0 != c);
            l.waiters.retain(|w| !mine(w));
            self.grant_leases(&n, out);
        }
        for e in self.coord.events.values_mut() {
            e.waiters.retain(|w| !mine(w));
        }
        self.coord
            .events
            .retain(|_, e| e.set || !e.waiters.is_empty());
        for subs in self.coord.topics.values_mut() {
            subs.retain(|&s| s != c);
        }
        self.coord.topics.retain(|_, s| !s.is_empty());
        for k in unhold {
            self.unhold(k);
        }
        // Puts this client's leaving made room for: none (its gets were
        // dropped, not served); but a queue whose blocked put left may now
        // let another put in.
        let names: Vec<String> = self.coord.queues.keys().cloned().collect();
        for n in names {
            self.serve_queue(&n, out);
        }
    }

    // ------------------------------------------------------------ items

    /// One more place holds `t`.
    fn hold(&mut self, t: TaskId, out: &mut Vec<Outgoing>) {
        let n = self.coord.held.entry(t).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.tm(t).wanted += 1;
            if matches!(self.t(t).state, TaskState::Released) {
                self.make_needed(t, out);
            }
        }
    }

    /// One place fewer holds `t`.
    fn unhold(&mut self, t: TaskId) {
        let Some(n) = self.coord.held.get_mut(&t) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        self.coord.held.remove(&t);
        let task = self.tm(t);
        task.wanted -= 1;
        if task.wanted == 0 {
            self.values.remove(&t);
            self.check.push(t);
        }
    }

    /// Checks an item from the wire and holds its key.
    fn take_item(&mut self, item: WireItem, out: &mut Vec<Outgoing>) -> Result<Item, String> {
        match (item.value, item.key) {
            (Some(v), None) => Ok(Item::Value(v.into_vec().into_boxed_slice())),
            (None, Some(k)) => {
                let t = self.task_id(&k).ok_or_else(|| {
                    format!("the scheduler does not know the key '{k}' (a released future?)")
                })?;
                self.hold(t, out);
                Ok(Item::Key(t))
            }
            _ => Err("an item must carry exactly one of 'value' and 'key'".into()),
        }
    }

    /// The wire form of an item given to `c`; for a key, `c` wants it
    /// from now on (and is told its state after the reply: call
    /// [`Self::tell`] once the reply is pushed).
    fn give(&mut self, c: ClientId, item: &Item) -> (WireItem, Option<TaskId>) {
        match item {
            Item::Value(v) => (WireItem::value(v.to_vec()), None),
            Item::Key(t) => {
                let t = *t;
                let client = self.clients[c.0 as usize].as_mut().expect("a live client");
                if client.wants.insert(t) {
                    self.tm(t).wanted += 1;
                }
                (WireItem::key(self.t(t).name.as_str()), Some(t))
            }
        }
    }

    /// Tells `c` the state of a key it was just given.
    fn tell(&self, c: ClientId, t: Option<TaskId>, out: &mut Vec<Outgoing>) {
        let Some(t) = t else { return };
        match &self.t(t).state {
            TaskState::Memory { .. } => out.push(Outgoing::KeyInMemory { client: c, task: t }),
            TaskState::Erred(e) => out.push(Outgoing::KeyErred {
                client: c,
                key: self.t(t).name.clone(),
                error: e.clone(),
            }),
            _ => {}
        }
    }

    fn drop_item(&mut self, item: Item) {
        if let Item::Key(t) = item {
            self.unhold(t);
        }
    }

    /// Replies `item` to a waiter and tells it the key's state.
    fn reply_item(&mut self, w: Waiter, item: &Item, out: &mut Vec<Outgoing>) {
        let (wire, t) = self.give(w.client, item);
        out.push(Outgoing::Message(
            Dest::Client(w.client),
            Message::CoordReply {
                id: w.id,
                item: Some(wire),
                flag: None,
                size: None,
                names: None,
            },
        ));
        self.tell(w.client, t, out);
    }

    // ------------------------------------------------------------ requests

    fn coord_step(
        &mut self,
        c: ClientId,
        msg: ClientMessage,
        now: f64,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), (Option<u64>, &'static str, String)> {
        use coord_codes::*;
        let me = |id: u64, timeout: Option<f64>| Waiter {
            client: c,
            id,
            deadline: timeout.map(|t| now + t.max(0.0)),
            timeout: timeout.unwrap_or(0.0),
        };
        let check_name = |id: Option<u64>, what: &str, name: &str| {
            if name.is_empty() {
                Err((id, BAD_ARGUMENT, format!("the {what} name is empty")))
            } else {
                Ok(())
            }
        };
        let check_timeout = |id: u64, t: Option<f64>| match t {
            Some(t) if t.is_nan() || t < 0.0 => Err((
                Some(id),
                BAD_ARGUMENT,
                format!("the timeout must be at least 0 seconds, not {t}"),
            )),
            _ => Ok(()),
        };
        match msg {
            ClientMessage::VariableSet { id, name, item } => {
                check_name(Some(id), "variable", &name)?;
                let item = self
                    .take_item(item, out)
                    .map_err(|e| (Some(id), item_code(&e), e))?;
                ok_reply(out, c, id);
                let v = self.coord.variables.entry(name).or_default();
                let old = v.item.replace(item.clone());
                let waiters = std::mem::take(&mut v.waiters);
                for w in waiters {
                    self.reply_item(w, &item, out);
                }
                if let Some(old) = old {
                    self.drop_item(old);
                }
            }
            ClientMessage::VariableGet { id, name, timeout } => {
                check_name(Some(id), "variable", &name)?;
                check_timeout(id, timeout)?;
                let v = self.coord.variables.entry(name.clone()).or_default();
                match v.item.clone() {
                    Some(item) => self.reply_item(me(id, None), &item, out),
                    None if timeout == Some(0.0) => {
                        self.coord
                            .variables
                            .retain(|_, v| v.item.is_some() || !v.waiters.is_empty());
                        return Err((
                            Some(id),
                            TIMEOUT,
                            format!("variable '{name}': no value was set within 0 s"),
                        ));
                    }
                    None => {
                        v.waiters.push(me(id, timeout));
                        self.coord.timed += timeout.is_some() as usize;
                    }
                }
            }
            ClientMessage::VariableDelete { id, name } => {
                check_name(Some(id), "variable", &name)?;
                if let Some(v) = self.coord.variables.get_mut(&name) {
                    let old = v.item.take();
                    if v.waiters.is_empty() {
                        self.coord.variables.remove(&name);
                    }
                    if let Some(old) = old {
                        self.drop_item(old);
                    }
                }
                ok_reply(out, c, id);
            }
            ClientMessage::QueueCreate { id, name, maxsize } => {
                check_name(Some(id), "queue", &name)?;
                self.coord.queues.entry(name).or_insert_with(|| Queue {
                    maxsize,
                    ..Queue::default()
                });
                ok_reply(out, c, id);
            }
            ClientMessage::QueuePut {
                id,
                name,
                item,
                timeout,
            } => {
                check_name(Some(id), "queue", &name)?;
                check_timeout(id, timeout)?;
                let full = self
                    .coord
                    .queues
                    .get(&name)
                    .is_some_and(|q| q.full() || !q.putters.is_empty());
                if full && timeout == Some(0.0) {
                    let maxsize = self.coord.queues[&name].maxsize;
                    return Err((
                        Some(id),
                        TIMEOUT,
                        format!(
                            "queue '{name}' is full (maxsize {maxsize}): no room to put within 0 s"
                        ),
                    ));
                }
                let item = self
                    .take_item(item, out)
                    .map_err(|e| (Some(id), item_code(&e), e))?;
                let q = self.coord.queues.entry(name.clone()).or_default();
                if full {
                    q.putters.push_back((me(id, timeout), item));
                    self.coord.timed += timeout.is_some() as usize;
                } else {
                    q.items.push_back(item);
                    ok_reply(out, c, id);
                }
                self.serve_queue(&name, out);
            }
            ClientMessage::QueueGet { id, name, timeout } => {
                check_name(Some(id), "queue", &name)?;
                check_timeout(id, timeout)?;
                let q = self.coord.queues.entry(name.clone()).or_default();
                if q.items.is_empty() && q.putters.is_empty() && timeout == Some(0.0) {
                    return Err((
                        Some(id),
                        TIMEOUT,
                        format!("queue '{name}': nothing to get within 0 s"),
                    ));
                }
                q.getters.push_back(me(id, timeout));
                self.coord.timed += timeout.is_some() as usize;
                self.serve_queue(&name, out);
            }
            ClientMessage::QueueSize { id, name } => {
                check_name(Some(id), "queue", &name)?;
                let n = self.coord.queues.get(&name).map_or(0, |q| q.items.len());
                out.push(Outgoing::Message(
                    Dest::Client(c),
                    Message::CoordReply {
                        id,
                        item: None,
                        flag: None,
                        size: Some(n as u64),
                        names: None,
                    },
                ));
            }
            ClientMessage::LeaseAcquire {
                id,
                name,
                max_leases,
                timeout,
            } => {
                check_name(Some(id), "lock or semaphore", &name)?;
                check_timeout(id, timeout)?;
                if max_leases == 0 {
                    return Err((
                        Some(id),
                        BAD_ARGUMENT,
                        format!("'{name}': max_leases must be at least 1"),
                    ));
                }
                let l = self
                    .coord
                    .leases
                    .entry(name.clone())
                    .or_insert_with(|| Leases {
                        max: max_leases,
                        ..Leases::default()
                    });
                if l.max != max_leases {
                    let have = l.max;
                    return Err((
                        Some(id),
                        CONFLICT,
                        format!(
                            "'{name}' exists with {have} lease{} (asked with {max_leases})",
                            if have == 1 { "" } else { "s" }
                        ),
                    ));
                }
                if (l.holders.len() as u32) < l.max && l.waiters.is_empty() {
                    l.holders.push((c, id));
                    out.push(flag_reply(&me(id, None), true));
                } else if timeout == Some(0.0) {
                    out.push(flag_reply(&me(id, None), false));
                } else {
                    l.waiters.push_back(me(id, timeout));
                    self.coord.timed += timeout.is_some() as usize;
                }
            }
            ClientMessage::LeaseRelease { id, name, lease } => {
                check_name(Some(id), "lock or semaphore", &name)?;
                let held = self.coord.leases.get_mut(&name).and_then(|l| {
                    let i = l.holders.iter().position(|&h| h == (c, lease))?;
                    l.holders.swap_remove(i);
                    Some(())
                });
                if held.is_none() {
                    return Err((
                        Some(id),
                        NOT_FOUND,
                        format!(
                            "'{name}' is not held by this client (lease {lease}): released twice?"
                        ),
                    ));
                }
                ok_reply(out, c, id);
                self.grant_leases(&name, out);
            }
            ClientMessage::EventSet { id, name } => {
                check_name(Some(id), "event", &name)?;
                let e = self.coord.events.entry(name).or_default();
                e.set = true;
                for w in std::mem::take(&mut e.waiters) {
                    out.push(flag_reply(&w, true));
                }
                ok_reply(out, c, id);
            }
            ClientMessage::EventClear { id, name } => {
                check_name(Some(id), "event", &name)?;
                if let Some(e) = self.coord.events.get_mut(&name) {
                    e.set = false;
                    if e.waiters.is_empty() {
                        self.coord.events.remove(&name);
                    }
                }
                ok_reply(out, c, id);
            }
            ClientMessage::EventWait { id, name, timeout } => {
                check_name(Some(id), "event", &name)?;
                check_timeout(id, timeout)?;
                let set = self.coord.events.get(&name).is_some_and(|e| e.set);
                if set || timeout == Some(0.0) {
                    out.push(flag_reply(&me(id, None), set));
                } else {
                    let e = self.coord.events.entry(name).or_default();
                    e.waiters.push(me(id, timeout));
                    self.coord.timed += timeout.is_some() as usize;
                }
            }
            ClientMessage::PublishDataset {
                id,
                name,
                item,
                replace,
            } => {
                check_name(Some(id), "dataset", &name)?;
                if !replace && self.coord.datasets.contains_key(&name) {
                    return Err((
                        Some(id),
                        CONFLICT,
                        format!("a dataset named '{name}' is already published"),
                    ));
                }
                let item = self
                    .take_item(item, out)
                    .map_err(|e| (Some(id), item_code(&e), e))?;
                if let Some(old) = self.coord.datasets.insert(name, item) {
                    self.drop_item(old);
                }
                ok_reply(out, c, id);
            }
            ClientMessage::UnpublishDataset { id, name } => {
                check_name(Some(id), "dataset", &name)?;
                match self.coord.datasets.remove(&name) {
                    Some(old) => self.drop_item(old),
                    None => {
                        return Err((
                            Some(id),
                            NOT_FOUND,
                            format!("no dataset named '{name}' is published"),
                        ))
                    }
                }
                ok_reply(out, c, id);
            }
            ClientMessage::GetDataset { id, name } => {
                check_name(Some(id), "dataset", &name)?;
                let Some(item) = self.coord.datasets.get(&name).cloned() else {
                    return Err((
                        Some(id),
                        NOT_FOUND,
                        format!("no dataset named '{name}' is published"),
                    ));
                };
                self.reply_item(me(id, None), &item, out);
            }
            ClientMessage::ListDatasets { id } => {
                out.push(Outgoing::Message(
                    Dest::Client(c),
                    Message::CoordReply {
                        id,
                        item: None,
                        flag: None,
                        size: None,
                        names: Some(self.coord.datasets.keys().cloned().collect()),
                    },
                ));
            }
            ClientMessage::FireAndForget { keys, id } => {
                let mut unknown = Vec::new();
                for k in keys {
                    let Some(t) = self.task_id(&k) else {
                        unknown.push(k);
                        continue;
                    };
                    if self.coord.forget.contains(&t) {
                        continue;
                    }
                    if matches!(
                        self.t(t).state,
                        TaskState::Memory { .. } | TaskState::Erred(_)
                    ) {
                        continue; // already finished
                    }
                    self.coord.forget.insert(t);
                    self.hold(t, out);
                }
                if !unknown.is_empty() {
                    return Err((
                        id,
                        UNKNOWN_KEY,
                        format!(
                            "fire-and-forget: the scheduler does not know {}",
                            unknown
                                .iter()
                                .map(|k| format!("'{k}'"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            ClientMessage::Subscribe { id, name } => {
                check_name(id, "topic", &name)?;
                let subs = self.coord.topics.entry(name).or_default();
                if !subs.contains(&c) {
                    subs.push(c);
                }
                if let Some(id) = id {
                    ok_reply(out, c, id);
                }
            }
            ClientMessage::Unsubscribe { name, .. } => {
                if let Some(subs) = self.coord.topics.get_mut(&name) {
                    subs.retain(|&s| s != c);
                    if subs.is_empty() {
                        self.coord.topics.remove(&name);
                    }
                }
            }
            ClientMessage::Publish { name, value, id } => {
                check_name(id, "topic", &name)?;
                if let Some(subs) = self.coord.topics.get(&name) {
                    for &s in subs {
                        out.push(Outgoing::Message(
                            Dest::Client(s),
                            Message::TopicMessage {
                                name: name.clone(),
                                value: value.clone(),
                            },
                        ));
                    }
                }
            }
            // The client's other messages (handle_client_message sends
            // none here).
            other => {
                let op = other.op();
                return Err((
                    Message::from(other).request_id(),
                    super::stimuli::codes::BAD_MESSAGE,
                    format!("'{op}' is not a coordination message"),
                ));
            }
        }
        Ok(())
    }

    /// Hands a queue's items to its waiting gets, and lets blocked puts in
    /// while there is room.
    fn serve_queue(&mut self, name: &str, out: &mut Vec<Outgoing>) {
        loop {
            let Some(q) = self.coord.queues.get_mut(name) else {
                return;
            };
            // Blocked puts first (they are older than any item they wait
            // to add), while there is room.
            if !q.full() {
                if let Some((w, item)) = q.putters.pop_front() {
                    q.items.push_back(item);
                    ok_reply(out, w.client, w.id);
                    continue;
                }
            }
            if q.getters.is_empty() || q.items.is_empty() {
                return;
            }
            let w = q.getters.pop_front().expect("checked");
            let item = q.items.pop_front().expect("checked");
            self.reply_item(w, &item, out);
            self.drop_item(item);
        }
    }

    /// Grants free leases of `name` to its waiters, oldest first.
    fn grant_leases(&mut self, name: &str, out: &mut Vec<Outgoing>) {
        let Some(l) = self.coord.leases.get_mut(name) else {
            return;
        };
        while (l.holders.len() as u32) < l.max {
            let Some(w) = l.waiters.pop_front() else {
                break;
            };
            l.holders.push((w.client, w.id));
            out.push(flag_reply(&w, true));
        }
        if l.holders.is_empty() && l.waiters.is_empty() {
            self.coord.leases.remove(name);
        }
    }

    // ------------------------------------------------------------ checks

    /// The coordination invariants (part of [`SchedulerState::validate`]).
    pub(crate) fn validate_coord(&self) -> Result<(), String> {
        let co = &self.coord;
        let mut count: FxHashMap<TaskId, u32> = FxHashMap::default();
        let mut see = |i: &Item| {
            if let Item::Key(t) = i {
                *count.entry(*t).or_default() += 1;
            }
        };
        let live = |w: &Waiter| self.client(w.client).is_some();
        for (n, v) in &co.variables {
            if let Some(i) = &v.item {
                see(i);
                if !v.waiters.is_empty() {
                    return Err(format!("variable '{n}' has a value and waiters"));
                }
            }
            if !v.waiters.iter().all(live) {
                return Err(format!("variable '{n}' has a waiter of a gone client"));
            }
        }
        for (n, q) in &co.queues {
            q.items.iter().for_each(&mut see);
            q.putters.iter().for_each(|(_, i)| see(i));
            if q.maxsize > 0 && q.items.len() as u64 > q.maxsize {
                return Err(format!("queue '{n}' holds more than its maxsize"));
            }
            if !q.items.is_empty() && !q.getters.is_empty() {
                return Err(format!("queue '{n}' has items and waiting gets"));
            }
            if !q.full() && !q.putters.is_empty() {
                return Err(format!("queue '{n}' has room and blocked puts"));
            }
            if !q.getters.iter().all(live) || !q.putters.iter().all(|(w, _)| live(w)) {
                return Err(format!("queue '{n}' has a waiter of a gone client"));
            }
        }
        for (n, l) in &co.leases {
            if l.holders.len() as u32 > l.max {
                return Err(format!("'{n}' has more holders than leases"));
            }
            if (l.holders.len() as u32) < l.max && !l.waiters.is_empty() {
                return Err(format!("'{n}' has a free lease and waiters"));
            }
            if l.holders.is_empty() && l.waiters.is_empty() {
                return Err(format!("'{n}' is kept with no holder and no waiter"));
            }
            if !l.holders.iter().all(|h| self.client(h.0).is_some()) || !l.waiters.iter().all(live)
            {
                return Err(format!("'{n}' is held or awaited by a gone client"));
            }
        }
        for (n, e) in &co.events {
            if e.set && !e.waiters.is_empty() {
                return Err(format!("event '{n}' is set and has waiters"));
            }
            if !e.set && e.waiters.is_empty() {
                return Err(format!("event '{n}' is kept clear with no waiter"));
            }
            if !e.waiters.iter().all(live) {
                return Err(format!("event '{n}' has a waiter of a gone client"));
            }
        }
        co.datasets.values().for_each(&mut see);
        for &t in &co.forget {
            *count.entry(t).or_default() += 1;
            if matches!(
                self.task(t).map(|x| &x.state),
                Some(TaskState::Memory { .. } | TaskState::Erred(_))
            ) {
                return Err(format!(
                    "fire-and-forget key {t:?} finished and is still held"
                ));
            }
        }
        for (n, subs) in &co.topics {
            if subs.is_empty() || !subs.iter().all(|&s| self.client(s).is_some()) {
                return Err(format!("topic '{n}' has no or gone subscribers"));
            }
        }
        if count != co.held {
            return Err(format!(
                "held keys {:?} != the keys the objects hold {count:?}",
                co.held
            ));
        }
        for &t in co.held.keys() {
            if self.task(t).is_none() {
                return Err(format!("a held key {t:?} was forgotten"));
            }
        }
        if !co.forget_done.is_empty() {
            return Err("fire-and-forget work list not empty between stimuli".into());
        }
        Ok(())
    }
}

fn item_code(e: &str) -> &'static str {
    if e.starts_with("the scheduler does not know") {
        coord_codes::UNKNOWN_KEY
    } else {
        coord_codes::BAD_ARGUMENT
    }
}

fn ok_reply(out: &mut Vec<Outgoing>, c: ClientId, id: u64) {
    out.push(Outgoing::Message(
        Dest::Client(c),
        Message::CoordReply {
            id,
            item: None,
            flag: None,
            size: None,
            names: None,
        },
    ));
}

fn flag_reply(w: &Waiter, flag: bool) -> Outgoing {
    Outgoing::Message(
        Dest::Client(w.client),
        Message::CoordReply {
            id: w.id,
            item: None,
            flag: Some(flag),
            size: None,
            names: None,
        },
    )
}
