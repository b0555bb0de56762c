//! `update-graph`: decoding a graph document and merging it into the task
//! table (see "Merging graphs" in the module docs).

use super::*;
use crate::graph::{Arg, Graph, GraphError, KeyId, Node, Plan};
use crate::value::{EncodeError, Value};

/// What a key of the submitted document is to the scheduler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Unseen,
    /// A new task, by local index.
    New(u32),
    /// A key the scheduler already has.
    Known(TaskId),
    /// A literal, substituted into the arguments that reference it.
    Literal,
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).expect("writing to a Vec");
}

/// Encodes a literal as an argument: arrays and maps must be quoted so
/// they are not read as arguments themselves.
fn encode_literal(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    crate::value::check_size(v)?;
    if matches!(v, Value::Array(_) | Value::Map(_)) {
        rmp::encode::write_map_len(out, 1).expect("writing to a Vec");
        write_str(out, "value");
    }
    crate::value::encode_into(v, out)
}

/// Encodes one argument in the graph-spec grammar, substituting literals.
fn encode_arg(g: &Graph, slots: &[Slot], a: &Arg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_arg_with(g, a, out, &|k| matches!(slots[k.0 as usize], Slot::Literal))
}

/// Encodes one argument as [`encode_arg`] would have when the key was
/// created, for comparing a resubmitted definition with the known one: a
/// reference to a literal the scheduler does not hold as a key is
/// substituted, anything else stays a reference.
fn encode_arg_cmp(
    s: &SchedulerState,
    g: &Graph,
    a: &Arg,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode_arg_with(g, a, out, &|k| s.task_id(g.key_name(k)).is_none())
}

/// Encodes one argument; a reference to a literal node for which
/// `inline(key)` holds is written as the literal, any other as `{ref: key}`.
fn encode_arg_with(
    g: &Graph,
    a: &Arg,
    out: &mut Vec<u8>,
    inline: &dyn Fn(KeyId) -> bool,
) -> Result<(), EncodeError> {
    match a {
        Arg::Value(v) => encode_literal(v, out)?,
        Arg::Ref(k) => match g.node(*k) {
            Some(Node::Value(v)) if inline(*k) => encode_literal(v, out)?,
            _ => {
                rmp::encode::write_map_len(out, 1).expect("writing to a Vec");
                write_str(out, "ref");
                write_str(out, g.key_name(*k));
            }
        },
        Arg::List(items) => {
            rmp::encode::write_array_len(out, items.len() as u32).expect("writing to a Vec");
            for a in items {
                encode_arg_with(g, a, out, inline)?;
            }
        }
        Arg::Map(items) => {
            rmp::encode::write_map_len(out, 1).expect("writing to a Vec");
            write_str(out, "map");
            rmp::encode::write_map_len(out, items.len() as u32).expect("writing to a Vec");
            for (k, a) in items {
                crate::value::encode_into(k, out)?;
                encode_arg_with(g, a, out, inline)?;
            }
        }
    }
    Ok(())
}

impl SchedulerState {
    /// Whether the document's definition of `k` differs from the known
    /// task `t` (another function, or other arguments). Scattered data has
    /// no definition to compare.
    fn conflicts(&self, t: TaskId, g: &Graph, k: KeyId) -> bool {
        let task = self.t(t);
        if task.func == NO_FUNC {
            return false;
        }
        let mut buf = Vec::new();
        let func = match g.node(k) {
            Some(Node::Task(spec)) => {
                rmp::encode::write_array_len(&mut buf, spec.args.len() as u32)
                    .expect("writing to a Vec");
                for a in &spec.args {
                    // A definition that cannot be encoded differs.
                    if encode_arg_cmp(self, g, a, &mut buf).is_err() {
                        return true;
                    }
                }
                g.func_name(spec.func)
            }
            Some(Node::Value(v)) => {
                rmp::encode::write_array_len(&mut buf, 1).expect("writing to a Vec");
                if encode_literal(v, &mut buf).is_err() {
                    return true;
                }
                "identity"
            }
            None => return false,
        };
        self.func_name(task.func) != func || task.args[..] != buf[..]
    }

