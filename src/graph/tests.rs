use super::*;
use crate::value::{encode, Value};

/// `{a: 1, x: 10, b: inc(a), y: inc(x), z: add(b, y)}`
pub(crate) fn classic() -> Graph {
    let mut g = Graph::new();
    g.add_value("a", 1).unwrap();
    g.add_value("x", 10).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("b", "inc", vec![a]).unwrap();
    let x = g.r("x").unwrap();
    g.add_task("y", "inc", vec![x]).unwrap();
    let (b, y) = (g.r("b").unwrap(), g.r("y").unwrap());
    g.add_task("z", "add", vec![b, y]).unwrap();
    g
}

fn ids(g: &Graph, names: &[&str]) -> Vec<KeyId> {
    g.output_ids(names).unwrap()
}

#[test]
fn classic_graph_plans() {
    let g = classic();
    assert_eq!(g.len(), 5);
    g.validate().unwrap();
    let p = g.plan(&ids(&g, &["z"])).unwrap();
    // Literals are not tasks: b, y, z.
    assert_eq!(p.len(), 3);
    let z = p.local[g.lookup("z").unwrap().0 as usize];
    assert_eq!(p.deps_of(z).len(), 2);
    assert!(p.is_output[z as usize]);
    assert_eq!(p.local[g.lookup("a").unwrap().0 as usize], LITERAL);
    // The output runs last.
    assert_eq!(p.priority[z as usize], 2);
}

#[test]
fn culling_keeps_only_what_outputs_need() {
    let g = classic();
    let p = g.plan(&ids(&g, &["b"])).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p.keys, vec![g.lookup("b").unwrap()]);
    assert_eq!(p.local[g.lookup("y").unwrap().0 as usize], UNUSED);
    assert_eq!(p.local[g.lookup("x").unwrap().0 as usize], UNUSED);
    // A literal output needs no task at all.
    assert_eq!(g.plan(&ids(&g, &["a"])).unwrap().len(), 0);
}

#[test]
fn culling_skips_broken_parts_nobody_needs() {
    let mut g = classic();
    let q = g.r("nowhere").unwrap();
    g.add_task("broken", "inc", vec![q]).unwrap();
    assert!(g.plan(&ids(&g, &["z"])).is_ok());
    assert!(g.validate().is_err());
}

#[test]
fn missing_key_names_both_keys() {
    let mut g = Graph::new();
    let r = g.r("ghost").unwrap();
    g.add_task("t", "inc", vec![r]).unwrap();
    let e = g.validate().unwrap_err();
    assert_eq!(
        e,
        GraphError::MissingKey {
            key: "ghost".into(),
            referenced_by: "t".into()
        }
    );
    let msg = e.to_string();
    assert!(msg.contains("'t'") && msg.contains("'ghost'"), "{msg}");
}

#[test]
fn cycle_names_the_keys_on_it() {
    let mut g = Graph::new();
    g.add_value("lit", 1).unwrap();
    let (b, lit) = (g.r("b").unwrap(), g.r("lit").unwrap());
    g.add_task("a", "add", vec![b, lit]).unwrap();
    let c = g.r("c").unwrap();
    g.add_task("b", "inc", vec![c]).unwrap();
    let a = g.r("a").unwrap();
    g.add_task("c", "inc", vec![a]).unwrap();
    // `out` depends on the cycle but is not on it.
    let a2 = g.r("a").unwrap();
    g.add_task("out", "inc", vec![a2]).unwrap();
    let e = g.plan(&ids(&g, &["out"])).unwrap_err();
    let GraphError::Cycle(mut keys) = e.clone() else {
        panic!("expected a cycle, got {e:?}")
    };
    keys.sort();
    assert_eq!(keys, vec!["a", "b", "c"]);
    assert!(e.to_string().contains("cycle"), "{e}");
}

