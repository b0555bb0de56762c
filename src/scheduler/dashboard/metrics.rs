//! `/metrics`: a [`Snapshot`] in the Prometheus text exposition format
//! (version 0.0.4). The names and labels are listed in `docs/dashboard.md`;
//! [`METRICS`] is the same list, and a test checks the two agree.

use super::{Snapshot, DURATION_BUCKETS};
use std::fmt::Write;

/// Every metric: (name, type, help).
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "rask_tasks",
        "gauge",
        "Tasks the scheduler holds, by state.",
    ),
    (
        "rask_function_tasks",
        "gauge",
        "Tasks the scheduler holds, by function and state.",
    ),
    ("rask_workers", "gauge", "Registered workers."),
    ("rask_clients", "gauge", "Connected clients."),
    (
        "rask_connections",
        "gauge",
        "Open connections (workers still registering included).",
    ),
    (
        "rask_tasks_finished_total",
        "counter",
        "Tasks whose worker reported them finished.",
    ),
    (
        "rask_tasks_erred_total",
        "counter",
        "Tasks whose worker reported them failed.",
    ),
    (
        "rask_transfer_bytes_total",
        "counter",
        "Bytes workers fetched from other workers (as reported in add-keys).",
    ),
    (
        "rask_result_bytes_total",
        "counter",
        "Bytes of the results workers computed (as reported in task-finished).",
    ),
    (
        "rask_task_duration_seconds",
        "histogram",
        "Run time of finished tasks as their workers measured it, by function.",
    ),
    (
        "rask_scheduler_busy_seconds_total",
        "counter",
        "Time the scheduler's event loop spent handling events.",
    ),
    (
        "rask_scheduler_busy_ratio",
        "gauge",
        "Fraction of time the event loop was busy since the previous sample.",
    ),
    (
        "rask_dashboard_snapshot_seconds_total",
        "counter",
        "Time the scheduler's event loop spent building the dashboard's snapshots (what watching costs the core).",
    ),
    (
        "rask_scheduler_uptime_seconds",
        "gauge",
        "Seconds since the scheduler started.",
    ),
    ("rask_worker_threads", "gauge", "Threads of each worker."),
    (
        "rask_worker_processing_tasks",
        "gauge",
        "Tasks given to each worker that have not finished.",
    ),
    (
        "rask_worker_memory_bytes",
        "gauge",
        "Memory in use of each worker, from its last heartbeat.",
    ),
    (
        "rask_worker_stored_bytes",
        "gauge",
        "Bytes of results each worker holds.",
    ),
];

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A float as Prometheus writes it.
fn num(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

fn header(out: &mut String, name: &str) {
    let (_, kind, help) = METRICS
        .iter()
        .find(|m| m.0 == name)
        .expect("every metric is listed in METRICS");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition of `s`.
pub fn render(s: &Snapshot) -> String {
    let b = &s.body;
    let mut o = String::with_capacity(4096);
    header(&mut o, "rask_tasks");
    for (state, n) in b.states {
        let _ = writeln!(o, "rask_tasks{{state=\"{state}\"}} {n}");
    }
    header(&mut o, "rask_function_tasks");
    for f in &b.functions {
        for (i, (state, _)) in b.states.iter().enumerate() {
            let n = f.states[i];
            if n > 0 {
                let _ = writeln!(
                    o,
                    "rask_function_tasks{{function=\"{}\",state=\"{state}\"}} {n}",
                    label(&f.name)
                );
            }
        }
    }
    for (name, v) in [
        ("rask_workers", b.workers_count as f64),
        ("rask_clients", b.clients as f64),
        ("rask_connections", b.connections as f64),
    ] {
        header(&mut o, name);
        let _ = writeln!(o, "{name} {}", num(v));
    }
    for (name, v) in [
        ("rask_tasks_finished_total", b.tasks_finished_total),
        ("rask_tasks_erred_total", b.tasks_erred_total),
        ("rask_transfer_bytes_total", b.fetched_bytes_total),
        ("rask_result_bytes_total", b.result_bytes_total),
    ] {
        header(&mut o, name);
        let _ = writeln!(o, "{name} {v}");
    }
    header(&mut o, "rask_task_duration_seconds");
    for f in &b.functions {
        let count: u64 = f.buckets.iter().sum();
        if count == 0 {
            continue;
        }
        let fname = label(&f.name);
        let mut cum = 0;
        for (i, n) in f.buckets.iter().enumerate() {
            cum += n;
            let le = DURATION_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            let _ = writeln!(
                o,
                "rask_task_duration_seconds_bucket{{function=\"{fname}\",le=\"{}\"}} {cum}",
                num(le)
            );
        }
        let _ = writeln!(
            o,
            "rask_task_duration_seconds_sum{{function=\"{fname}\"}} {}",
            num(f.duration_sum)
        );
        let _ = writeln!(
            o,
            "rask_task_duration_seconds_count{{function=\"{fname}\"}} {count}"
        );
    }
    for (name, v) in [
        ("rask_scheduler_busy_seconds_total", b.busy_seconds_total),
        ("rask_scheduler_busy_ratio", b.busy_fraction),
        (
            "rask_dashboard_snapshot_seconds_total",
            b.snapshot_seconds_total,
        ),
        ("rask_scheduler_uptime_seconds", b.time),
    ] {
        header(&mut o, name);
        let _ = writeln!(o, "{name} {}", num(v));
    }
    type Field = fn(&super::WorkerSnap) -> u64;
    let per_worker: [(&str, Field); 4] = [
        ("rask_worker_threads", |w| w.threads as u64),
        ("rask_worker_processing_tasks", |w| w.processing as u64),
        ("rask_worker_memory_bytes", |w| w.memory),
        ("rask_worker_stored_bytes", |w| w.nbytes),
    ];
    for (name, field) in per_worker {
        header(&mut o, name);
        for w in &b.workers {
            let _ = writeln!(
                o,
                "{name}{{worker=\"{}\",address=\"{}\"}} {}",
                label(&w.name),
                label(&w.address),
                field(w)
            );
        }
    }
    o
}
