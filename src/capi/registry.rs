//! `rask_registry`: named functions, including C callbacks.

use super::error::rask_error;
use super::value::{as_c, rask_value, take as take_value};
use super::{ffi_boundary, rask_status, req_mut, req_str, Error};
use crate::registry::{FnResult, Registry};
use crate::value::Value;
use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::Arc;

/// A set of named functions on top of the builtins (`inc`, `add`, `sum`, ...):
/// C callbacks and pulled functions. Made by `rask_registry_new`, freed with
/// `rask_registry_free`. A computation copies what it needs when it starts,
/// so a registry may be changed or freed while computations that used it
/// run. A registry must not be changed by two threads at once.
pub struct rask_registry {
    registry: Registry,
}

impl rask_registry {
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// A task function implemented in C.
///
/// rask calls it with the `user_data` given at registration and the task's
/// `nargs` arguments: `args[i]` is borrowed and valid only during the call
/// (clone it with `rask_value_clone` to keep it). `result` and `err` are
/// never NULL and point to NULL on entry. It may be called from several
/// threads at once.
///
/// On success it sets `*result` to a new value it owns (rask takes it over)
/// and returns `RASK_OK`. On failure it returns another status and may set
/// `*err` to a `rask_error_new(...)` describing the problem (rask frees it);
/// the task then fails with that message, or with a message naming the
/// status when no error was set. Returning `RASK_OK` without a result is a
/// task failure too. It must not unwind (throw a C++ exception or longjmp)
/// out of the call.
pub type rask_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        args: *const *const rask_value,
        nargs: usize,
        result: *mut *mut rask_value,
        err: *mut *mut rask_error,
    ) -> rask_status,
>;

/// Releases the `user_data` of a callback; called exactly once.
pub type rask_drop_user_data = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The same callback with its status read as a plain integer, so that a
/// number outside `rask_status` coming from C is an error rather than
/// undefined behaviour. A C enum is returned as a 32-bit integer on every
/// supported target (see the size assertion in `capi/mod.rs`).
type RawCallback = unsafe extern "C" fn(
    *mut c_void,
    *const *const rask_value,
    usize,
    *mut *mut rask_value,
    *mut *mut rask_error,
) -> u32;

/// Owns a C callback's `user_data`; dropping it calls `drop_user_data`.
struct CCallback {
    name: String,
    /// `None` only while `rask_registry_add_callback` checks its arguments.
    func: Option<RawCallback>,
    user_data: *mut c_void,
    drop_user_data: rask_drop_user_data,
}

// SAFETY: the C contract of `rask_registry_add_callback` says the callback
// and its user_data may be used from any thread and concurrently.
unsafe impl Send for CCallback {}
unsafe impl Sync for CCallback {}

impl Drop for CCallback {
    fn drop(&mut self) {
        if let Some(d) = self.drop_user_data {
            // SAFETY: called once, with the pointer the caller registered.
            unsafe { d(self.user_data) };
        }
    }
}

impl CCallback {
    fn call(&self, args: &[Value]) -> FnResult {
        let func = self.func.expect("set before registration");
        // The arguments as C sees them: pointers to the values rask holds.
        let mut small = [ptr::null::<rask_value>(); 8];
        let mut large = Vec::new();
        let ptrs: &[*const rask_value] = if args.len() <= small.len() {
            for (p, a) in small.iter_mut().zip(args) {
                *p = as_c(a);
            }
            &small[..args.len()]
        } else {
            large.extend(args.iter().map(as_c));
            &large
        };
        let mut result: *mut rask_value = ptr::null_mut();
        let mut err: *mut rask_error = ptr::null_mut();
        // SAFETY: the pointers are valid for the call; the callback's
        // contract is documented on `rask_callback`.
        let raw = unsafe {
            func(
                self.user_data,
                ptrs.as_ptr(),
                ptrs.len(),
                &mut result,
                &mut err,
            )
        };
        // SAFETY: whatever the callback put there is ours now.
        let (result, err) = unsafe { (take_value(result), rask_error::take(err)) };
        let status = rask_status::from_raw(raw.into());
        if status == Some(rask_status::RASK_OK) {
            return result.ok_or_else(|| {
                format!(
                    "the C callback '{}' returned RASK_OK but did not set *result",
                    self.name
                )
            });
        }
        Err(match (err, status) {
            (Some(e), _) => e.message().to_owned(),
            (None, Some(s)) => format!(
                "the C callback '{}' failed with {} and no message",
                self.name,
                s.name()
            ),
            (None, None) => format!(
                "the C callback '{}' returned {raw}, which is not a rask_status",
                self.name
            ),
        })
    }
}

