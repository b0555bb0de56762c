//! Values of 4 GiB and more. msgpack's `str`, `bin`, `ext`, array and map
//! lengths are 32-bit, so one value may encode to at most 4 GiB - 1 bytes
//! (`rask::value::MAX_ENCODED`). Every path that would encode a larger one
//! refuses it with an error naming the limit, and the cluster goes on:
//! a task whose result is too large errs with that message; a scatter, a
//! submit with such a literal, a coordination value or a graph fail in the
//! client before anything is sent.
//!
//! The large buffers are `vec![0u8; n]`: calloc'd, never written, so they
//! take address space and no memory. One buffer is shared by every value.

use bytes::Bytes;
use rask::client::{ClientArg, ClientError, Item};
use rask::cluster::{LocalCluster, LocalClusterConfig};
use rask::{Graph, Registry, Value};
use std::sync::OnceLock;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(30));
/// 4 GiB + 1 bytes.
const OVER: usize = (1 << 32) + 1;

fn big() -> Bytes {
    static BIG: OnceLock<Bytes> = OnceLock::new();
    BIG.get_or_init(|| Bytes::from(vec![0u8; OVER])).clone()
}

fn names_the_limit(e: &ClientError) {
    let m = e.to_string();
    assert!(
        m.contains("4294967295") && m.contains("4 GiB"),
        "the error should name the limit: {m}"
    );
}

#[test]
fn values_over_4_gib_are_refused_on_every_path_and_the_cluster_goes_on() {
    let mut r = Registry::new();
    // Returns a value one byte over 4 GiB.
    r.register("huge", |_| Ok(Value::Bin(big()))).unwrap();
    // Returns a value that just fits: 4 GiB - 1 bytes encoded.
    r.register("largest", |_| {
        let n = rask::value::MAX_ENCODED as usize - 5; // bin32 header: 5 bytes
        let v = Value::Bin(big().slice(..n));
        assert_eq!(
            rask::value::codec::encoded_len_up_to(&v, u64::MAX),
            Some(rask::value::MAX_ENCODED)
        );
        Ok(Value::Int(rask::value::check_size(&v).is_ok() as i64))
    })
    .unwrap();
    let c = LocalCluster::start(LocalClusterConfig {
        workers: 1,
        threads_per_worker: 1,
        registry: r,
        ..Default::default()
    })
    .unwrap();
    let client = c.client().unwrap();

    // A task result too large: the task errs, naming the limit.
    let f = client.submit("huge", vec![]).unwrap();
    let e = f.result(T).unwrap_err();
    let t = e.task().unwrap_or_else(|| panic!("not a task error: {e}"));
    assert_eq!(t.func, "huge");
    names_the_limit(&e);
    // Its dependents err with it.
    let g = client.submit("identity", vec![(&f).into()]).unwrap();
    assert!(g.result(T).unwrap_err().task().is_some());

    // Scatter: the call fails, nothing is sent.
    let e = client.scatter(vec![Value::Bin(big())], false).unwrap_err();
    assert!(matches!(e, ClientError::BadArgument(_)), "{e:?}");
    names_the_limit(&e);
    // Inside a container, and as a tensor.
    let t = rask::value::Tensor::new(rask::value::DType::U8, vec![OVER], big()).unwrap();
    for v in [
        Value::Array(vec![Value::Int(1), Value::Bin(big())]),
        Value::Map(vec![(Value::from("t"), Value::Tensor(t))]),
    ] {
        let e = client.scatter(vec![Value::Int(1), v], true).unwrap_err();
        names_the_limit(&e);
    }

    // A literal argument of submit, map and a graph: refused in the client.
    let e = client
        .submit("identity", vec![ClientArg::Value(Value::Bin(big()))])
        .unwrap_err();
    names_the_limit(&e);
    let e = client
        .map(
            "identity",
            vec![vec![1.into()], vec![Value::Bin(big()).into()]],
        )
        .unwrap_err();
    names_the_limit(&e);
    let mut graph = Graph::new();
    let v = graph.add_value("v", Value::Bin(big())).unwrap();
    graph
        .add_task("w", "identity", vec![rask::Arg::Ref(v)])
        .unwrap();
    names_the_limit(&client.compute(&graph, &["w"]).unwrap_err());
    names_the_limit(&client.compute(&graph, &["v"]).unwrap_err());

    // Coordination values travel in message bodies: refused too.
    names_the_limit(
        &client
            .variable_set("v", &Item::Value(Value::Bin(big())))
            .unwrap_err(),
    );
    names_the_limit(&client.publish("topic", &Value::Bin(big())).unwrap_err());

    // The cluster goes on: the largest value that fits is accepted by the
    // check, and small work still runs on the same connections.
    let ok = client.submit("largest", vec![]).unwrap();
    assert_eq!(ok.result(T).unwrap(), Value::Int(1));
    let s = client.scatter(vec![Value::Int(7)], false).unwrap();
    let h = client.submit("identity", vec![(&s[0]).into()]).unwrap();
    assert_eq!(h.result(T).unwrap(), Value::Int(7));
}