#[test]
fn self_reference_is_a_cycle() {
    let mut g = Graph::new();
    let me = g.r("me").unwrap();
    g.add_task("me", "inc", vec![me]).unwrap();
    assert_eq!(g.validate(), Err(GraphError::Cycle(vec!["me".into()])));
}

#[test]
fn builder_errors() {
    let mut g = Graph::new();
    assert_eq!(g.add_value("", 1), Err(GraphError::EmptyKey));
    assert_eq!(g.r(""), Err(GraphError::EmptyKey));
    g.add_value("k", 1).unwrap();
    assert_eq!(
        g.add_task("k", "inc", vec![]),
        Err(GraphError::DuplicateKey("k".into()))
    );
    assert!(matches!(
        g.add_task("t", "", vec![]),
        Err(GraphError::EmptyFunctionName { .. })
    ));
    assert_eq!(
        g.output_ids(&["zz"]),
        Err(GraphError::UnknownOutput("zz".into()))
    );
}

#[test]
fn nested_args_and_duplicate_refs_give_one_edge() {
    let mut g = Graph::new();
    g.add_task("a", "noop", vec![]).unwrap();
    let a = g.r("a").unwrap();
    let a2 = g.r("a").unwrap();
    let a3 = g.r("a").unwrap();
    g.add_task(
        "t",
        "list",
        vec![
            Arg::List(vec![a, Arg::Value(Value::Int(1))]),
            Arg::Map(vec![(Value::from("k"), a2)]),
            a3,
        ],
    )
    .unwrap();
    let p = g.plan(&ids(&g, &["t"])).unwrap();
    let t = p.local[g.lookup("t").unwrap().0 as usize];
    assert_eq!(p.deps_of(t).len(), 1);
}

/// A binary tree reduction over `n` leaves; returns the root key.
pub(crate) fn tree(g: &mut Graph, n: usize) -> String {
    let mut level: Vec<String> = (0..n)
        .map(|i| {
            let k = format!("leaf-{i}");
            g.add_task(&k, "inc", vec![Arg::from(i as i64)]).unwrap();
            k
        })
        .collect();
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        level = level
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| {
                let k = format!("sum-{depth}-{i}");
                let args = pair.iter().map(|p| g.r(p).unwrap()).collect();
                g.add_task(&k, "add", args).unwrap();
                k
            })
            .collect();
    }
    level.pop().unwrap()
}

#[test]
fn order_finishes_one_branch_before_the_next() {
    let mut g = Graph::new();
    let root = tree(&mut g, 8);
    let p = g.plan(&ids(&g, &[&root])).unwrap();
    let mut by_priority: Vec<(u32, &str)> = p
        .keys
        .iter()
        .enumerate()
        .map(|(t, &k)| (p.priority[t], g.key_name(k)))
        .collect();
    by_priority.sort();
    let names: Vec<&str> = by_priority.iter().map(|x| x.1).collect();
    // Each pair of leaves is summed before the next pair starts.
    assert_eq!(
        &names[..6],
        &["leaf-0", "leaf-1", "sum-1-0", "leaf-2", "leaf-3", "sum-1-1"]
    );
    assert_eq!(names[6], "sum-2-0");
    assert_eq!(*names.last().unwrap(), root);
    // A permutation.
    let mut pr = p.priority.clone();
    pr.sort();
    assert_eq!(pr, (0..p.len() as u32).collect::<Vec<_>>());
}

#[test]
fn order_follows_the_critical_path_first() {
    // root depends on a short branch (one task) and a long chain (3 tasks).
    let mut g = Graph::new();
    g.add_task("short", "noop", vec![]).unwrap();
    g.add_task("c0", "noop", vec![]).unwrap();
    let c0 = g.r("c0").unwrap();
    g.add_task("c1", "identity", vec![c0]).unwrap();
    let c1 = g.r("c1").unwrap();
    g.add_task("c2", "identity", vec![c1]).unwrap();
    let (s, c2) = (g.r("short").unwrap(), g.r("c2").unwrap());
    g.add_task("root", "list", vec![s, c2]).unwrap();
    let p = g.plan(&ids(&g, &["root"])).unwrap();
    let prio = |k: &str| p.priority[p.local[g.lookup(k).unwrap().0 as usize] as usize];
    assert!(prio("c0") < prio("short"), "the long chain starts first");
    assert!(prio("c0") < prio("c1") && prio("c1") < prio("c2"));
    assert_eq!(prio("root"), 4);
}

