//! Named functions.
//!
//! Tasks name their function (`"inc"`, `"add"`, `"my_c_func"`); a [`Registry`]
//! says what each name means where the task runs. Three kinds exist:
//!
//! - **Builtins** ([`builtins`]), implemented in Rust and available in every
//!   registry and on every worker. Their names cannot be registered again.
//! - **Native** functions: a Rust closure, or a C callback wrapped in one by
//!   the C ABI. They run on the executor's threads and may be called from
//!   several threads at once.
//! - **Pulled** functions: only the name is registered. When such a task is
//!   ready the executor hands it to the host, which runs it on a thread of its
//!   own choosing and hands the result back (the pull mode that Python and
//!   Julia use; see [`crate::local::Computation::next_task`]).

pub mod builtins;

use crate::value::Value;
use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::Arc;

/// Function names that begin with this are *shipped functions*:
/// `code:<runtime>` (`code:python-3.11`, `code:julia-1.5`) runs the function
/// serialized in the task's first argument with that language runtime (see
/// "Shipped functions" in docs/protocol.md). A worker offers the name when
/// its host runs such code; the scheduler errs a ready task of a runtime no
/// connected worker offers instead of letting it wait.
pub const SHIPPED_PREFIX: &str = "code:";

/// The runtime of a shipped function's name (`"python-3.11"` for
/// `"code:python-3.11"`), or `None` for a named function.
pub fn shipped_runtime(name: &str) -> Option<&str> {
    name.strip_prefix(SHIPPED_PREFIX).filter(|r| !r.is_empty())
}

/// What a function returns: a value, or an error message.
pub type FnResult = Result<Value, String>;

/// How a host function failed when its host has exceptions: the message
/// (as in [`FnResult`]), the exception's type name and the traceback where
/// it was raised (each empty when the host has none). A worker sends all
/// three in `task-erred`, so a client in another process can show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub exception: String,
    pub traceback: String,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            message,
            ..Failure::default()
        }
    }
}

/// A function implemented in Rust (or wrapping a C callback).
pub type NativeFn = Arc<dyn Fn(&[Value]) -> FnResult + Send + Sync>;

/// A builtin's implementation.
pub type BuiltinFn = fn(&[Value]) -> FnResult;

/// What a name resolves to.
#[derive(Clone)]
pub enum Function {
    Builtin(BuiltinFn),
    Native(NativeFn),
    Pulled,
}

impl Function {
    pub fn is_pulled(&self) -> bool {
        matches!(self, Function::Pulled)
    }

    /// Calls a builtin or native function. Pulled functions cannot be
    /// called from Rust; this returns an error for them. Host values among
    /// the arguments are converted to plain data first (see
    /// [`crate::value::host::plain_args`]).
    pub fn call(&self, args: &[Value]) -> FnResult {
        let args = &*crate::value::host::plain_args(args)?;
        match self {
            Function::Builtin(f) => f(args),
            Function::Native(f) => f(args),
            Function::Pulled => Err("a pulled function runs on the host, not in Rust".into()),
        }
    }
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Function::Builtin(_) => "builtin",
            Function::Native(_) => "native",
            Function::Pulled => "pulled",
        })
    }
}

/// Why a function could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    EmptyName,
    /// The name is a builtin's.
    Builtin(String),
    /// The name is already registered in this registry.
    Duplicate(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::EmptyName => write!(f, "a function name must not be empty"),
            RegistryError::Builtin(n) => {
                write!(
                    f,
                    "'{n}' is a builtin function and cannot be registered again"
                )
            }
            RegistryError::Duplicate(n) => write!(f, "function '{n}' is already registered"),
        }
    }
}
impl std::error::Error for RegistryError {}

/// A set of named functions on top of the builtins.
#[derive(Clone, Default)]
pub struct Registry {
    funcs: FxHashMap<Box<str>, Function>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.funcs.iter()).finish()
    }
}

impl Registry {
    /// A registry with only the builtins.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn insert(&mut self, name: &str, f: Function) -> Result<(), RegistryError> {
        if name.is_empty() {
            return Err(RegistryError::EmptyName);
        }
        if builtins::lookup(name).is_some() {
            return Err(RegistryError::Builtin(name.to_owned()));
        }
        if self.funcs.contains_key(name) {
            return Err(RegistryError::Duplicate(name.to_owned()));
        }
        self.funcs.insert(name.into(), f);
        Ok(())
    }

    /// Registers a Rust function (it may run on several threads at once).
    pub fn register(
        &mut self,
        name: &str,
        f: impl Fn(&[Value]) -> FnResult + Send + Sync + 'static,
    ) -> Result<(), RegistryError> {
        self.insert(name, Function::Native(Arc::new(f)))
    }

    /// Registers an already shared native function.
    pub fn register_native(&mut self, name: &str, f: NativeFn) -> Result<(), RegistryError> {
        self.insert(name, Function::Native(f))
    }

    /// Registers `name` as pulled: its tasks are handed to the host.
    pub fn register_pulled(&mut self, name: &str) -> Result<(), RegistryError> {
        self.insert(name, Function::Pulled)
    }

    /// What `name` means here: a registered function, else a builtin.
    pub fn resolve(&self, name: &str) -> Option<Function> {
        if let Some(f) = self.funcs.get(name) {
            return Some(f.clone());
        }
        builtins::lookup(name).map(Function::Builtin)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.funcs.contains_key(name) || builtins::lookup(name).is_some()
    }

    /// Every name this registry can run: its own and the builtins, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .funcs
            .keys()
            .map(|k| k.to_string())
            .chain(builtins::NAMES.iter().map(|s| s.to_string()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        let mut r = Registry::new();
        r.register("double", |a| Ok(Value::Int(a[0].as_i64().unwrap() * 2)))
            .unwrap();
        assert_eq!(
            r.register("double", |_| Ok(Value::Nil)),
            Err(RegistryError::Duplicate("double".into()))
        );
        assert_eq!(
            r.register_pulled("inc"),
            Err(RegistryError::Builtin("inc".into()))
        );
        assert_eq!(r.register_pulled(""), Err(RegistryError::EmptyName));
        r.register_pulled("jl").unwrap();
        assert!(r.resolve("jl").unwrap().is_pulled());
        assert_eq!(
            r.resolve("double").unwrap().call(&[Value::Int(4)]),
            Ok(Value::Int(8))
        );
        assert_eq!(
            r.resolve("inc").unwrap().call(&[Value::Int(4)]),
            Ok(Value::Int(5))
        );
        assert!(r.resolve("nope").is_none());
        assert!(r.names().contains(&"jl".to_string()));
        assert!(r.names().contains(&"noop".to_string()));
    }
}
