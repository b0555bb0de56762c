//! Task arguments as a client gives them, deterministic keys, and the graph
//! documents a client sends in `update-graph`.

use super::error::ClientError;
use super::future::Future;
use crate::graph::{doc::encode_args, Graph, KeyId, Node, LITERAL};
use crate::value::{encode_into, EncodeError, Value};
use rmp::encode as e;

/// One argument of a submitted task.
///
/// A literal [`Value`], the value of a [`Future`] (it travels as
/// `{"ref": key}`; the task runs once the future's key is in memory), or a
/// list or map of arguments (passed to the function as an array or map
/// value whose futures are replaced by their values).
#[derive(Clone, Debug)]
pub enum ClientArg {
    Value(Value),
    Future(Future),
    List(Vec<ClientArg>),
    /// Literal keys, argument values; passed as a map value.
    Map(Vec<(Value, ClientArg)>),
}

impl<T: Into<Value>> From<T> for ClientArg {
    fn from(v: T) -> Self {
        ClientArg::Value(v.into())
    }
}

impl From<&Future> for ClientArg {
    fn from(f: &Future) -> Self {
        ClientArg::Future(f.clone())
    }
}

impl From<Future> for ClientArg {
    fn from(f: Future) -> Self {
        ClientArg::Future(f)
    }
}

impl ClientArg {
    /// Calls `f` with every future this argument holds.
    pub(crate) fn for_each_future<'a>(&'a self, f: &mut impl FnMut(&'a Future)) {
        match self {
            ClientArg::Value(_) => {}
            ClientArg::Future(x) => f(x),
            ClientArg::List(items) => items.iter().for_each(|a| a.for_each_future(f)),
            ClientArg::Map(items) => items.iter().for_each(|(_, a)| a.for_each_future(f)),
        }
    }

    /// Appends this argument in the argument grammar of
    /// docs/graph-spec.md.
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ClientArg::Future(f) => {
                e::write_map_len(out, 1).unwrap();
                e::write_str(out, "ref").unwrap();
                e::write_str(out, f.key()).unwrap();
            }
            ClientArg::List(items) => {
                e::write_array_len(out, items.len() as u32).unwrap();
                for a in items {
                    a.encode_into(out)?;
                }
            }
            ClientArg::Map(items) => {
                e::write_map_len(out, 1).unwrap();
                e::write_str(out, "map").unwrap();
                e::write_map_len(out, items.len() as u32).unwrap();
                for (k, a) in items {
                    encode_into(k, out)?;
                    a.encode_into(out)?;
                }
            }
            // Arrays and maps are quoted so they are not read as arguments.
            ClientArg::Value(v @ (Value::Array(_) | Value::Map(_))) => {
                e::write_map_len(out, 1).unwrap();
                e::write_str(out, "value").unwrap();
                encode_into(v, out)?;
            }
            ClientArg::Value(v) => encode_into(v, out)?,
        }
        Ok(())
    }
}

/// Encodes a task's arguments as a msgpack array of args. A literal over
/// the value size limit is refused ([`ClientError::BadArgument`]).
pub(crate) fn encode_client_args(args: &[ClientArg]) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::with_capacity(8 + 8 * args.len());
    encode_client_args_into(args, &mut out)?;
    Ok(out)
}

/// Appends a task's arguments as a msgpack array of args to `out`.
pub(crate) fn encode_client_args_into(
    args: &[ClientArg],
    out: &mut Vec<u8>,
) -> Result<(), ClientError> {
    e::write_array_len(out, args.len() as u32).unwrap();
    for a in args {
        a.encode_into(out).map_err(too_large)?;
    }
    Ok(())
}

/// The client's error for a value over the size limit.
pub(crate) fn too_large(e: EncodeError) -> ClientError {
    ClientError::BadArgument(e.to_string())
}