#[test]
fn every_dependency_comes_before_its_dependents() {
    // A pseudo-random DAG: each task depends on up to 3 earlier ones.
    let mut g = Graph::new();
    let mut seed = 12345u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..2000 {
        let mut args = Vec::new();
        if i > 0 {
            for _ in 0..(rnd() % 4) {
                let d = rnd() as usize % i;
                args.push(g.r(&format!("t{d}")).unwrap());
            }
        }
        g.add_task(&format!("t{i}"), "list", args).unwrap();
    }
    let all: Vec<KeyId> = g.iter().map(|(k, _)| k).collect();
    let p = g.plan(&all).unwrap();
    for t in 0..p.len() as u32 {
        for &d in p.deps_of(t) {
            assert!(p.priority[d as usize] < p.priority[t as usize]);
        }
    }
}

fn doc(v: Value) -> Vec<u8> {
    encode(&v).unwrap()
}

fn m(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn r(k: &str) -> Value {
    m(vec![("ref", Value::from(k))])
}

#[test]
fn msgpack_document_decodes() {
    let tasks = m(vec![
        ("a", m(vec![("value", Value::Int(1))])),
        ("x", m(vec![("value", Value::Int(10))])),
        (
            "b",
            m(vec![
                ("func", "inc".into()),
                ("args", Value::Array(vec![r("a")])),
            ]),
        ),
        (
            "y",
            m(vec![
                ("func", "inc".into()),
                ("args", Value::Array(vec![r("x")])),
            ]),
        ),
        (
            "z",
            m(vec![
                ("func", "add".into()),
                ("args", Value::Array(vec![r("b"), r("y")])),
            ]),
        ),
        (
            "s",
            m(vec![
                ("func", "sum".into()),
                (
                    "args",
                    Value::Array(vec![Value::Array(vec![r("a"), Value::Int(5)])]),
                ),
            ]),
        ),
        (
            "q",
            m(vec![
                ("func", "list".into()),
                (
                    "args",
                    Value::Array(vec![
                        m(vec![("value", r("not-a-ref"))]),
                        m(vec![("map", m(vec![("k", r("a"))]))]),
                        Value::from("plain string"),
                    ]),
                ),
            ]),
        ),
    ]);
    let bytes = doc(m(vec![
        ("version", Value::Int(1)),
        ("tasks", tasks),
        ("outputs", Value::Array(vec!["z".into()])),
        ("future-field", Value::Nil),
    ]));
    let (g, outputs) = Graph::from_msgpack(&bytes).unwrap();
    assert_eq!(outputs, vec!["z".to_string()]);
    assert_eq!(g.len(), 7);
    g.validate().unwrap();
    let Some(Node::Task(q)) = g.node(g.lookup("q").unwrap()) else {
        panic!()
    };
    assert_eq!(q.args[0], Arg::Value(r("not-a-ref")));
    assert!(matches!(&q.args[1], Arg::Map(e) if matches!(e[0].1, Arg::Ref(_))));
    assert_eq!(q.args[2], Arg::Value("plain string".into()));
}

#[test]
fn malformed_documents_are_errors() {
    let task = |args: Value| m(vec![("func", "inc".into()), ("args", args)]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xc1], "invalid msgpack"),
        (doc(Value::Int(3)), "must be a map"),
        (doc(m(vec![])), "no 'tasks'"),
        (
            doc(m(vec![("tasks", Value::Int(1))])),
            "'tasks' must be a map",
        ),
        (
            doc(m(vec![("version", Value::Int(2)), ("tasks", m(vec![]))])),
            "version",
        ),
        (
            doc(m(vec![("tasks", m(vec![("a", Value::Int(1))]))])),
            "key 'a'",
        ),
        (
            doc(m(vec![("tasks", m(vec![("a", m(vec![]))]))])),
            "needs 'func' or 'value'",
        ),
        (
            doc(m(vec![(
                "tasks",
                m(vec![(
                    "a",
                    task(Value::Array(vec![m(vec![("bogus", Value::Nil)])])),
                )]),
            )])),
            "unknown argument tag",
        ),
        (
            doc(m(vec![(
                "tasks",
                m(vec![(
                    "a",
                    task(Value::Array(vec![m(vec![("ref", Value::Int(3))])])),
                )]),
            )])),
            "'ref' must name a key",
        ),
        (
            doc(m(vec![("tasks", m(vec![("a", task(Value::Int(1)))]))])),
            "'args' must be an array",
        ),
        (
            doc(m(vec![(
                "tasks",
                Value::Map(vec![(Value::Int(1), m(vec![("value", Value::Nil)]))]),
            )])),
            "keys must be strings",
        ),
        (
            doc(m(vec![(
                "tasks",
                m(vec![("", m(vec![("value", Value::Nil)]))]),
            )])),
            "empty",
        ),
    ];
    for (bytes, needle) in cases {
        let e = Graph::from_msgpack(&bytes).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} should contain {needle:?}");
    }
    // A key defined twice in the document.
    let mut dup = vec![0x81, 0xa5];
    dup.extend_from_slice(b"tasks");
    dup.push(0x82);
    for _ in 0..2 {
        dup.extend_from_slice(&[0xa1, b'k']);
        dup.extend(doc(m(vec![("value", Value::Nil)])));
    }
    assert_eq!(
        Graph::from_msgpack(&dup).unwrap_err(),
        GraphError::DuplicateKey("k".into())
    );
}

