//! The msgpack graph document (`docs/graph-spec.md`).
//!
//! ```text
//! document := { "tasks": { key: node, ... }, "outputs"?: [key, ...], "version"?: 1 }
//! node     := { "func": str, "args"?: [arg, ...] }     a task
//!           | { "value": any }                         a literal
//! arg      := nil | bool | int | float | str | bin | tensor    a literal
//!           | [arg, ...]                               a list of arguments
//!           | { "ref": key }                           the value of another key
//!           | { "value": any }                         a literal, not interpreted
//!           | { "map": { any: arg, ... } }             a map of arguments
//! ```

use super::{Arg, Graph, GraphError};
use crate::value::Value;

fn doc_err(m: impl Into<String>) -> GraphError {
    GraphError::Document(m.into())
}

pub(super) fn decode(data: &[u8]) -> Result<(Graph, Vec<String>), GraphError> {
    let v = crate::value::decode(data).map_err(|e| doc_err(e.to_string()))?;
    let Value::Map(top) = v else {
        return Err(doc_err(format!(
            "the document must be a map, got {}",
            v.kind_name()
        )));
    };
    let mut tasks = None;
    let mut outputs = Vec::new();
    for (k, v) in top {
        match k.as_str() {
            Some("tasks") => match v {
                Value::Map(m) => tasks = Some(m),
                other => {
                    return Err(doc_err(format!(
                        "'tasks' must be a map, got {}",
                        other.kind_name()
                    )))
                }
            },
            Some("outputs") => {
                let Value::Array(a) = v else {
                    return Err(doc_err("'outputs' must be an array of keys"));
                };
                for o in a {
                    match o {
                        Value::Str(s) => outputs.push(s),
                        other => {
                            return Err(doc_err(format!(
                                "'outputs' must hold strings, found {}",
                                other.kind_name()
                            )))
                        }
                    }
                }
            }
            Some("version") if v.as_i64() != Some(1) => {
                return Err(doc_err(format!(
                    "unsupported graph document version {v:?} (this build reads version 1)"
                )));
            }
            // Unknown fields are ignored, so documents can grow.
            _ => {}
        }
    }
    let tasks = tasks.ok_or_else(|| doc_err("the document has no 'tasks' map"))?;
    let mut g = Graph::new();
    for (k, node) in tasks {
        let Value::Str(key) = k else {
            return Err(doc_err(format!(
                "keys must be strings, found {}",
                k.kind_name()
            )));
        };
        let ctx = |m: String| doc_err(format!("key '{key}': {m}"));
        let Value::Map(fields) = node else {
            return Err(ctx(format!(
                "a node must be a map with 'func' or 'value', got {}",
                node.kind_name()
            )));
        };
        let mut func = None;
        let mut args = None;
        let mut value = None;
        for (f, v) in fields {
            match f.as_str() {
                Some("func") => match v {
                    Value::Str(s) => func = Some(s),
                    other => {
                        return Err(ctx(format!(
                            "'func' must be a string, got {}",
                            other.kind_name()
                        )))
                    }
                },
                Some("args") => match v {
                    Value::Array(a) => args = Some(a),
                    other => {
                        return Err(ctx(format!(
                            "'args' must be an array, got {}",
                            other.kind_name()
                        )))
                    }
                },
                Some("value") => value = Some(v),
                _ => {}
            }
        }
        match (func, value) {
            (Some(func), None) => {
                let args = args
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| arg(&mut g, a, 0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| match e {
                        GraphError::Document(m) => ctx(m),
                        e => e,
                    })?;
                g.add_task(&key, &func, args)?;
            }
            (None, Some(v)) => {
                g.add_value(&key, v)?;
            }
            (Some(_), Some(_)) => return Err(ctx("a node has both 'func' and 'value'".into())),
            (None, None) => return Err(ctx("a node needs 'func' or 'value'".into())),
        }
    }
    Ok((g, outputs))
}

