//! Plugins: shared libraries that give a worker C functions.
//!
//! A plugin exports one function,
//!
//! ```c
//! rask_status rask_plugin_init(rask_registry *registry, rask_error **err);
//! ```
//!
//! (`rask_plugin_init_fn` in `rask.h`), which registers its functions with
//! `rask_registry_add_callback` (or `rask_registry_add_pulled`) and returns
//! `RASK_OK`, or returns an error status and may set `*err` to a
//! `rask_error_new(...)` saying why (rask frees it). `rask-worker --plugin
//! libmyfuncs.so` loads it with [`load_plugin`].
//!
//! A loaded library is never unloaded: its callbacks live in the registry
//! and in whatever tasks hold them, for as long as the process runs.

use crate::capi::{rask_error, rask_registry, rask_registry_free, rask_registry_new};
use crate::registry::{builtins, Function, Registry};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The name of the entry point a plugin exports.
pub const PLUGIN_INIT: &str = "rask_plugin_init";

/// The entry point with its status read as a plain integer, so that a
/// number outside `rask_status` from C is an error rather than undefined
/// behaviour (a C enum is returned as a 32-bit integer).
type RawInit = unsafe extern "C" fn(*mut rask_registry, *mut *mut rask_error) -> u32;

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The library could not be opened (missing file, not a library,
    /// unresolved symbols).
    Open { path: PathBuf, message: String },
    /// The library has no `rask_plugin_init`.
    NoEntryPoint { path: PathBuf, message: String },
    /// `rask_plugin_init` returned an error.
    Init {
        path: PathBuf,
        status: String,
        message: String,
    },
    /// A function it registered clashes with one already registered.
    Conflict { path: PathBuf, message: String },
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::Open { path, message } => {
                write!(f, "cannot open plugin {}: {message}", path.display())
            }
            PluginError::NoEntryPoint { path, message } => write!(
                f,
                "{} is not a rask plugin: it does not export {PLUGIN_INIT} ({message})",
                path.display()
            ),
            PluginError::Init {
                path,
                status,
                message,
            } => write!(
                f,
                "plugin {}: {PLUGIN_INIT} failed with {status}: {message}",
                path.display()
            ),
            PluginError::Conflict { path, message } => {
                write!(f, "plugin {}: {message}", path.display())
            }
        }
    }
}
impl std::error::Error for PluginError {}

/// Loads the plugin at `path`, runs its `rask_plugin_init`, and adds the
/// functions it registered to `registry`. Returns their names, sorted.
pub fn load_plugin(path: &Path, registry: &mut Registry) -> Result<Vec<String>, PluginError> {
    let path_buf = path.to_path_buf();
    // SAFETY: loading a library runs its initializers; a plugin is code
    // the user chose to run in this process.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| PluginError::Open {
        path: path_buf.clone(),
        message: e.to_string(),
    })?;
    // SAFETY: the documented signature of the entry point (see RawInit).
    let init: RawInit = unsafe {
        *lib.get::<RawInit>(PLUGIN_INIT.as_bytes())
            .map_err(|e| PluginError::NoEntryPoint {
                path: path_buf.clone(),
                message: e.to_string(),
            })?
    };
    let reg = rask_registry_new();
    let mut err: *mut rask_error = std::ptr::null_mut();
    // SAFETY: `reg` is a live registry and `err` a valid out-pointer.
    let raw = catch_unwind(AssertUnwindSafe(|| unsafe { init(reg, &mut err) }));
    // SAFETY: whatever the plugin put in `err` is ours now.
    let err = unsafe { rask_error::take(err) };
    let result = match raw {
        Ok(0) => {
            // SAFETY: `reg` is live until freed below.
            let theirs = unsafe { &*reg }.registry();
            merge(theirs, registry).map_err(|message| PluginError::Conflict {
                path: path_buf.clone(),
                message,
            })
        }
        Ok(raw) => {
            let status = crate::capi::rask_status::from_raw(raw.into())
                .map(|s| s.name().to_owned())
                .unwrap_or_else(|| format!("status {raw} (not a rask_status)"));
            Err(PluginError::Init {
                path: path_buf.clone(),
                status,
                message: err
                    .map(|e| e.message().to_owned())
                    .unwrap_or_else(|| "no message".into()),
            })
        }
        Err(_) => Err(PluginError::Init {
            path: path_buf.clone(),
            status: "a panic".into(),
            message: "rask panicked inside the plugin's init".into(),
        }),
    };
    // SAFETY: made above, freed once; the functions merged into `registry`
    // hold their own references.
    unsafe { rask_registry_free(reg) };
    // Never unload: the callbacks may be called until the process exits.
    std::mem::forget(lib);
    if let Ok(names) = &result {
        tracing::info!(plugin = %path.display(), functions = ?names, "plugin loaded");
    }
    result
}

/// Adds every function of `from` (builtins aside) to `to`.
fn merge(from: &Registry, to: &mut Registry) -> Result<Vec<String>, String> {
    let mut added = Vec::new();
    for name in from.names() {
        if builtins::lookup(&name).is_some() {
            continue;
        }
        let r = match from.resolve(&name) {
            Some(Function::Native(f)) => to.register_native(&name, f),
            Some(Function::Pulled) => to.register_pulled(&name),
            _ => continue,
        };
        r.map_err(|e| e.to_string())?;
        added.push(name);
    }
    Ok(added)
}
