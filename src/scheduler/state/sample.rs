//! Read-only views for monitoring (the dashboard and `/metrics` of
//! `crate::scheduler::dashboard`): they walk the state, never change it,
//! and are called only when someone looks (a sample), never per task.

use super::*;

/// A live task as monitoring sees it.
pub struct TaskView<'a> {
    pub id: TaskId,
    pub name: &'a str,
    pub func: FuncId,
    pub state: StateKind,
    pub deps: &'a [TaskId],
}

impl SchedulerState {
    /// The function of a live key (for a `task-finished` about to be
    /// handled), or `None` for an unknown key.
    #[inline]
    pub fn func_of(&self, key: &str) -> Option<FuncId> {
        self.task_id(key).map(|t| self.t(t).func)
    }

    /// The name of an interned function ("" for a key that was only ever
    /// data).
    pub fn function_name(&self, f: FuncId) -> &str {
        self.func_name(f)
    }

    /// Interned functions so far (ids `0..n`).
    pub fn function_count(&self) -> usize {
        self.funcs.len()
    }

    /// Every live task, in table order.
    pub fn task_views(&self) -> impl Iterator<Item = TaskView<'_>> + '_ {
        self.tasks.iter().enumerate().filter_map(|(i, t)| {
            let t = t.as_ref()?;
            Some(TaskView {
                id: TaskId(i as u32),
                name: t.name.as_str(),
                func: t.func,
                state: t.state.kind(),
                deps: &t.deps,
            })
        })
    }

    /// Names of the functions a worker announced.
    pub fn worker_functions(&self, w: WorkerId) -> impl Iterator<Item = &str> + '_ {
        self.w(w).funcs.iter().map(|&f| self.func_name(f))
    }

    /// The worker whose data address is `address`.
    pub fn worker_at(&self, address: &str) -> Option<WorkerId> {
        self.worker_by_addr.get(address).copied()
    }

    /// What the worker's last heartbeat said: tasks executing and bytes of
    /// memory in use.
    pub fn worker_heartbeat(&self, w: WorkerId) -> (u32, u64) {
        let w = self.w(w);
        (w.executing, w.memory)
    }
}

impl SchedulerState {
    /// The function of `key` if it is processing on worker `w` (so that a
    /// `task-finished` or `task-erred` from `w` about it counts), else
    /// `None`.
    #[inline]
    pub fn processing_func(&self, key: &str, w: WorkerId) -> Option<FuncId> {
        let t = self.t(self.task_id(key)?);
        match t.state {
            TaskState::Processing { worker, .. } if worker == w => Some(t.func),
            _ => None,
        }
    }
}
