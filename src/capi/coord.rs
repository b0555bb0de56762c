//! Coordination objects held by the scheduler, through a client:
//! variables, queues, locks and semaphores (leases), events, published
//! datasets, fire-and-forget and topics (`rask_subscription`). See
//! docs/c-api.md, "Coordination", and docs/protocol.md.
//!
//! An *item* (what a variable, a queue or a dataset holds) is passed as two
//! arguments, `value` and `future`, exactly one of them not NULL; both are
//! borrowed (the value is copied, the future's key is kept alive by the
//! scheduler while the object holds it). An item received comes back the
//! same way: exactly one of `*out_value` and `*out_future` is set, to a
//! handle the caller owns (`rask_value_free`, `rask_future_free`).

use super::client::{client_error, rask_client};
use super::future::{futures_of, rask_future};
use super::value::{into_c, val};
use super::{
    ffi_boundary, rask_error, rask_status, rask_value, req, req_mut, req_str, timeout, Error,
};
use crate::client::{ClientError, Item, Subscription};
use std::ffi::c_char;
use std::ptr;

/// A client error of a coordination call: a wait that ran out of the
/// caller's time is `RASK_TIMEOUT` with a message naming the object and the
/// timeout.
fn coord_error(e: ClientError) -> Error {
    match e {
        ClientError::Timeout(m) => Error::new(rask_status::RASK_TIMEOUT, m),
        e => client_error(e),
    }
}

unsafe fn open_client<'a>(client: *const rask_client) -> Result<&'a rask_client, Error> {
    let c = req(client, "client")?;
    c.life.check("this call")?;
    Ok(c)
}

unsafe fn item_in(value: *const rask_value, future: *const rask_future) -> Result<Item, Error> {
    match (value.is_null(), future.is_null()) {
        (false, true) => Ok(Item::Value(val(value, "value")?.clone())),
        (true, false) => Ok(Item::Future((*future).future.clone())),
        (true, true) => Err(Error::call(
            rask_status::RASK_ERR_NULL_ARG,
            "arguments 'value' and 'future' are both NULL: pass exactly one",
        )),
        (false, false) => Err(Error::invalid(
            "arguments 'value' and 'future' are both set: pass exactly one",
        )),
    }
}

/// Checks both outputs and sets them to NULL.
unsafe fn outs_clear(
    out_value: *mut *mut rask_value,
    out_future: *mut *mut rask_future,
) -> Result<(), Error> {
    *req_mut(out_value, "out_value")? = ptr::null_mut();
    *req_mut(out_future, "out_future")? = ptr::null_mut();
    Ok(())
}

unsafe fn item_out(
    c: &rask_client,
    item: Item,
    out_value: *mut *mut rask_value,
    out_future: *mut *mut rask_future,
) {
    match item {
        Item::Value(v) => *out_value = into_c(v),
        Item::Future(f) => *out_future = rask_future::boxed(f, &c.life),
    }
}

/// Sets the variable `name` (NUL-terminated UTF-8, not empty, borrowed) to
/// an item: exactly one of `value` and `future` (both borrowed; see the
/// module docs). Waiting `rask_client_variable_get`s get it.
#[no_mangle]
pub unsafe extern "C" fn rask_client_variable_set(
    client: *const rask_client,
    name: *const c_char,
    value: *const rask_value,
    future: *const rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        let item = item_in(value, future)?;
        c.life.check("this call")?;
        c.client.variable_set(name, &item).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// The item of the variable `name` (borrowed), waiting up to `timeout_ms`
/// milliseconds (negative: forever; 0: just look) for one to be set.
/// Exactly one of `*out_value` and `*out_future` is set to a handle the
/// caller owns; both are set to NULL first. Returns `RASK_TIMEOUT` with an
/// error naming the variable and the timeout when none was set in time.
#[no_mangle]
pub unsafe extern "C" fn rask_client_variable_get(
    client: *const rask_client,
    name: *const c_char,
    timeout_ms: i64,
    out_value: *mut *mut rask_value,
    out_future: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        outs_clear(out_value, out_future)?;
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        let item = c
            .client
            .variable_get(name, timeout(timeout_ms))
            .map_err(coord_error)?;
        item_out(c, item, out_value, out_future);
        Ok(rask_status::RASK_OK)
    })
}