/// A stable, fast 128-bit hash (two multiply-rotate lanes over 8-byte
/// words, with a splitmix finish). Deterministic across runs, builds and
/// platforms, so the same call gets the same key in every client, as with
/// Dask's `tokenize`. Not collision resistant against an adversary (neither
/// is Dask's use of md5 for this).
pub(crate) fn hash128(parts: &[&[u8]]) -> u128 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let (mut h1, mut h2) = (0x243F_6A88_85A3_08D3u64, 0x1319_8A2E_0370_7344u64);
    let mut total = 0u64;
    let mut mix = |w: u64| {
        h1 = (h1 ^ w).wrapping_mul(P1).rotate_left(31);
        h2 = (h2 ^ w.rotate_left(17)).wrapping_mul(P2).rotate_left(27);
    };
    for p in parts {
        // A part boundary marker, so ("ab", "c") and ("a", "bc") differ.
        mix(p.len() as u64 ^ 0xA5A5_A5A5_A5A5_A5A5);
        total = total.wrapping_add(p.len() as u64);
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            mix(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }
    fn fin(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let a = fin(h1 ^ total);
    let b = fin(h2 ^ a);
    ((a as u128) << 64) | b as u128
}

/// The key of a pure task: `"{func}-{32 hex digits}"` from the function
/// name and the encoded arguments.
pub(crate) fn pure_key(func: &str, encoded_args: &[u8]) -> String {
    hashed_key(func, call_hash(func, encoded_args))
}

/// The hash behind [`pure_key`].
pub(crate) fn call_hash(func: &str, encoded_args: &[u8]) -> u128 {
    hash128(&[func.as_bytes(), encoded_args])
}

/// `"{prefix}-{h as 32 hex digits}"`, without the formatting machinery.
pub(crate) fn hashed_key(prefix: &str, h: u128) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(prefix.len() + 33);
    s.push_str(prefix);
    s.push('-');
    for i in (0..32).rev() {
        s.push(HEX[((h >> (4 * i)) & 0xf) as usize] as char);
    }
    s
}

/// A key no other call produces: `"{prefix}-{32 hex digits}"` from the
/// client's identity, a counter and the clock.
pub(crate) fn unique_key(prefix: &str, client_id: u64, counter: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(counter);
    let salt = h.finish();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let x = hash128(&[
        &client_id.to_le_bytes(),
        &counter.to_le_bytes(),
        &now.to_le_bytes(),
        &salt.to_le_bytes(),
        &std::process::id().to_le_bytes(),
    ]);
    hashed_key(prefix, x)
}

/// Builds a document of tasks, each already encoded.
pub(crate) struct DocWriter {
    body: Vec<u8>,
    count: u32,
}

impl DocWriter {
    pub(crate) fn new() -> DocWriter {
        DocWriter {
            body: Vec::new(),
            count: 0,
        }
    }

    /// Adds `key: {"func": func, "args": <encoded_args>}`.
    pub(crate) fn task(&mut self, key: &str, func: &str, encoded_args: &[u8]) {
        let out = &mut self.body;
        e::write_str(out, key).unwrap();
        e::write_map_len(out, 2).unwrap();
        e::write_str(out, "func").unwrap();
        e::write_str(out, func).unwrap();
        e::write_str(out, "args").unwrap();
        out.extend_from_slice(encoded_args);
        self.count += 1;
    }

    /// Adds `key: {"value": v}`.
    pub(crate) fn literal(&mut self, key: &str, v: &Value) -> Result<(), EncodeError> {
        crate::value::check_size(v)?;
        let out = &mut self.body;
        e::write_str(out, key).unwrap();
        e::write_map_len(out, 1).unwrap();
        e::write_str(out, "value").unwrap();
        encode_into(v, out)?;
        self.count += 1;
        Ok(())
    }

