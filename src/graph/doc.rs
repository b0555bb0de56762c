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
pub fn encode_args(g: &Graph, args: &[Arg]) -> Vec<u8> {
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