fn arg(g: &mut Graph, v: Value, depth: usize) -> Result<Arg, GraphError> {
    if depth > crate::value::codec::MAX_DEPTH {
        return Err(doc_err("arguments nested too deeply"));
    }
    Ok(match v {
        Value::Array(items) => Arg::List(
            items
                .into_iter()
                .map(|a| arg(g, a, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(mut m) => {
            if m.len() != 1 {
                return Err(doc_err(format!(
                    "a map argument must have exactly one of 'ref', 'value' or 'map', found {} entries",
                    m.len()
                )));
            }
            let (tag, inner) = m.pop().unwrap();
            match (tag.as_str(), inner) {
                (Some("ref"), Value::Str(k)) => g.r(&k)?,
                (Some("ref"), other) => {
                    return Err(doc_err(format!(
                        "'ref' must name a key (a string), got {}",
                        other.kind_name()
                    )))
                }
                (Some("value"), v) => Arg::Value(v),
                (Some("map"), Value::Map(entries)) => Arg::Map(
                    entries
                        .into_iter()
                        .map(|(k, a)| Ok((k, arg(g, a, depth + 1)?)))
                        .collect::<Result<_, GraphError>>()?,
                ),
                (Some("map"), other) => {
                    return Err(doc_err(format!(
                        "'map' must hold a map, got {}",
                        other.kind_name()
                    )))
                }
                _ => {
                    return Err(doc_err(format!(
                        "unknown argument tag {tag:?} (expected 'ref', 'value' or 'map')"
                    )))
                }
            }
        }
        scalar => Arg::Value(scalar),
    })
}

/// A task argument with key references by name: what a worker gets in a
/// `compute-task` message (see [`encode_args`]).
#[derive(Clone, Debug, PartialEq)]
pub enum KeyArg {
    Value(Value),
    Ref(String),
    List(Vec<KeyArg>),
    Map(Vec<(Value, KeyArg)>),
}

impl KeyArg {
    /// Calls `f` with every key referenced, in order.
    pub fn for_each_ref<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            KeyArg::Value(_) => {}
            KeyArg::Ref(k) => f(k),
            KeyArg::List(items) => items.iter().for_each(|a| a.for_each_ref(f)),
            KeyArg::Map(items) => items.iter().for_each(|(_, a)| a.for_each_ref(f)),
        }
    }

    /// The argument's value, looking references up with `lookup`; the
    /// error names a key `lookup` did not have.
    pub fn resolve(&self, lookup: &impl Fn(&str) -> Option<Value>) -> Result<Value, String> {
        Ok(match self {
            KeyArg::Value(v) => v.clone(),
            KeyArg::Ref(k) => lookup(k).ok_or_else(|| k.clone())?,
            KeyArg::List(items) => Value::Array(
                items
                    .iter()
                    .map(|a| a.resolve(lookup))
                    .collect::<Result<_, _>>()?,
            ),
            KeyArg::Map(items) => Value::Map(
                items
                    .iter()
                    .map(|(k, a)| Ok((k.clone(), a.resolve(lookup)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

fn arg_to_value(g: &Graph, a: &Arg) -> Value {
    let tagged = |tag: &str, v: Value| Value::Map(vec![(Value::from(tag), v)]);
    match a {
        Arg::Ref(k) => tagged("ref", Value::from(g.key_name(*k))),
        Arg::List(items) => Value::Array(items.iter().map(|a| arg_to_value(g, a)).collect()),
        Arg::Map(items) => tagged(
            "map",
            Value::Map(
                items
                    .iter()
                    .map(|(k, a)| (k.clone(), arg_to_value(g, a)))
                    .collect(),
            ),
        ),
        // Arrays and maps must be quoted so they are not read as args.
        Arg::Value(v @ (Value::Array(_) | Value::Map(_))) => tagged("value", v.clone()),
        Arg::Value(v) => v.clone(),
    }
}

/// Encodes a task's arguments as a msgpack array in the document grammar.
pub fn encode_args(g: &Graph, args: &[Arg]) -> Result<Vec<u8>, crate::value::EncodeError> {
    crate::value::encode(&Value::Array(
        args.iter().map(|a| arg_to_value(g, a)).collect(),
    ))
}

/// Decodes what [`encode_args`] (or any client following the grammar)
/// produced.
pub fn decode_args(bytes: &[u8]) -> Result<Vec<KeyArg>, GraphError> {
    let v = crate::value::decode(bytes).map_err(|e| doc_err(e.to_string()))?;
    let Value::Array(items) = v else {
        return Err(doc_err("task arguments must be an array"));
    };
    let mut g = Graph::new();
    let args = items
        .into_iter()
        .map(|a| arg(&mut g, a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    fn named(g: &Graph, a: Arg) -> KeyArg {
        match a {
            Arg::Value(v) => KeyArg::Value(v),
            Arg::Ref(k) => KeyArg::Ref(g.key_name(k).to_owned()),
            Arg::List(items) => KeyArg::List(items.into_iter().map(|a| named(g, a)).collect()),
            Arg::Map(items) => {
                KeyArg::Map(items.into_iter().map(|(k, a)| (k, named(g, a))).collect())
            }
        }
    }
    Ok(args.into_iter().map(|a| named(&g, a)).collect())
}

/// Writes the document for `keys` of `g` (each must be defined) with
/// `outputs`, streaming into one buffer: literals as `{"value": v}`, tasks
/// as `{"func": name, "args": [...]}` with arguments in the form
/// [`encode_args`] produces. The encoding is canonical (the smallest msgpack
/// form everywhere, fields in the order of docs/graph-spec.md).
pub(crate) fn write_document<S: AsRef<str>>(
    g: &Graph,
    keys: impl ExactSizeIterator<Item = super::KeyId>,
    outputs: &[S],
    out: &mut Vec<u8>,
) -> Result<(), crate::value::EncodeError> {
    use super::Node;
    use rmp::encode as e;
    // Writing into a Vec cannot fail.
    e::write_map_len(out, if outputs.is_empty() { 1 } else { 2 }).unwrap();
    e::write_str(out, "tasks").unwrap();
    e::write_map_len(out, keys.len() as u32).unwrap();
    for k in keys {
        e::write_str(out, g.key_name(k)).unwrap();
        match g.node(k).expect("write_document: every key is defined") {
            Node::Value(v) => {
                e::write_map_len(out, 1).unwrap();
                e::write_str(out, "value").unwrap();
                crate::value::encode_into(v, out)?;
            }
            Node::Task(t) => {
                e::write_map_len(out, 2).unwrap();
                e::write_str(out, "func").unwrap();
                e::write_str(out, g.func_name(t.func)).unwrap();
                e::write_str(out, "args").unwrap();
                e::write_array_len(out, t.args.len() as u32).unwrap();
                for a in &t.args {
                    crate::value::encode_into(&arg_to_value(g, a), out)?;
                }
            }
        }
    }
    if !outputs.is_empty() {
        e::write_str(out, "outputs").unwrap();
        e::write_array_len(out, outputs.len() as u32).unwrap();
        for o in outputs {
            e::write_str(out, o.as_ref()).unwrap();
        }
    }
    Ok(())
}

impl Graph {
    /// Encodes the whole graph as the msgpack document of
    /// `docs/graph-spec.md`, with `outputs` (left out when empty). Keys are
    /// written in the order they were first named; [`Graph::from_msgpack`]
    /// reads the result back to an equal graph. A literal over the value
    /// size limit ([`crate::value::MAX_ENCODED`]) is refused.
    pub fn to_msgpack<S: AsRef<str>>(
        &self,
        outputs: &[S],
    ) -> Result<Vec<u8>, crate::value::EncodeError> {
        let keys: Vec<super::KeyId> = self.iter().map(|(k, _)| k).collect();
        let mut out = Vec::with_capacity(16 + 32 * keys.len());
        write_document(self, keys.into_iter(), outputs, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    const CLASSIC: &str = "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a17a";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn the_classic_graph_encodes_to_the_documented_bytes() {
        let mut g = Graph::new();
        g.add_value("a", 1).unwrap();
        g.add_value("x", 10).unwrap();
        let a = g.r("a").unwrap();
        g.add_task("b", "inc", vec![a]).unwrap();
        let x = g.r("x").unwrap();
        g.add_task("y", "inc", vec![x]).unwrap();
        let (b, y) = (g.r("b").unwrap(), g.r("y").unwrap());
        g.add_task("z", "add", vec![b, y]).unwrap();
        assert_eq!(hex(&g.to_msgpack(&["z"]).unwrap()), CLASSIC);
    }

    #[test]
    fn every_argument_shape_roundtrips() {
        let mut g = Graph::new();
        g.add_value("w", Value::Array(vec![Value::Int(1), Value::from("s")]))
            .unwrap();
        let w = g.r("w").unwrap();
        let quoted = Arg::Value(Value::Map(vec![(Value::from("ref"), Value::from("w"))]));
        let map = Arg::Map(vec![
            (Value::from("weight"), w.clone()),
            (Value::Int(3), 4.into()),
        ]);
        g.add_task(
            "t",
            "f",
            vec![Arg::List(vec![w, 5.into()]), quoted, map, "str".into()],
        )
        .unwrap();
        g.add_task("n", "noop", vec![]).unwrap();
        let bytes = g.to_msgpack::<&str>(&[]).unwrap();
        let (back, outputs) = Graph::from_msgpack(&bytes).unwrap();
        assert!(outputs.is_empty());
        assert_eq!(back.len(), g.len());
        for (k, n) in g.iter() {
            let name = g.key_name(k);
            let bk = back.lookup(name).unwrap();
            // Re-encode each task's args to compare across graphs' ids.
            match (n, back.node(bk).unwrap()) {
                (crate::graph::Node::Value(a), crate::graph::Node::Value(b)) => assert_eq!(a, b),
                (crate::graph::Node::Task(a), crate::graph::Node::Task(b)) => {
                    assert_eq!(g.func_name(a.func), back.func_name(b.func));
                    assert_eq!(
                        encode_args(&g, &a.args).unwrap(),
                        encode_args(&back, &b.args).unwrap()
                    );
                }
                _ => panic!("node kind changed for {name}"),
            }
        }
        assert_eq!(back.to_msgpack::<&str>(&[]).unwrap(), bytes);
    }
}
