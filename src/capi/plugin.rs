//! Worker plugins: the entry point a shared library exports so that
//! `rask-worker --plugin libmyfuncs.so` can load its functions (see
//! `src/worker/plugin.rs`, which loads it).

use super::{rask_error, rask_registry, rask_status};

/// The entry point of a worker plugin. A plugin is a shared library that
/// exports a function of this type named `rask_plugin_init`:
///
/// ```c
/// rask_status rask_plugin_init(rask_registry *registry, rask_error **err) {
///     return rask_registry_add_callback(registry, "square", square, NULL, NULL, err);
/// }
/// ```
///
/// `rask-worker --plugin path/to/libmyfuncs.so` (the option may be repeated)
/// opens the library, calls `rask_plugin_init` once with a registry that the
/// plugin fills with `rask_registry_add_callback` or
/// `rask_registry_add_pulled`, and offers those functions to the scheduler
/// beside the builtins. `registry` is borrowed for the call: do not keep it
/// or free it. On success return `RASK_OK`. On failure return an error
/// status and, if `err` is not NULL, set `*err` to a `rask_error_new(...)`
/// saying why (rask frees it); the worker then refuses to start and prints
/// the message.
///
/// The plugin calls the C API of the process that loads it: build it with
/// `-shared -fPIC` and the rask headers, without linking librask (the
/// `rask-worker` executable exports the `rask_*` functions). The library is
/// never unloaded, so callbacks and their `user_data` stay valid for the
/// life of the worker.
pub type rask_plugin_init_fn = Option<
    unsafe extern "C" fn(registry: *mut rask_registry, err: *mut *mut rask_error) -> rask_status,
>;
