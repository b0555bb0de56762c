//! Task graphs: named keys bound to literal values or to tasks.
//!
//! A [`Graph`] maps string keys to [`Node`]s. A task names a function and its
//! positional [`Arg`]s; an argument is a literal, a reference to another key,
//! or a nested list or map of arguments (so `sum([a, b, c])` is one task with
//! three dependencies). Keys and function names are interned: inside the graph
//! every key is a dense [`KeyId`] and every function name a [`FuncId`], so the
//! engine never clones strings per task.
//!
//! Keys may be referenced before they are defined; whether every reference
//! resolves, and whether the graph is acyclic, is checked by [`Graph::validate`]
//! and by [`Graph::plan`], which also culls the graph to the requested outputs
//! and orders it (see [`order`]).

pub mod doc;
mod dot;
pub mod order;
mod plan;

pub use plan::{Plan, LITERAL, UNUSED};

use crate::value::Value;
use indexmap::IndexSet;
use rustc_hash::FxBuildHasher;
use std::fmt;

/// Dense id of a key within one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

/// Dense id of a function name within one [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

/// One positional argument of a task.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A literal value, passed as it is.
    Value(Value),
    /// The value of another key.
    Ref(KeyId),
    /// A list of arguments, passed as an array value.
    List(Vec<Arg>),
    /// A map with literal keys and argument values, passed as a map value.
    Map(Vec<(Value, Arg)>),
}

impl Arg {
    /// Calls `f` for every key this argument references, in order.
    pub fn for_each_ref(&self, f: &mut impl FnMut(KeyId)) {
        match self {
            Arg::Value(_) => {}
            Arg::Ref(k) => f(*k),
            Arg::List(items) => items.iter().for_each(|a| a.for_each_ref(f)),
            Arg::Map(items) => items.iter().for_each(|(_, a)| a.for_each_ref(f)),
        }
    }
}

impl<T: Into<Value>> From<T> for Arg {
    fn from(v: T) -> Self {
        Arg::Value(v.into())
    }
}

/// A task: a named function applied to arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    pub func: FuncId,
    pub args: Vec<Arg>,
}

/// What a key is bound to.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Value(Value),
    Task(TaskSpec),
}

/// Errors found while building, decoding, validating or planning a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    EmptyKey,
    EmptyFunctionName {
        key: String,
    },
    DuplicateKey(String),
    /// `referenced_by` refers to `key`, which is not in the graph.
    MissingKey {
        key: String,
        referenced_by: String,
    },
    /// A requested output key is not in the graph.
    UnknownOutput(String),
    /// The keys on one cycle, in dependency order; the first key depends on
    /// the second, ..., the last on the first.
    Cycle(Vec<String>),
    InvalidUtf8 {
        what: String,
    },
    /// The msgpack graph document is malformed.
    Document(String),
    TooLarge,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::EmptyKey => write!(f, "a key must not be empty"),
            GraphError::EmptyFunctionName { key } => {
                write!(f, "task '{key}' has an empty function name")
            }
            GraphError::DuplicateKey(k) => write!(f, "key '{k}' is defined twice"),
            GraphError::MissingKey { key, referenced_by } => write!(
                f,
                "key '{referenced_by}' depends on '{key}', which is not in the graph"
            ),
            GraphError::UnknownOutput(k) => {
                write!(f, "requested key '{k}' is not in the graph")
            }
            GraphError::Cycle(keys) => {
                write!(f, "the graph has a cycle: ")?;
                for k in keys {
                    write!(f, "'{k}' -> ")?;
                }
                write!(f, "'{}'", keys.first().map(String::as_str).unwrap_or(""))
            }
            GraphError::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            GraphError::Document(m) => write!(f, "invalid graph document: {m}"),
            GraphError::TooLarge => write!(f, "the graph has more than 2^32-2 keys"),
        }
    }
}
impl std::error::Error for GraphError {}

type Interner = IndexSet<Box<str>, FxBuildHasher>;

