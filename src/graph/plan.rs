//! A [`Plan`]: the part of a graph some outputs need, validated and ordered.

use super::{order, Arg, Graph, GraphError, KeyId, Node};

const NONE: u32 = u32::MAX;
/// In [`Plan::local`]: the key is a literal the plan reads.
pub const LITERAL: u32 = u32::MAX - 1;
/// In [`Plan::local`]: the plan does not use the key.
pub const UNUSED: u32 = u32::MAX;

/// The tasks needed for a set of outputs, in dense local ids `0..len()`, with
/// dependency edges in compressed (CSR) form and a static priority per task.
///
/// Literal keys are not tasks: a task that references a literal reads it from
/// the graph, so edges only join tasks. A task's dependency list holds each
/// task it references once, however often it is referenced.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Local id → graph key.
    pub keys: Vec<KeyId>,
    /// `deps[dep_start[t]..dep_start[t + 1]]` are the tasks `t` depends on.
    pub dep_start: Vec<u32>,
    pub deps: Vec<u32>,
    /// `dependents[dependent_start[t]..dependent_start[t + 1]]` depend on `t`.
    pub dependent_start: Vec<u32>,
    pub dependents: Vec<u32>,
    /// Lower runs first; a permutation of `0..len()` (see [`order`]).
    pub priority: Vec<u32>,
    /// The requested outputs, in request order (tasks or literals).
    pub outputs: Vec<KeyId>,
    /// For each local task, whether it is a requested output.
    pub is_output: Vec<bool>,
    /// Graph key → local task id, or [`LITERAL`] / [`UNUSED`].
    pub local: Vec<u32>,
}

impl Plan {
    pub(super) fn new(g: &Graph, outputs: &[KeyId]) -> Result<Plan, GraphError> {
        // Graph key → local task id, for the tasks we keep.
        let mut local = vec![NONE; g.key_capacity()];
        let mut keys: Vec<KeyId> = Vec::new();
        let mut stack: Vec<KeyId> = Vec::new();
        // `local` is also the visited marker for literals: they get LITERAL.

        for &o in outputs {
            match g.node(o) {
                None => return Err(GraphError::UnknownOutput(g.key_name(o).to_owned())),
                Some(_) => stack.push(o),
            }
        }
        // Cull: depth-first walk over references from the outputs.
        while let Some(k) = stack.pop() {
            if local[k.0 as usize] != NONE {
                continue;
            }
            match g.node(k).expect("pushed keys are defined") {
                Node::Value(_) => local[k.0 as usize] = LITERAL,
                Node::Task(t) => {
                    local[k.0 as usize] = keys.len() as u32;
                    keys.push(k);
                    let mut missing = None;
                    for a in &t.args {
                        a.for_each_ref(&mut |d| {
                            if g.node(d).is_none() {
                                missing.get_or_insert(d);
                            } else if local[d.0 as usize] == NONE {
                                stack.push(d);
                            }
                        });
                    }
                    if let Some(d) = missing {
                        return Err(GraphError::MissingKey {
                            key: g.key_name(d).to_owned(),
                            referenced_by: g.key_name(k).to_owned(),
                        });
                    }
                }
            }
        }

        // Dependency lists (tasks only, deduplicated with a stamp array).
        let n = keys.len();
        let mut dep_start = Vec::with_capacity(n + 1);
        let mut deps = Vec::with_capacity(n);
        let mut stamp = vec![NONE; n];
        dep_start.push(0u32);
        for (t, &k) in keys.iter().enumerate() {
            if let Some(Node::Task(spec)) = g.node(k) {
                for a in &spec.args {
                    push_task_refs(a, &local, &mut stamp, t as u32, &mut deps);
                }
            }
            dep_start.push(deps.len() as u32);
        }

        // Dependents: the transpose, by counting.
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

        let mut is_output = vec![false; n];
        for &o in outputs {
            let l = local[o.0 as usize];
            if l < LITERAL {
                is_output[l as usize] = true;
            }
        }

        let mut plan = Plan {
            keys,
            dep_start,
            deps,
            dependent_start,
            dependents,
            priority: Vec::new(),
            outputs: outputs.to_vec(),
            is_output,
            local,
        };
        let topo = plan.topological_order(g)?;
        plan.priority = order::priorities(&plan, &topo);
        Ok(plan)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The tasks `t` depends on.
    pub fn deps_of(&self, t: u32) -> &[u32] {
        &self.deps[self.dep_start[t as usize] as usize..self.dep_start[t as usize + 1] as usize]
    }

    /// The tasks that depend on `t`.
    pub fn dependents_of(&self, t: u32) -> &[u32] {
        &self.dependents[self.dependent_start[t as usize] as usize
            ..self.dependent_start[t as usize + 1] as usize]
    }

    /// Kahn's algorithm: dependencies before dependents. On a cycle, finds
    /// one and names its keys.
    fn topological_order(&self, g: &Graph) -> Result<Vec<u32>, GraphError> {
        let n = self.len();
        let mut indeg: Vec<u32> = (0..n as u32)
            .map(|t| self.deps_of(t).len() as u32)
            .collect();
        let mut out: Vec<u32> = (0..n as u32).filter(|&t| indeg[t as usize] == 0).collect();
        let mut i = 0;
        while i < out.len() {
            let t = out[i];
            i += 1;
            for &d in self.dependents_of(t) {
                indeg[d as usize] -= 1;
                if indeg[d as usize] == 0 {
                    out.push(d);
                }
            }
        }
        if out.len() == n {
            return Ok(out);
        }
        // Every task left has a dependency that is also left: walk those
        // edges until a task repeats; the walk from its first visit is a cycle.
        let start = (0..n).find(|&t| indeg[t] > 0).unwrap() as u32;
        let mut pos = vec![NONE; n];
        let mut path = Vec::new();
        let mut t = start;
        while pos[t as usize] == NONE {
            pos[t as usize] = path.len() as u32;
            path.push(t);
            t = *self
                .deps_of(t)
                .iter()
                .find(|&&d| indeg[d as usize] > 0)
                .expect("a task on a cycle has a dependency on it");
        }
        let cycle = path[pos[t as usize] as usize..]
            .iter()
            .map(|&t| g.key_name(self.keys[t as usize]).to_owned())
            .collect();
        Err(GraphError::Cycle(cycle))
    }
}

fn push_task_refs(a: &Arg, local: &[u32], stamp: &mut [u32], t: u32, deps: &mut Vec<u32>) {
    a.for_each_ref(&mut |k| {
        let l = local[k.0 as usize];
        if l < LITERAL && stamp[l as usize] != t {
            stamp[l as usize] = t;
            deps.push(l);
        }
    });
}