#[test]
fn task_args_roundtrip_by_name() {
    use super::doc::{decode_args, encode_args, KeyArg};
    let mut g = Graph::new();
    let a = g.r("a").unwrap();
    let b = g.r("b").unwrap();
    let args = vec![
        a,
        Arg::List(vec![b, Arg::from(2)]),
        Arg::Map(vec![(Value::from("k"), Arg::from("s"))]),
        Arg::Value(Value::Array(vec![Value::Int(1)])),
        Arg::Value(m(vec![("ref", Value::from("not-a-ref"))])),
    ];
    let bytes = encode_args(&g, &args);
    let back = decode_args(&bytes.unwrap()).unwrap();
    assert_eq!(back[0], KeyArg::Ref("a".into()));
    let mut refs = Vec::new();
    for x in &back {
        x.for_each_ref(&mut |k| refs.push(k.to_owned()));
    }
    assert_eq!(refs, vec!["a", "b"]);
    let lookup = |k: &str| match k {
        "a" => Some(Value::Int(10)),
        "b" => Some(Value::Int(20)),
        _ => None,
    };
    let vals: Vec<Value> = back.iter().map(|x| x.resolve(&lookup).unwrap()).collect();
    assert_eq!(vals[0], Value::Int(10));
    assert_eq!(vals[1], Value::Array(vec![Value::Int(20), Value::Int(2)]));
    assert_eq!(vals[2], m(vec![("k", Value::from("s"))]));
    assert_eq!(vals[3], Value::Array(vec![Value::Int(1)]));
    assert_eq!(vals[4], m(vec![("ref", Value::from("not-a-ref"))]));
    assert_eq!(
        KeyArg::Ref("zz".into()).resolve(&lookup),
        Err("zz".to_string())
    );
    assert!(decode_args(&encode(&Value::Int(1)).unwrap()).is_err());
}