/// A task graph under construction. See the module docs.
#[derive(Clone, Default)]
pub struct Graph {
    keys: Interner,
    /// Indexed by `KeyId`; `None` for keys referenced but not (yet) defined.
    nodes: Vec<Option<Node>>,
    funcs: Interner,
    defined: usize,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(n) = n {
                m.entry(&self.keys[i], n);
            }
        }
        m.finish()
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Number of keys defined (literals and tasks).
    pub fn len(&self) -> usize {
        self.defined
    }

    pub fn is_empty(&self) -> bool {
        self.defined == 0
    }

    /// The id of `name`, interning it if it is new. A key obtained this way
    /// but never defined is reported as missing by validation.
    pub fn key_id(&mut self, name: &str) -> Result<KeyId, GraphError> {
        if name.is_empty() {
            return Err(GraphError::EmptyKey);
        }
        if let Some(i) = self.keys.get_index_of(name) {
            return Ok(KeyId(i as u32));
        }
        if self.keys.len() >= u32::MAX as usize - 1 {
            return Err(GraphError::TooLarge);
        }
        self.keys.insert(name.into());
        self.nodes.push(None);
        Ok(KeyId(self.keys.len() as u32 - 1))
    }

    /// A reference argument to `name` (interning the key).
    pub fn r(&mut self, name: &str) -> Result<Arg, GraphError> {
        self.key_id(name).map(Arg::Ref)
    }

    /// The id of an existing key, without interning.
    pub fn lookup(&self, name: &str) -> Option<KeyId> {
        self.keys.get_index_of(name).map(|i| KeyId(i as u32))
    }

    /// The name of a key.
    pub fn key_name(&self, k: KeyId) -> &str {
        &self.keys[k.0 as usize]
    }

    /// Number of interned keys (defined or only referenced); ids are below it.
    pub fn key_capacity(&self) -> usize {
        self.keys.len()
    }

    /// The name of a function.
    pub fn func_name(&self, f: FuncId) -> &str {
        &self.funcs[f.0 as usize]
    }

    /// All function names used by the graph, indexed by `FuncId`.
    pub fn func_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.funcs.iter().map(|s| &**s)
    }

    /// What `k` is bound to, if it is defined.
    pub fn node(&self, k: KeyId) -> Option<&Node> {
        self.nodes.get(k.0 as usize)?.as_ref()
    }

    fn define(&mut self, key: &str, node: Node) -> Result<KeyId, GraphError> {
        let id = self.key_id(key)?;
        let slot = &mut self.nodes[id.0 as usize];
        if slot.is_some() {
            return Err(GraphError::DuplicateKey(key.to_owned()));
        }
        *slot = Some(node);
        self.defined += 1;
        Ok(id)
    }

    /// Binds `key` to a literal value.
    pub fn add_value(&mut self, key: &str, value: impl Into<Value>) -> Result<KeyId, GraphError> {
        self.define(key, Node::Value(value.into()))
    }

    /// Binds `key` to the task `func(args...)`.
    pub fn add_task(&mut self, key: &str, func: &str, args: Vec<Arg>) -> Result<KeyId, GraphError> {
        if func.is_empty() {
            return Err(GraphError::EmptyFunctionName {
                key: key.to_owned(),
            });
        }
        let func = match self.funcs.get_index_of(func) {
            Some(i) => FuncId(i as u32),
            None => {
                self.funcs.insert(func.into());
                FuncId(self.funcs.len() as u32 - 1)
            }
        };
        self.define(key, Node::Task(TaskSpec { func, args }))
    }

    /// Iterates over the defined keys and their nodes.
    pub fn iter(&self) -> impl Iterator<Item = (KeyId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (KeyId(i as u32), n)))
    }

    /// Checks the whole graph: every reference resolves and there is no
    /// cycle. [`Graph::plan`] checks the same for the part it keeps.
    pub fn validate(&self) -> Result<(), GraphError> {
        let all: Vec<KeyId> = self.iter().map(|(k, _)| k).collect();
        self.plan(&all).map(|_| ())
    }

    /// Culls the graph to what `outputs` need, validates that part, and
    /// orders it. See [`Plan`].
    pub fn plan(&self, outputs: &[KeyId]) -> Result<Plan, GraphError> {
        Plan::new(self, outputs)
    }

    /// Resolves output names to ids.
    pub fn output_ids<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<KeyId>, GraphError> {
        names
            .iter()
            .map(|n| {
                let n = n.as_ref();
                match self.lookup(n) {
                    Some(k) if self.node(k).is_some() => Ok(k),
                    _ => Err(GraphError::UnknownOutput(n.to_owned())),
                }
            })
            .collect()
    }

    /// Decodes the msgpack graph document described in `docs/graph-spec.md`.
    /// Returns the graph and the document's `outputs` (empty when absent).
    pub fn from_msgpack(data: &[u8]) -> Result<(Graph, Vec<String>), GraphError> {
        doc::decode(data)
    }
}

#[cfg(test)]
pub(crate) mod tests;
