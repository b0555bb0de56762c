//! Turning recorded [`Outgoing`]s into wire messages: the one place where
//! ids become names again.

use super::*;
use serde_bytes::ByteBuf;
use std::collections::BTreeMap;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    Worker(WorkerId),
    Client(ClientId),
}

impl Outgoing {
    /// Who the message is for.
    pub fn dest(&self) -> Dest {
        match self {
            Outgoing::Compute { worker, .. } | Outgoing::FreeKeys { worker, .. } => {
                Dest::Worker(*worker)
            }
            Outgoing::KeyInMemory { client, .. }
            | Outgoing::KeyErred { client, .. }
            | Outgoing::KeyCancelled { client, .. } => Dest::Client(*client),
            Outgoing::Message(d, _) => *d,
        }
    }
}

impl SchedulerState {
    /// The wire message for `o`, or `None` when it no longer applies (a
    /// `compute-task` for a task that is not processing there any more).
    /// Call it before the next stimulus.
    pub fn render(&self, o: Outgoing) -> Option<(Dest, Message)> {
        let dest = o.dest();
        let msg = match o {
            Outgoing::Compute { worker, task } => {
                let t = self.task(task)?;
                match t.state {
                    TaskState::Processing { worker: w, .. } if w == worker => {}
                    _ => return None,
                }
                let mut who_has = BTreeMap::new();
                for &d in t.deps.iter() {
                    let dt = self.t(d);
                    if let TaskState::Memory { who_has: h } = &dt.state {
                        if h.contains(worker) {
                            continue;
                        }
                        who_has.insert(
                            dt.name.to_string(),
                            h.as_slice()
                                .iter()
                                .map(|&w| self.w(w).address.to_string())
                                .collect(),
                        );
                    }
                }
                Message::ComputeTask {
                    key: t.name.to_string(),
                    func: self.func_name(t.func).to_string(),
                    args: ByteBuf::from(t.args.to_vec()),
                    priority: t.priority,
                    who_has,
                }
            }
            Outgoing::FreeKeys { keys, .. } => Message::FreeKeys {
                keys: keys.iter().map(|k| k.to_string()).collect(),
            },
            Outgoing::KeyInMemory { task, .. } => {
                let t = self.task(task)?;
                let TaskState::Memory { who_has } = &t.state else {
                    return None;
                };
                Message::KeyInMemory {
                    key: t.name.to_string(),
                    nbytes: t.nbytes,
                    workers: who_has
                        .as_slice()
                        .iter()
                        .map(|&w| self.w(w).address.to_string())
                        .collect(),
                    value: self.values.get(&task).map(|v| ByteBuf::from(v.to_vec())),
                }
            }
            Outgoing::KeyErred { key, error, .. } => Message::KeyErred {
                key: key.to_string(),
                failed: error.failed.to_string(),
                func: error.func.clone(),
                worker: error.worker.clone(),
                message: error.message.clone(),
                exception: error.exception.clone(),
                traceback: error.traceback.clone(),
            },
            Outgoing::KeyCancelled { key, .. } => Message::KeyCancelled {
                key: key.to_string(),
            },
            Outgoing::Message(_, m) => m,
        };
        Some((dest, msg))
    }

    /// Renders and drains `out`, in order.
    pub fn render_all(&self, out: &mut Vec<Outgoing>) -> Vec<(Dest, Message)> {
        out.drain(..).filter_map(|o| self.render(o)).collect()
    }
}
