use super::*;
use crate::scheduler::state::SchedulerState;

#[test]
fn durations_land_in_their_buckets_and_the_stream_is_bounded() {
    let mut r = Recorder::default();
    r.worker_joined(WorkerId(0), 7, 0.0, "joined".into());
    r.task_finished(FuncId(0), WorkerId(0), 2e-5, 10, 1.0); // ≤ 5e-5
    r.task_finished(FuncId(0), WorkerId(0), 0.2, 20, 2.0); // ≤ 0.5
    r.task_finished(FuncId(1), WorkerId(0), f64::NAN, 0, 3.0); // counted as 0
    r.task_finished(FuncId(1), WorkerId(0), 1e6, 0, 4.0); // +Inf
    r.fetched(WorkerId(0), 100);
    let state = SchedulerState::default();
    let s = r.snapshot(&state, &SnapshotInfo::default(), 5.0);
    let b = &s.body;
    assert_eq!(b.tasks_finished_total, 4);
    assert_eq!(b.result_bytes_total, 30);
    assert_eq!(b.fetched_bytes_total, 100);
    assert_eq!(b.functions.len(), 2);
    assert_eq!(b.functions[0].buckets[1], 1);
    assert_eq!(b.functions[0].buckets[9], 1);
    assert_eq!(b.functions[1].buckets[0], 1);
    assert_eq!(b.functions[1].buckets[DURATION_BUCKETS.len()], 1);
    assert_eq!(s.stream.len(), 4);
    assert!(s.stream.iter().all(|e| e.worker == 7));
    assert!((s.stream[1].start - 1.8).abs() < 1e-9);
    assert_eq!(s.stream_end(), 4);
    // Only what a page has not seen.
    let u: serde_json::Value = serde_json::from_str(&s.update_json(3)).unwrap();
    assert_eq!(u["stream"].as_array().unwrap().len(), 1);

    for i in 0..STREAM_CAP + 5 {
        r.task_finished(FuncId(0), WorkerId(0), 0.0, 0, i as f64);
    }
    let s = r.snapshot(&state, &SnapshotInfo::default(), 1e6);
    assert_eq!(s.stream.len(), STREAM_CAP);
    assert_eq!(s.stream_end(), (STREAM_CAP + 9) as u64);
}

#[test]
fn metrics_escape_labels_and_list_every_name() {
    let mut r = Recorder::default();
    r.task_finished(FuncId(0), WorkerId(0), 0.001, 1, 1.0);
    let state = SchedulerState::default();
    let mut s = r.snapshot(&state, &SnapshotInfo::default(), 2.0);
    s.body.functions[0].name = "a\"b\\c\nd".into();
    let text = metrics::render(&s);
    assert!(text.contains(r#"function="a\"b\\c\nd""#), "{text}");
    for (name, kind, _) in metrics::METRICS {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} missing"
        );
    }
    // docs/dashboard.md documents every metric.
    let docs = include_str!("../../../docs/dashboard.md");
    for (name, _, _) in metrics::METRICS {
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/dashboard.md: {name}"
        );
    }
}