    pub(super) fn ingest(
        &mut self,
        c: ClientId,
        doc: &[u8],
        keys: &[String],
        retries: u32,
        from_task: bool,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), String> {
        let (g, _outputs) = Graph::from_msgpack(doc).map_err(|e| e.to_string())?;
        let mut slots = vec![Slot::Unseen; g.key_capacity()];
        // Local index → graph key, for the new tasks.
        let mut locals: Vec<KeyId> = Vec::new();
        let mut stack: Vec<KeyId> = Vec::new();

        // The wanted keys: known, or new (a wanted literal becomes a task).
        enum Want {
            Known(TaskId),
            New(u32),
        }
        let mut wanted = Vec::with_capacity(keys.len());
        // Known keys the document defines differently (see "Keys shared
        // between clients" in the module docs).
        let mut conflicting: Vec<String> = Vec::new();
        for key in keys {
            if let Some(t) = self.task_id(key) {
                if let Some(k) = g.lookup(key) {
                    if self.conflicts(t, &g, k) {
                        conflicting.push(key.clone());
                    }
                }
                wanted.push(Want::Known(t));
                continue;
            }
            let Some(k) = g.lookup(key).filter(|&k| g.node(k).is_some()) else {
                return Err(GraphError::UnknownOutput(key.clone()).to_string());
            };
            match slots[k.0 as usize] {
                Slot::New(i) => wanted.push(Want::New(i)),
                _ => {
                    let i = locals.len() as u32;
                    slots[k.0 as usize] = Slot::New(i);
                    locals.push(k);
                    if matches!(g.node(k), Some(Node::Task(_))) {
                        stack.push(k);
                    }
                    wanted.push(Want::New(i));
                }
            }
        }

        // Cull: walk the references of new tasks.
        while let Some(k) = stack.pop() {
            let Some(Node::Task(spec)) = g.node(k) else {
                continue;
            };
            let mut err = None;
            for a in &spec.args {
                a.for_each_ref(&mut |d| {
                    if err.is_some() || slots[d.0 as usize] != Slot::Unseen {
                        return;
                    }
                    if let Some(t) = self.task_id(g.key_name(d)) {
                        slots[d.0 as usize] = Slot::Known(t);
                        if self.conflicts(t, &g, d) {
                            conflicting.push(g.key_name(d).to_owned());
                        }
                        return;
                    }
                    match g.node(d) {
                        Some(Node::Task(_)) => {
                            slots[d.0 as usize] = Slot::New(locals.len() as u32);
                            locals.push(d);
                            stack.push(d);
                        }
                        Some(Node::Value(_)) => slots[d.0 as usize] = Slot::Literal,
                        None => {
                            err = Some(GraphError::MissingKey {
                                key: g.key_name(d).to_owned(),
                                referenced_by: g.key_name(k).to_owned(),
                            })
                        }
                    }
                });
            }
            if let Some(e) = err {
                return Err(e.to_string());
            }
        }

        // Shipped code only from clients allowed to send it.
        if !self.clients[c.0 as usize]
            .as_ref()
            .is_some_and(|cl| cl.may_ship)
        {
            for &k in &locals {
                if let Some(Node::Task(spec)) = g.node(k) {
                    let name = g.func_name(spec.func);
                    if crate::registry::shipped_runtime(name).is_some() {
                        return Err(format!(
                            "task '{}' runs a shipped function ({name}), which this scheduler accepts only \
                             from clients on loopback or connected with its token or TLS",
                            g.key_name(k)
                        ));
                    }
                }
            }
        }

        // Dependencies: among new tasks (CSR, for ordering) and on known
        // tasks. Each dependency once per task.
        let n = locals.len();
        let mut dep_start = Vec::with_capacity(n + 1);
        let mut deps: Vec<u32> = Vec::with_capacity(n);
        let mut known: Vec<Vec<TaskId>> = Vec::new();
        let mut known_of: Vec<u32> = vec![u32::MAX; n];
        // stamp[j] == i: local j is already a dependency of local i.
        let mut stamp = vec![u32::MAX; n];
        dep_start.push(0u32);
        for (i, &k) in locals.iter().enumerate() {
            if let Some(Node::Task(spec)) = g.node(k) {
                let mut kn: Vec<TaskId> = Vec::new();
                for a in &spec.args {
                    a.for_each_ref(&mut |d| match slots[d.0 as usize] {
                        Slot::New(j) if stamp[j as usize] != i as u32 => {
                            stamp[j as usize] = i as u32;
                            deps.push(j);
                        }
                        Slot::Known(t) => kn.push(t),
                        _ => {}
                    });
                }
                kn.sort_unstable();
                kn.dedup();
                if !kn.is_empty() {
                    known_of[i] = known.len() as u32;
                    known.push(kn);
                }
            }
            dep_start.push(deps.len() as u32);
        }
        let mut count = vec![0u32; n + 1];
        for &d in &deps {
            count[d as usize + 1] += 1;
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let dependent_start = count.clone();
        let mut dependents = vec![0u32; deps.len()];
        for t in 0..n {
            for &d in &deps[dep_start[t] as usize..dep_start[t + 1] as usize] {
                dependents[count[d as usize] as usize] = t as u32;
                count[d as usize] += 1;
            }
        }
        let mut plan = Plan {
            keys: locals.clone(),
            dep_start,
            deps,
            dependent_start,
            dependents,
            priority: Vec::new(),
            outputs: Vec::new(),
            is_output: Vec::new(),
            local: Vec::new(),
        };
        let topo = topological_order(&plan, &g)?;
        plan.priority = crate::graph::order::priorities(&plan, &topo);

        // The new tasks' arguments, literals substituted, encoded before
        // anything changes: a task whose arguments no message could carry
        // to a worker refuses the graph.
        let mut arena: Vec<u8> = Vec::with_capacity(16 * n);
        let mut arg_end: Vec<usize> = Vec::with_capacity(n);
        for &k in &locals {
            let start = arena.len();
            let too_large = |e: String| format!("task '{}': {e}", g.key_name(k));
            match g.node(k) {
                Some(Node::Task(spec)) => {
                    rmp::encode::write_array_len(&mut arena, spec.args.len() as u32)
                        .expect("writing to a Vec");
                    for a in &spec.args {
                        encode_arg(&g, &slots, a, &mut arena)
                            .map_err(|e| too_large(e.to_string()))?;
                    }
                }
                Some(Node::Value(v)) => {
                    rmp::encode::write_array_len(&mut arena, 1).expect("writing to a Vec");
                    encode_literal(v, &mut arena).map_err(|e| too_large(e.to_string()))?;
                }
                None => unreachable!("new keys are defined"),
            }
            let len = (arena.len() - start) as u64;
            if len > crate::value::MAX_ENCODED {
                return Err(too_large(format!(
                    "its arguments (literals substituted) encode to {len} bytes, over rask's limit \
                     of {} bytes (4 GiB - 1) for what one task carries",
                    crate::value::MAX_ENCODED
                )));
            }
            arg_end.push(arena.len());
        }

        // Create the tasks, dependencies first.
        let base = self.next_generation(from_task);
        let retries = retries.min(u16::MAX as u32) as u16;
        let mut ids = vec![TaskId(u32::MAX); n];
        for &i in &topo {
            let i = i as usize;
            let k = locals[i];
            let args = &arena[if i == 0 { 0 } else { arg_end[i - 1] }..arg_end[i]];
            let func = match g.node(k) {
                Some(Node::Task(spec)) => self.intern_func(g.func_name(spec.func)),
                Some(Node::Value(_)) => self.intern_func("identity"),
                None => unreachable!("new keys are defined"),
            };
            let mut dv: Vec<TaskId> = plan
                .deps_of(i as u32)
                .iter()
                .map(|&j| ids[j as usize])
                .collect();
            if known_of[i] != u32::MAX {
                dv.extend_from_slice(&known[known_of[i] as usize]);
            }
            ids[i] = self.new_task(
                Key::new(g.key_name(k)),
                func,
                args.into(),
                dv.into_boxed_slice(),
                base | plan.priority[i] as u64,
                retries,
            );
        }

        // New tasks that need a known task waiting for a worker that
        // offers its function: warn their clients too (when this stimulus
        // ends), as when it went to no-worker.
        for kn in &known {
            for &t in kn {
                if matches!(self.t(t).state, TaskState::NoWorker) {
                    self.fresh_no_worker.push(t);
                }
            }
        }

        // The client wants its keys.
        let mut needed = Vec::new();
        for w in wanted {
            let t = match w {
                Want::Known(t) => t,
                Want::New(i) => ids[i as usize],
            };
            let client = self.clients[c.0 as usize].as_mut().expect("a live client");
            if client.wants.insert(t) {
                self.tm(t).wanted += 1;
            }
            match &self.t(t).state {
                TaskState::Memory { .. } => out.push(Outgoing::KeyInMemory { client: c, task: t }),
                TaskState::Erred(e) => out.push(Outgoing::KeyErred {
                    client: c,
                    key: self.t(t).name.clone(),
                    error: e.clone(),
                }),
                TaskState::Released => needed.push(t),
                _ => {}
            }
        }
        for t in needed {
            self.make_needed(t, out);
        }
        if !conflicting.is_empty() {
            conflicting.sort_unstable();
            conflicting.dedup();
            tracing::warn!(
                client = %self.clients[c.0 as usize].as_ref().map_or("", |x| x.name.as_str()),
                keys = conflicting.len(),
                first = %conflicting[0],
                "a submission redefines known keys differently; the known definitions are kept"
            );
            let message = format!(
                "{} key{} submitted with another task or value than the scheduler already has \
                 (such as '{}'): the known definition is kept, and its result is what you get. \
                 A key names one task (same key, same task): give a different computation its own key",
                conflicting.len(),
                if conflicting.len() == 1 { " was" } else { "s were" },
                conflicting[0]
            );
            out.push(Outgoing::Message(
                Dest::Client(c),
                Message::Warning {
                    code: "key-conflict".into(),
                    message,
                    keys: conflicting,
                },
            ));
        }
        Ok(())
    }
}

/// Kahn's algorithm over the new tasks; on a cycle, names its keys.
fn topological_order(plan: &Plan, g: &Graph) -> Result<Vec<u32>, String> {
    let n = plan.len();
    let mut indeg: Vec<u32> = (0..n as u32)
        .map(|t| plan.deps_of(t).len() as u32)
        .collect();
    let mut order: Vec<u32> = (0..n as u32).filter(|&t| indeg[t as usize] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        let t = order[i];
        i += 1;
        for &d in plan.dependents_of(t) {
            indeg[d as usize] -= 1;
            if indeg[d as usize] == 0 {
                order.push(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk dependencies that are still left until one repeats.
    let start = (0..n).find(|&t| indeg[t] > 0).expect("a task on a cycle") as u32;
    let mut pos = vec![u32::MAX; n];
    let mut path = Vec::new();
    let mut t = start;
    while pos[t as usize] == u32::MAX {
        pos[t as usize] = path.len() as u32;
        path.push(t);
        t = *plan
            .deps_of(t)
            .iter()
            .find(|&&d| indeg[d as usize] > 0)
            .expect("a task on a cycle has a dependency on it");
    }
    let cycle = path[pos[t as usize] as usize..]
        .iter()
        .map(|&t| g.key_name(plan.keys[t as usize]).to_owned())
        .collect();
    Err(GraphError::Cycle(cycle).to_string())
}