/// Deletes the variable `name` (borrowed): its item is dropped.
#[no_mangle]
pub unsafe extern "C" fn rask_client_variable_delete(
    client: *const rask_client,
    name: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        c.client.variable_delete(name).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Creates the queue `name` (borrowed) holding at most `maxsize` items (0:
/// no limit), unless it exists (it then keeps its limit).
#[no_mangle]
pub unsafe extern "C" fn rask_client_queue_create(
    client: *const rask_client,
    name: *const c_char,
    maxsize: u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        c.client.queue_create(name, maxsize).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Appends an item (exactly one of `value` and `future`, borrowed) to the
/// queue `name` (borrowed; created unbounded if new). On a full queue waits
/// up to `timeout_ms` milliseconds (negative: forever) for room; then
/// returns `RASK_TIMEOUT` with an error naming the queue, its maxsize and
/// the timeout.
#[no_mangle]
pub unsafe extern "C" fn rask_client_queue_put(
    client: *const rask_client,
    name: *const c_char,
    value: *const rask_value,
    future: *const rask_future,
    timeout_ms: i64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        let item = item_in(value, future)?;
        c.life.check("this call")?;
        c.client
            .queue_put(name, &item, timeout(timeout_ms))
            .map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Takes the oldest item of the queue `name` (borrowed), waiting up to
/// `timeout_ms` milliseconds (negative: forever) for one. Exactly one of
/// `*out_value` and `*out_future` is set to a handle the caller owns (both
/// NULL first). Returns `RASK_TIMEOUT` with an error naming the queue and
/// the timeout when it stayed empty.
#[no_mangle]
pub unsafe extern "C" fn rask_client_queue_get(
    client: *const rask_client,
    name: *const c_char,
    timeout_ms: i64,
    out_value: *mut *mut rask_value,
    out_future: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        outs_clear(out_value, out_future)?;
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        let item = c
            .client
            .queue_get(name, timeout(timeout_ms))
            .map_err(coord_error)?;
        item_out(c, item, out_value, out_future);
        Ok(rask_status::RASK_OK)
    })
}

/// Sets `*out` to the number of items in the queue `name` (borrowed).
#[no_mangle]
pub unsafe extern "C" fn rask_client_queue_size(
    client: *const rask_client,
    name: *const c_char,
    out: *mut u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = 0;
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        *out = c.client.queue_size(name).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Takes one of the `max_leases` leases of the semaphore `name` (borrowed;
/// a lock is a semaphore of 1; created by the first acquire, and asking an
/// existing one with another `max_leases` fails with `RASK_ERR_PROTOCOL`,
/// code `conflict`), waiting up to `timeout_ms` milliseconds (negative:
/// forever; 0: only try). Returns `RASK_OK` with `*out_lease` set to the
/// lease's id (for `rask_client_lease_release`), or `RASK_TIMEOUT` (no
/// error, `*out_lease` 0) when none became free in time. Leases of a client
/// that is closed or whose process dies are released.
#[no_mangle]
pub unsafe extern "C" fn rask_client_lease_acquire(
    client: *const rask_client,
    name: *const c_char,
    max_leases: u32,
    timeout_ms: i64,
    out_lease: *mut u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out_lease, "out_lease")?;
        *out = 0;
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        match c
            .client
            .lease_acquire(name, max_leases, timeout(timeout_ms))
            .map_err(coord_error)?
        {
            Some(l) => {
                *out = l;
                Ok(rask_status::RASK_OK)
            }
            None => Ok(rask_status::RASK_TIMEOUT),
        }
    })
}

/// Gives back the lease `lease` of the semaphore `name` (borrowed). A lease
/// this client does not hold fails with `RASK_ERR_PROTOCOL` (code
/// `not-found`).
#[no_mangle]
pub unsafe extern "C" fn rask_client_lease_release(
    client: *const rask_client,
    name: *const c_char,
    lease: u64,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        c.client.lease_release(name, lease).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Sets the event `name` (borrowed): its waiters wake.
#[no_mangle]
pub unsafe extern "C" fn rask_client_event_set(
    client: *const rask_client,
    name: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        c.client.event_set(name).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Clears the event `name` (borrowed).
#[no_mangle]
pub unsafe extern "C" fn rask_client_event_clear(
    client: *const rask_client,
    name: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        c.client.event_clear(name).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Waits up to `timeout_ms` milliseconds (negative: forever; 0: just look)
/// for the event `name` (borrowed) to be set, and sets `*out_set` to
/// whether it is.
#[no_mangle]
pub unsafe extern "C" fn rask_client_event_wait(
    client: *const rask_client,
    name: *const c_char,
    timeout_ms: i64,
    out_set: *mut bool,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out_set, "out_set")?;
        *out = false;
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        *out = c
            .client
            .event_wait(name, timeout(timeout_ms))
            .map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Publishes an item (exactly one of `value` and `future`, borrowed) as the
/// dataset `name` (borrowed). It stays published, its future's key alive,
/// after this client goes. An existing name fails with `RASK_ERR_PROTOCOL`
/// (code `conflict`) unless `replace`.
#[no_mangle]
pub unsafe extern "C" fn rask_client_publish_dataset(
    client: *const rask_client,
    name: *const c_char,
    value: *const rask_value,
    future: *const rask_future,
    replace: bool,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        let item = item_in(value, future)?;
        c.life.check("this call")?;
        c.client
            .publish_dataset(name, &item, replace)
            .map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// The dataset `name` (borrowed): exactly one of `*out_value` and
/// `*out_future` is set to a handle the caller owns (both NULL first). An
/// unknown name fails with `RASK_ERR_PROTOCOL` (code `not-found`).
#[no_mangle]
pub unsafe extern "C" fn rask_client_get_dataset(
    client: *const rask_client,
    name: *const c_char,
    out_value: *mut *mut rask_value,
    out_future: *mut *mut rask_future,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        outs_clear(out_value, out_future)?;
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        let item = c.client.get_dataset(name).map_err(coord_error)?;
        item_out(c, item, out_value, out_future);
        Ok(rask_status::RASK_OK)
    })
}

/// Removes the published dataset `name` (borrowed); an unknown name fails
/// with `RASK_ERR_PROTOCOL` (code `not-found`).
#[no_mangle]
pub unsafe extern "C" fn rask_client_unpublish_dataset(
    client: *const rask_client,
    name: *const c_char,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let name = req_str(name, "name")?;
        c.life.check("this call")?;
        c.client.unpublish_dataset(name).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Sets `*out` to a value the caller owns (`rask_value_free`): an array of
/// the published datasets' names (strings, sorted).
#[no_mangle]
pub unsafe extern "C" fn rask_client_list_datasets(
    client: *const rask_client,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let c = open_client(client)?;
        let names = c.client.list_datasets().map_err(coord_error)?;
        *out = into_c(crate::Value::Array(
            names.into_iter().map(crate::Value::from).collect(),
        ));
        Ok(rask_status::RASK_OK)
    })
}

/// The tasks of `futures[0..n]` (borrowed; futures of this client) run to
/// the end even when no future on them is left.
#[no_mangle]
pub unsafe extern "C" fn rask_client_fire_and_forget(
    client: *const rask_client,
    futures: *const *const rask_future,
    n: usize,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let fs = futures_of(futures, n, "futures")?;
        c.life.check("this call")?;
        let fs: Vec<_> = fs.iter().map(|f| f.future.clone()).collect();
        c.client.fire_and_forget(&fs).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// Sends `value` (borrowed) to every current subscriber of the topic
/// `topic` (borrowed).
#[no_mangle]
pub unsafe extern "C" fn rask_client_publish(
    client: *const rask_client,
    topic: *const c_char,
    value: *const rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let c = req(client, "client")?;
        let topic = req_str(topic, "topic")?;
        let v = val(value, "value")?;
        c.life.check("this call")?;
        c.client.publish(topic, v).map_err(coord_error)?;
        Ok(rask_status::RASK_OK)
    })
}

/// A subscription to a topic, made by `rask_client_subscribe`, freed (and
/// unsubscribed) with `rask_subscription_free`. It keeps its client's
/// connection open until freed.
pub struct rask_subscription {
    sub: Subscription,
    life: std::sync::Arc<super::client::Liveness>,
}

/// Subscribes to `topic` (borrowed): what is published there from now on
/// is kept in the subscription until read with `rask_subscription_get`.
/// `*out` is set to a subscription the caller owns.
#[no_mangle]
pub unsafe extern "C" fn rask_client_subscribe(
    client: *const rask_client,
    topic: *const c_char,
    out: *mut *mut rask_subscription,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let c = req(client, "client")?;
        let topic = req_str(topic, "topic")?;
        c.life.check("this call")?;
        let sub = c.client.subscribe(topic).map_err(coord_error)?;
        *out = Box::into_raw(Box::new(rask_subscription {
            sub,
            life: std::sync::Arc::clone(&c.life),
        }));
        Ok(rask_status::RASK_OK)
    })
}

/// The next message of a subscription, waiting up to `timeout_ms`
/// milliseconds (negative: forever; 0: just look): `*out` is set to a
/// value the caller owns. Returns `RASK_TIMEOUT` (with an error naming the
/// topic) when none came in time, `RASK_ERR_STATE` once its client was
/// closed.
#[no_mangle]
pub unsafe extern "C" fn rask_subscription_get(
    sub: *const rask_subscription,
    timeout_ms: i64,
    out: *mut *mut rask_value,
    err: *mut *mut rask_error,
) -> rask_status {
    ffi_boundary!(err, {
        let out = req_mut(out, "out")?;
        *out = ptr::null_mut();
        let s = req(sub, "sub")?;
        s.life.check("this subscription")?;
        let v = s.sub.get(timeout(timeout_ms)).map_err(coord_error)?;
        *out = into_c(v);
        Ok(rask_status::RASK_OK)
    })
}

/// Unsubscribes and frees a subscription. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rask_subscription_free(sub: *mut rask_subscription) {
    ffi_boundary!(default = (), {
        if !sub.is_null() {
            drop(Box::from_raw(sub));
        }
    })
}
