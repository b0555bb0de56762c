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
    r.fetched(WorkerId(0), 100, None, None, 4.5);
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
    let u: serde_json::Value = serde_json::from_str(&s.update_json(Cursor {
        stream: 3,
        events: 0,
    }))
    .unwrap();
    assert_eq!(u["stream"].as_array().unwrap().len(), 1);
    assert_eq!(u["events"].as_array().unwrap().len(), 1);

    for i in 0..STREAM_CAP + 5 {
        r.task_finished(FuncId(0), WorkerId(0), 0.0, 0, i as f64);
    }
    r.snapshot_took(Duration::from_millis(3));
    let s = r.snapshot(&state, &SnapshotInfo::default(), 1e6);
    assert_eq!(s.body.snapshot_seconds_total, 0.003);
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

#[test]
fn a_timed_fetch_from_a_known_worker_is_a_transfer_in_the_stream() {
    let mut r = Recorder::default();
    r.worker_joined(WorkerId(0), 7, 0.0, "joined".into());
    r.worker_joined(WorkerId(1), 8, 0.0, "joined".into());
    r.task_finished(FuncId(0), WorkerId(1), 0.5, 10, 1.0);
    // Worker 7 fetched 4096 bytes from worker 8 in 0.25 s.
    r.fetched(WorkerId(0), 4096, Some(WorkerId(1)), Some(0.25), 2.0);
    // Untimed (an older worker) or from an unknown source: bytes only.
    r.fetched(WorkerId(0), 10, Some(WorkerId(1)), None, 3.0);
    r.fetched(WorkerId(0), 20, None, Some(0.1), 3.0);
    let state = SchedulerState::default();
    let s = r.snapshot(&state, &SnapshotInfo::default(), 4.0);
    assert_eq!(s.body.fetched_bytes_total, 4126);
    assert_eq!(s.body.tasks_finished_total, 1, "a transfer is not a task");
    assert_eq!(s.stream.len(), 2);
    let t = s.stream[1];
    assert!(t.transfer && t.worker == 7 && t.from == 8 && t.nbytes == 4096);
    assert!((t.start - 1.75).abs() < 1e-9 && t.stop == 2.0 && t.func == u32::MAX);
    assert!(!s.stream[0].transfer);
    let u: serde_json::Value = serde_json::from_str(&s.update_json(Cursor::default())).unwrap();
    assert_eq!(u["stream"][1]["transfer"], true);
    assert_eq!(u["stream"][1]["from"], 8);
    assert!(u["stream"][0].get("transfer").is_none());
}

#[test]
fn a_costly_snapshot_is_handed_over_again_until_the_core_has_worked_enough() {
    let mut r = Recorder::default();
    let (state, info) = (SchedulerState::default(), SnapshotInfo::default());
    let a = r.sample(&state, &info, 1.0, false);
    // Cheap (an empty table): a new one each time it is asked.
    let b = r.sample(&state, &info, 1.1, false);
    assert!(!Arc::ptr_eq(&a, &b));
    // As if building it took 10 ms: the same one again while 10 ms is
    // more than SNAPSHOT_BUDGET of the work since...
    let costly = |r: &mut Recorder| r.last.as_mut().unwrap().1 = Duration::from_millis(10);
    costly(&mut r);
    assert!(Arc::ptr_eq(&b, &r.sample(&state, &info, 1.2, false)));
    r.busy(Duration::from_millis(490));
    assert!(Arc::ptr_eq(&b, &r.sample(&state, &info, 1.3, false)));
    // ... a new one once the core has done enough (10 ms <= 2 % of 510 ms),
    r.busy(Duration::from_millis(20));
    let c = r.sample(&state, &info, 1.4, false);
    assert!(!Arc::ptr_eq(&b, &c) && c.body.time == 1.4);
    // when a fresh one is asked for (a performance report),
    costly(&mut r);
    let d = r.sample(&state, &info, 1.5, true);
    assert!(!Arc::ptr_eq(&c, &d));
    // and when the last one is SNAPSHOT_MAX_AGE old.
    costly(&mut r);
    assert!(Arc::ptr_eq(&d, &r.sample(&state, &info, 3.4, false)));
    assert!(!Arc::ptr_eq(
        &d,
        &r.sample(&state, &info, 1.5 + SNAPSHOT_MAX_AGE, false)
    ));
}