/// A new registry holding only the builtins. The caller owns it and frees it
/// with `rask_registry_free`. Returns NULL only if rask panicked.
#[no_mangle]
pub extern "C" fn rask_registry_new() -> *mut rask_registry {
    ffi_boundary!(default = ptr::null_mut(), {
        Box::into_raw(Box::new(rask_registry {
            registry: Registry::new(),
        }))
    })
}

/// Frees a registry. NULL is ignored. Computations that use its functions
/// keep them; each callback's `drop_user_data` runs when the registry and
/// every computation using the callback are gone.
#[no_mangle]
pub unsafe extern "C" fn rask_registry_free(reg: *mut rask_registry) {
    ffi_boundary!(default = (), {
        if !reg.is_null() {
            drop(Box::from_raw(reg));
        }
    })
}

/// Registers the C function `callback` under `name` (NUL-terminated UTF-8,
/// copied): tasks whose `func` is `name` call `callback(user_data, args, ...)`
/// on rask's threads, possibly on several at once (see `rask_callback`).
///
/// `user_data` is handed over to rask: if `drop_user_data` is not NULL it
/// is called exactly once with `user_data` when the function is no longer
/// needed (the registry and every computation using it are gone) — also
/// when this call fails, before it returns. Fails with `RASK_ERR_REGISTRY`
/// if `name` is empty, a builtin's name or already registered.
#[no_mangle]
pub unsafe extern "C" fn rask_registry_add_callback(
    reg: *mut rask_registry,
    name: *const c_char,
    callback: rask_callback,
    user_data: *mut c_void,
    drop_user_data: rask_drop_user_data,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        // Own user_data first, so that every early return releases it.
        let mut owner = CCallback {
            name: String::new(),
            func: None,
            user_data,
            drop_user_data,
        };
        let reg = req_mut(reg, "reg")?;
        let name = req_str(name, "name")?;
        let func = callback.ok_or_else(|| Error::null("callback"))?;
        owner.name = name.to_owned();
        // SAFETY: the same arguments; the status, a 32-bit C enum, is read
        // as a u32 (see `RawCallback`).
        owner.func = Some(std::mem::transmute::<
            unsafe extern "C" fn(
                *mut c_void,
                *const *const rask_value,
                usize,
                *mut *mut rask_value,
                *mut *mut rask_error,
            ) -> rask_status,
            RawCallback,
        >(func));
        let owner = Arc::new(owner);
        reg.registry
            .register_native(name, Arc::new(move |args: &[Value]| owner.call(args)))?;
        Ok(rask_status::RASK_OK)
    })
}

/// Registers `name` (NUL-terminated UTF-8, copied) as a pulled function:
/// its tasks are not run by rask but handed to the host through
/// `rask_computation_next_task`. Fails with `RASK_ERR_REGISTRY` if `name`
/// is empty, a builtin's name or already registered.
#[no_mangle]
pub unsafe extern "C" fn rask_registry_add_pulled(
    reg: *mut rask_registry,
    name: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let reg = req_mut(reg, "reg")?;
        let name = req_str(name, "name")?;
        reg.registry.register_pulled(name)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Whether `name` can run with this registry: a registered function or a
/// builtin. `reg` may be NULL (builtins only). Returns false when `name` is
/// NULL or not UTF-8.
#[no_mangle]
pub unsafe extern "C" fn rask_registry_contains(
    reg: *const rask_registry,
    name: *const c_char,
) -> bool {
    ffi_boundary!(default = false, {
        if name.is_null() {
            return false;
        }
        let Ok(name) = CStr::from_ptr(name).to_str() else {
            return false;
        };
        match reg.as_ref() {
            Some(r) => r.registry.contains(name),
            None => crate::registry::builtins::lookup(name).is_some(),
        }
    })
}

/// `reg` as a `&Registry`, or the builtins when it is NULL.
pub(crate) unsafe fn registry_or_builtins(
    reg: *const rask_registry,
    builtins: &Registry,
) -> &Registry {
    match reg.as_ref() {
        Some(r) => &r.registry,
        None => builtins,
    }
}
