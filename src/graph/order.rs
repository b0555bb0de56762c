//! Static task priorities, in the spirit of `dask.order`.
//!
//! The goal is twofold: keep the critical path moving (so the longest chain is
//! never left for last), and finish one branch of the graph before opening the
//! next (so intermediates are consumed, and freed, soon after they are made).
//!
//! The heuristic:
//!
//! 1. Each task's *height* is the length, in tasks, of the longest chain of
//!    dependencies below it (a leaf has height 1). It is the critical path
//!    that remains before the task can run.
//! 2. Starting from the roots (tasks nothing in the plan depends on; the
//!    tallest first, ties broken by the order the plan found them in), a
//!    depth-first walk visits each task's dependencies tallest first, ties
//!    broken by the order of the task's arguments.
//! 3. A task's priority is its position in the post-order of that walk: a task
//!    comes right after the last of its dependencies, so a reduction consumes
//!    its inputs as soon as they exist instead of after every leaf has run.
//!
//! The result is a permutation: priorities are unique, lower runs first. For a
//! binary tree reduction the walk yields leaf, leaf, sum, leaf, leaf, sum,
//! sum, ..., so an executor that always runs the lowest ready priority holds
//! O(depth × threads) intermediates at a time.

use super::Plan;

/// Computes priorities for `plan`; `topo` is a topological order of it.
pub fn priorities(plan: &Plan, topo: &[u32]) -> Vec<u32> {
    let n = plan.len();
    let mut height = vec![0u32; n];
    for &t in topo {
        let h = plan
            .deps_of(t)
            .iter()
            .map(|&d| height[d as usize])
            .max()
            .unwrap_or(0);
        height[t as usize] = h + 1;
    }

    // Tallest first. Sorts are stable: among equals, dependencies keep the
    // order of the task's arguments and roots the plan's order.
    let better = |a: &u32, b: &u32| height[*b as usize].cmp(&height[*a as usize]);

    let mut roots: Vec<u32> = (0..n as u32)
        .filter(|&t| plan.dependents_of(t).is_empty())
        .collect();
    roots.sort_by(better);

    const UNSET: u32 = u32::MAX;
    let mut priority = vec![UNSET; n];
    let mut entered = vec![false; n];
    let mut next = 0u32;
    // Children waiting to be visited, for all open frames; each frame owns
    // the part of `pending` above its `base`.
    let mut pending: Vec<u32> = Vec::new();
    let mut frames: Vec<(u32, usize)> = Vec::new();
    let mut scratch: Vec<u32> = Vec::new();

    let mut enter = |t: u32,
                     entered: &mut Vec<bool>,
                     pending: &mut Vec<u32>,
                     frames: &mut Vec<(u32, usize)>| {
        entered[t as usize] = true;
        let base = pending.len();
        scratch.clear();
        scratch.extend_from_slice(plan.deps_of(t));
        scratch.sort_by(better);
        // The best child goes on top of the stack.
        pending.extend(scratch.iter().rev());
        frames.push((t, base));
    };

    for &r in &roots {
        enter(r, &mut entered, &mut pending, &mut frames);
        while let Some(&(t, base)) = frames.last() {
            if pending.len() > base {
                let c = pending.pop().unwrap();
                if !entered[c as usize] {
                    enter(c, &mut entered, &mut pending, &mut frames);
                }
            } else {
                frames.pop();
                priority[t as usize] = next;
                next += 1;
            }
        }
    }
    debug_assert_eq!(next as usize, n, "every task in an acyclic plan is reached");
    priority
}