    /// The document `{"tasks": {...}}`.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 16);
        e::write_map_len(&mut out, 1).unwrap();
        e::write_str(&mut out, "tasks").unwrap();
        e::write_map_len(&mut out, self.count).unwrap();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The document for computing `outputs` of `graph`: only the part they
/// need (culled and validated with [`Graph::plan`]). A wanted key that is a
/// literal is sent as the task `identity(value)`, so that it becomes a key
/// in the scheduler's memory like any other (literals are otherwise only
/// substituted into the tasks that read them).
pub(crate) fn graph_document(graph: &Graph, outputs: &[KeyId]) -> Result<Vec<u8>, ClientError> {
    let plan = graph
        .plan(outputs)
        .map_err(|e| ClientError::BadArgument(e.to_string()))?;
    let mut w = DocWriter::new();
    let mut wanted = vec![false; graph.key_capacity()];
    for o in outputs {
        wanted[o.0 as usize] = true;
    }
    for (i, &l) in plan.local.iter().enumerate() {
        let k = KeyId(i as u32);
        if l == LITERAL {
            let Some(Node::Value(v)) = graph.node(k) else {
                continue;
            };
            if wanted[i] {
                let mut args = Vec::new();
                e::write_array_len(&mut args, 1).unwrap();
                ClientArg::Value(v.clone())
                    .encode_into_quoted(&mut args)
                    .map_err(too_large)?;
                w.task(graph.key_name(k), "identity", &args);
            } else {
                w.literal(graph.key_name(k), v).map_err(too_large)?;
            }
        }
    }
    for &k in &plan.keys {
        if let Some(Node::Task(t)) = graph.node(k) {
            w.task(
                graph.key_name(k),
                graph.func_name(t.func),
                &encode_args(graph, &t.args).map_err(too_large)?,
            );
        }
    }
    Ok(w.finish())
}

impl ClientArg {
    /// Appends a literal value always quoted as `{"value": v}`.
    fn encode_into_quoted(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if let ClientArg::Value(v) = self {
            crate::value::check_size(v)?;
            e::write_map_len(out, 1).unwrap();
            e::write_str(out, "value").unwrap();
            encode_into(v, out)
        } else {
            self.encode_into(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_separate_parts() {
        // Pinned: keys must not change between builds or platforms. These
        // literals come from an independent implementation of the algorithm
        // (docs/protocol.md, "Pure keys"; tests/vectors/pure-keys.txt), not
        // from this code: a change to hash128 or to the argument encoding
        // fails here.
        for (parts, want) in [
            (
                &[&b"inc"[..], b"\x91\x01"][..],
                "1947b44a679fe4c234ac24d46ccbb2d0",
            ),
            (&[&b""[..]][..], "aaa305bfcb04c2e463ea4bde1de4c389"),
            (&[&b"\0"[..]][..], "888b75b68fc70ecc154b9c37c9c97051"),
            (
                &[&b"0123456789abcdefXYZ"[..]][..],
                "45e1af6c2f2f483f48a5ddd146b34182",
            ),
        ] {
            assert_eq!(format!("{:032x}", hash128(parts)), want, "{parts:?}");
        }
        // Whole keys of calls, the arguments encoded by the client as every
        // face does (the same literals are checked from C, C++, Python and
        // Julia).
        let calls: [(&str, Vec<ClientArg>, &str); 5] = [
            (
                "inc",
                vec![1.into()],
                "inc-1947b44a679fe4c234ac24d46ccbb2d0",
            ),
            (
                "add",
                vec![2.into(), 3.into()],
                "add-1c445a3a02b39b5ef50783175bde8c5d",
            ),
            (
                "mul",
                vec![2.5.into(), (-1).into()],
                "mul-78af0688493ed884f7a1fafdf525a2b1",
            ),
            (
                "len",
                vec!["abc".into()],
                "len-1a8af0223c2b69788d6347cba7f21484",
            ),
            (
                "add",
                vec![300.into(), (-200).into()],
                "add-e39f800594b49f8bee459e3a0444a0ae",
            ),
        ];
        for (func, args, want) in calls {
            assert_eq!(pure_key(func, &encode_client_args(&args).unwrap()), want);
        }
        let vectors = include_str!("../../tests/vectors/pure-keys.txt");
        let mut n = 0;
        for line in vectors
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let args: Vec<u8> = (0..f[1].len() / 2)
                .map(|i| u8::from_str_radix(&f[1][2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert_eq!(pure_key(f[0], &args), f[2], "{line}");
            n += 1;
        }
        assert_eq!(n, 5);
        assert_ne!(hash128(&[b"ab", b"c"]), hash128(&[b"a", b"bc"]));
        assert_ne!(
            hash128(&[b"inc", b"\x91\x01"]),
            hash128(&[b"inc", b"\x91\x02"])
        );
        assert_ne!(hash128(&[b""]), hash128(&[b"\0"]));
        let k = pure_key("inc", &encode_client_args(&[1.into()]).unwrap());
        assert!(k.starts_with("inc-") && k.len() == 4 + 32, "{k}");
        assert_eq!(hashed_key("f", 0xabc), format!("f-{:032x}", 0xabc));
        assert_eq!(hashed_key("f", u128::MAX), format!("f-{:032x}", u128::MAX));
        assert_ne!(unique_key("f", 1, 1), unique_key("f", 1, 1));
    }

    #[test]
    fn arguments_follow_the_grammar() {
        let args = vec![
            ClientArg::from(1),
            ClientArg::from("s"),
            ClientArg::Value(Value::Array(vec![Value::Int(1)])),
            ClientArg::List(vec![2.into(), 3.into()]),
            ClientArg::Map(vec![(Value::from("n"), 4.into())]),
        ];
        let bytes = encode_client_args(&args).unwrap();
        let decoded = crate::graph::doc::decode_args(&bytes).unwrap();
        use crate::graph::doc::KeyArg;
        assert_eq!(
            decoded,
            vec![
                KeyArg::Value(Value::Int(1)),
                KeyArg::Value(Value::from("s")),
                KeyArg::Value(Value::Array(vec![Value::Int(1)])),
                KeyArg::List(vec![
                    KeyArg::Value(Value::Int(2)),
                    KeyArg::Value(Value::Int(3))
                ]),
                KeyArg::Map(vec![(Value::from("n"), KeyArg::Value(Value::Int(4)))]),
            ]
        );
    }

    #[test]
    fn graph_documents_are_culled_and_wanted_literals_become_tasks() {
        let mut g = Graph::new();
        g.add_value("a", 1).unwrap();
        g.add_value("unused", 5).unwrap();
        let a = g.r("a").unwrap();
        g.add_task("b", "inc", vec![a]).unwrap();
        g.add_task("c", "inc", vec![7.into()]).unwrap();
        let outs = g.output_ids(&["b", "a"]).unwrap();
        let doc = graph_document(&g, &outs).unwrap();
        let (back, _) = Graph::from_msgpack(&doc).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.lookup("c").is_none() && back.lookup("unused").is_none());
        match back.node(back.lookup("a").unwrap()).unwrap() {
            Node::Task(t) => assert_eq!(back.func_name(t.func), "identity"),
            other => panic!("{other:?}"),
        }
        let outs = g.output_ids(&["b"]).unwrap();
        let (back, _) = Graph::from_msgpack(&graph_document(&g, &outs).unwrap()).unwrap();
        assert!(matches!(
            back.node(back.lookup("a").unwrap()),
            Some(Node::Value(Value::Int(1)))
        ));
        let mut bad = Graph::new();
        let q = bad.r("q").unwrap();
        bad.add_task("b", "inc", vec![q]).unwrap();
        let outs = bad.output_ids(&["b"]).unwrap();
        assert!(matches!(
            graph_document(&bad, &outs),
            Err(ClientError::BadArgument(m)) if m.contains("'q'")
        ));
    }
}
