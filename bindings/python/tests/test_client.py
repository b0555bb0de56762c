"""rask.Client, futures, wait, as_completed on a LocalCluster (all in this
process, over loopback TCP)."""

import threading
import time

import pytest
from conftest import needs_numpy

import rask

#: A function no worker offers: its tasks wait (pending) until cancelled.
NOBODY = "nobody-offers-this"


@pytest.fixture
def cluster():
    with rask.LocalCluster(n_workers=2, threads_per_worker=1) as c:
        yield c


@pytest.fixture
def client(cluster):
    with rask.Client(cluster, timeout=5) as c:
        yield c


# ------------------------------------------------------------ basics


def test_pure_keys_are_the_same_in_every_language(client):
    # The literals of tests/vectors/pure-keys.txt, which Rust, C, C++ and
    # Julia check too: the same call gets the same key from every face.
    calls = [
        (("inc", 1), "inc-1947b44a679fe4c234ac24d46ccbb2d0"),
        (("add", 2, 3), "add-1c445a3a02b39b5ef50783175bde8c5d"),
        (("mul", 2.5, -1), "mul-78af0688493ed884f7a1fafdf525a2b1"),
        (("len", "abc"), "len-1a8af0223c2b69788d6347cba7f21484"),
        (("add", 300, -200), "add-e39f800594b49f8bee459e3a0444a0ae"),
    ]
    for call, key in calls:
        assert client.submit(*call).key == key, call
    assert client.submit("inc", 1).result(timeout=30) == 2


def test_classic_graph_via_compute(client, classic):
    z = client.compute(classic, "z")
    assert isinstance(z, rask.Future)
    assert z.key == "z"
    assert z.result(timeout=10) == 13
    assert z.status == "finished" and z.done()
    b, y = client.compute(classic, ["b", "y"])
    assert client.gather([b, y]) == [2, 11]


def test_classic_graph_via_submit(client):
    a, x = 1, 10
    b = client.submit("inc", a)
    y = client.submit("inc", x)
    z = client.submit("add", b, y)
    assert z.result(timeout=10) == 13
    assert b.key.startswith("inc-") and b.key != y.key


def test_classic_graph_as_a_dask_dict(client):
    dsk = {"a": 1, "x": 10, "b": ("inc", "a"), "y": ("inc", "x"), "z": ("add", "b", "y")}
    assert client.get(dsk, "z") == 13
    assert client.get(dsk, ["z", ["b", "y"]]) == (13, (2, 11))
    assert client.compute(dsk, "z").result() == 13


def test_submit_is_pure_by_default(client):
    f1 = client.submit("inc", 41)
    f2 = client.submit("inc", 41)
    assert f1.key == f2.key and f1 is not f2
    assert f1.result() == f2.result() == 42


def test_submit_with_a_key_or_impure(client):
    f = client.submit("add", 1, 2, key="my-sum")
    assert f.key == "my-sum" and f.result() == 3
    g1 = client.submit("inc", 1, pure=False)
    g2 = client.submit("inc", 1, pure=False)
    assert g1.key != g2.key and g1.key.startswith("inc")
    assert client.gather([g1, g2]) == [2, 2]
    h = client.submit("add", f, 10, key=("tuple", 1))  # a Dask-style key, with a future argument
    assert h.key == "('tuple', 1)" and h.result() == 13
    with pytest.raises(rask.InvalidArgumentError):
        client.submit("inc", 1, key="")


def test_retries(client):
    # retries are accepted; a task failing for good still errs (in the end)
    assert client.submit("inc", 1, retries=2).result() == 2
    bad = client.submit("inc", "x", retries=1)
    assert isinstance(bad.exception(timeout=10), rask.RemoteTaskError)
    fs = client.map("inc", [1, 2], retries=1)
    assert client.gather(fs) == [2, 3]


def test_submit_refuses_what_rask_cannot_do(client):
    with pytest.raises(TypeError, match="positional"):
        client.submit("inc", x=1)
    with pytest.raises(TypeError, match="a name or a callable"):
        client.submit(42, 1)
    f = client.submit("inc", 1)
    with pytest.raises(TypeError, match="dict argument cannot hold futures"):
        client.submit("identity", {"a": f})
    with pytest.raises(ValueError, match="retries"):
        client.submit("inc", 1, retries=-1)


# ------------------------------------------------------- map / gather


def test_map_and_gather(client):
    futures = client.map("inc", range(100))
    assert len(futures) == 100
    assert client.gather(futures) == list(range(1, 101))
    sums = client.map("add", [1, 2, 3], [10, 20, 30])
    assert client.gather(sums) == [11, 22, 33]
    assert client.map("inc", []) == []
    keyed = client.map("inc", [1, 2], key="k")
    assert [f.key for f in keyed] == ["k-0", "k-1"] and client.gather(keyed) == [2, 3]
    listed = client.map("inc", [1, 2], key=["one", "two"])
    assert [f.key for f in listed] == ["one", "two"]
    impure = client.map("inc", [1, 1], pure=False)
    assert impure[0].key != impure[1].key and client.gather(impure) == [2, 2]


def _tasks_on_scheduler(client):
    return client.scheduler_info()["tasks"]


def _eventually(pred, timeout=10):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_map_is_one_batch_and_behaves_as_futures(client):
    from rask.client import _Batch

    futures = client.map("inc", range(50))
    batch = futures[0]._batch
    assert isinstance(batch, _Batch) and all(f._batch is batch for f in futures)
    # the same call gives the same key however it is submitted
    assert futures[7].key == client.submit("inc", 7).key
    assert client.gather(futures) == list(range(1, 51))
    assert futures[3].result() == 4 and futures[3].status == "finished" and futures[3].done()
    # as arguments, in wait and as_completed, cancelled: through a future of their own
    assert client.submit("add", futures[1], futures[2]).result() == 5
    assert rask.wait(futures[:5]).not_done == set()
    assert {f.key for f in rask.as_completed(futures[:3])} == {f.key for f in futures[:3]}
    # gather mixes them with other futures and keeps the structure
    other = client.submit("inc", 1000)
    assert client.gather({"a": [futures[0], other], "b": futures[9]}) == {"a": [1, 1001], "b": 10}
    assert client.gather(futures[10:13] + [other]) == [11, 12, 13, 1001]
    # values of every kind come back, through one msgpack buffer
    values = [None, True, -(2**63), 2**64 - 1, 1.5, "é", b"\x00b", [1, [2]], {"k": (1, 2)}, {(1, 2): "tuple key"}]
    assert client.gather(client.map("identity", values)) == [
        None, True, -(2**63), 2**64 - 1, 1.5, "é", b"\x00b", [1, [2]], {"k": [1, 2]}, {(1, 2): "tuple key"}
    ]


def test_a_map_with_futures_among_its_arguments_still_works(client):
    a = client.submit("inc", 1)
    mapped = client.map("add", [a, 5], [10, 20])
    assert mapped[0]._batch is None  # rask_client_map, the futures one by one
    assert client.gather(mapped) == [12, 25]


def test_failures_and_releases_in_a_batch(client):
    futures = client.map("inc", [1, "x", 3])
    with pytest.raises(rask.RemoteTaskError, match="inc"):
        client.gather(futures)
    assert client.gather(futures, errors="skip") == [2, 4]
    with pytest.raises(rask.RemoteTaskError):
        futures[1].result()
    assert futures[1].status == "error"
    futures[0].release()
    futures[0].release()  # idempotent
    assert futures[0].status == "released"
    with pytest.raises(rask.StateError, match="released"):
        futures[0].result()
    with pytest.raises(rask.StateError, match="released"):
        client.gather(futures)
    assert futures[2].result() == 4


def test_a_batch_gather_times_out(client):
    futures = client.map(NOBODY, [1, 2])
    with pytest.raises(TimeoutError):
        client.gather(futures, timeout=0.2)
    with pytest.raises(TimeoutError):
        futures[0].result(timeout=0.1)
    client.cancel(futures)
    with pytest.raises(rask.CancelledError):
        client.gather(futures)


def test_map_futures_are_released_when_dropped(client):
    assert _eventually(lambda: _tasks_on_scheduler(client) == 0)
    futures = client.map("inc", range(1000, 1010))
    assert client.gather(futures)[-1] == 1010
    assert _tasks_on_scheduler(client) == 10
    # one future garbage-collected: released with the client's next call
    del futures[0]
    kept = client.submit("inc", -1)
    assert kept.result() == 0
    assert _eventually(lambda: _tasks_on_scheduler(client) == 10)  # 9 of the map + inc(-1)
    # the rest go with the batch
    del futures
    assert _eventually(lambda: _tasks_on_scheduler(client) == 1)
    assert kept.result() == 0


def test_map_futures_dropped_from_many_threads_are_released_once(client):
    # Future.__del__ appends to its batch without a lock: futures dropped
    # from several threads at once (more than DROP_FLUSH of them, so flushes
    # run meanwhile) are each released exactly once, the kept ones stay.
    assert _eventually(lambda: _tasks_on_scheduler(client) == 0)
    futures = client.map("inc", range(20_000, 25_000))
    assert client.gather(futures)[-1] == 25_000
    kept = futures[::10]
    parts = [futures[i::4] for i in range(4)]
    for part in parts:
        part[:] = [f for f in part if f._index % 10]
    del futures
    start = threading.Barrier(4)

    def drop(part):
        start.wait()
        part.clear()

    threads = [threading.Thread(target=drop, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del parts
    assert client.submit("inc", -1).result() == 0  # the client's next call releases the rest
    assert _eventually(lambda: _tasks_on_scheduler(client) == len(kept))
    assert client.gather(kept) == list(range(20_001, 25_001, 10))


def test_gather_of_a_released_entry_says_so_even_when_its_slot_is_reused(client):
    futures = client.map("inc", [1, 2])
    assert client.gather(futures) == [2, 3]
    b = futures[0]._batch
    futures[0].release()
    other = client.submit("inc", 41)  # may take the released key's slot
    assert other.result() == 42
    with pytest.raises(rask.StateError, match="released"):
        b.gather([0, 1], timeout=1)
    with pytest.raises(rask.StateError, match="released"):
        client.gather(futures)
    assert client.gather(futures[1:]) == [3]


def test_gather_keeps_the_structure(client):
    a, b = client.submit("inc", 1), client.submit("inc", 2)
    assert client.gather(a) == 2
    assert client.gather({"x": a, "y": [b, "plain", 7]}) == {"x": 2, "y": [3, "plain", 7]}
    assert client.gather((a, b)) == (2, 3)
    assert client.gather([]) == []


def test_gather_skips_failures_when_asked(client):
    good, bad = client.submit("inc", 1), client.submit("inc", "x")
    with pytest.raises(rask.RemoteTaskError):
        client.gather([good, bad])
    assert client.gather([good, bad], errors="skip") == [2]


def test_futures_as_arguments_also_in_lists(client):
    a = client.submit("inc", 1)
    b = client.submit("inc", a)
    total = client.submit("sum", [a, b, 10])
    nested = client.submit("identity", [[a, 1], [b]])
    assert total.result() == 15
    assert nested.result() == [[2, 1], [3]]
    mapped = client.map("add", [a, b], [100, 200])
    assert client.gather(mapped) == [102, 203]


# -------------------------------------------------------------- scatter


@needs_numpy
def test_scatter_and_gather_a_numpy_array(client):
    import numpy as np

    arr = np.arange(240, dtype=np.float32).reshape(4, 6, 10)
    f = client.scatter(arr)
    assert isinstance(f, rask.Future)
    back = client.gather(f)
    assert back.dtype == np.float32 and back.shape == (4, 6, 10)
    np.testing.assert_array_equal(back, arr)
    assert back is not arr
    # a task gets the tensor, and hands one back
    same = client.submit("identity", f).result()
    np.testing.assert_array_equal(same, arr)


def test_scatter_lists_dicts_and_broadcast(client):
    fs = client.scatter([1, "two", [3]])
    assert [f.status for f in fs] == ["finished"] * 3
    assert client.gather(fs) == [1, "two", [3]]
    d = client.scatter({"a": 5, "b": 6}, broadcast=True)
    assert set(d) == {"a", "b"}
    assert client.submit("add", d["a"], d["b"]).result() == 11
    assert client.scatter([]) == []


# ----------------------------------------------------- cancel / release


def test_cancel(client):
    f = client.submit(NOBODY, 1)  # no worker offers it: stays pending
    g = client.submit(NOBODY, 2)
    assert f.status == "pending" and not f.done()
    client.cancel([f])
    g.cancel()
    assert f.status == "cancelled" and f.cancelled() and f.done()
    with pytest.raises(rask.CancelledError):
        f.result(timeout=5)
    with pytest.raises(rask.CancelledError):
        g.exception(timeout=5)
    # the client goes on working
    assert client.submit("inc", 1).result() == 2


def test_release(client):
    f = client.submit("inc", 1)
    assert f.result() == 2
    f.release()
    f.release()  # idempotent
    assert f.status == "released"
    with pytest.raises(rask.StateError, match="released"):
        f.result()
    # a dropped future is freed by the garbage collector, and the key can
    # be computed again
    g = client.submit("inc", 5)
    del g
    assert client.submit("inc", 5).result() == 6


# ----------------------------------------------------------------- wait


def test_wait_all(client):
    fs = client.map("inc", range(10))
    done, not_done = rask.wait(fs, timeout=10)
    assert done == set(fs) and not_done == set()
    assert rask.wait([]) == (set(), set())


def test_wait_first_completed_with_timeout(client):
    slow = client.submit(NOBODY, 1)
    quick = client.submit("inc", 1)
    # slow never finishes: returning with quick done and slow not done is
    # returning at the first completion (no duration asserted).
    result = rask.wait([slow, quick], timeout=60, return_when=rask.FIRST_COMPLETED)
    assert isinstance(result, rask.DoneAndNotDoneFutures)
    assert result.done == {quick} and result.not_done == {slow}
    # ALL_COMPLETED cannot happen: a timeout, as in dask.distributed
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        rask.wait([slow, quick], timeout=0.3)
    assert time.monotonic() - t0 >= 0.25  # it waited its timeout (load only adds)
    assert info.value.done == {quick} and info.value.not_done == {slow}
    with pytest.raises(TimeoutError):
        slow.result(timeout=0.1)
    with pytest.raises(ValueError, match="return_when"):
        rask.wait([quick], return_when="FIRST_EXCEPTION")
    slow.cancel()


# --------------------------------------------------------- as_completed


def test_as_completed_with_additions(client):
    futures = client.map("inc", range(3))  # 1, 2, 3
    ac = rask.as_completed(futures)
    seen = []
    for f in ac:
        v = f.result()
        seen.append(v)
        if v < 6:  # the adaptive pattern: more work while iterating
            ac.add(client.submit("add", f, 3))
    assert sorted(seen) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert ac.is_empty()


def test_as_completed_yields_the_given_futures_and_results(client):
    futures = client.map("inc", range(5))
    got = list(rask.as_completed(futures))
    assert sorted(map(id, got)) == sorted(map(id, futures))
    pairs = list(rask.as_completed(client.map("inc", [10, 20]), with_results=True))
    assert sorted(v for _, v in pairs) == [11, 21]
    bad = client.submit("inc", "x")
    [(f, e)] = list(rask.as_completed([bad], with_results=True, raise_errors=False))
    assert f is bad and isinstance(e, rask.RemoteTaskError)


def test_as_completed_added_from_another_thread(client):
    pending = client.submit(NOBODY, 0)
    ac = rask.as_completed([pending])  # the iterator waits on it...
    quick = []

    def feed():  # ...while another thread adds work, then cancels it
        time.sleep(0.05)
        quick.append(client.submit("inc", 100))
        ac.add(quick[0])
        time.sleep(0.05)
        pending.cancel()

    t = threading.Thread(target=feed)
    t.start()
    got = list(ac)
    t.join()
    assert got == [quick[0], pending]
    assert [f.status for f in got] == ["finished", "cancelled"]
    ac.close()


def test_as_completed_empty_and_timeout(client):
    assert list(rask.as_completed()) == []
    ac = rask.as_completed([client.submit(NOBODY, 3)], timeout=0.2)
    with pytest.raises(TimeoutError):
        next(ac)


# --------------------------------------------------------------- errors


def test_remote_error_attributes(client):
    bad = client.submit("inc", "not a number")
    with pytest.raises(rask.RemoteTaskError) as info:
        bad.result(timeout=10)
    e = info.value
    assert isinstance(e, rask.TaskError) and isinstance(e, rask.RaskError)
    assert e.status_name == "RASK_ERR_TASK_FAILED"
    assert e.key == bad.key and e.failed_key == bad.key
    assert e.func == "inc"
    assert e.worker.startswith("tcp://127.0.0.1:")
    assert "number" in e.task_message and not e.task_message.startswith("inc:")
    assert e.exception is None and e.__cause__ is None
    assert bad.status == "error"
    assert isinstance(bad.exception(), rask.RemoteTaskError)

    # a task whose dependency failed names both
    after = client.submit("add", bad, 1)
    e2 = after.exception(timeout=10)
    assert e2.key == after.key and e2.failed_key == bad.key
    assert e2.func == "inc" and e2.worker == e.worker
    assert f"dependency '{bad.key}'" in str(e2)


def test_remote_error_message_parses_odd_keys():
    msg = "task '('x', 0)' failed because its dependency 'a' (b) c' (f#2) failed on tcp://h:1: f#2: E: m: n"
    e = rask.RemoteTaskError(msg, 8)
    assert (e.key, e.failed_key, e.func, e.worker, e.task_message) == (
        "('x', 0)",
        "a' (b) c",
        "f#2",
        "tcp://h:1",
        "E: m: n",
    )
    e = rask.RemoteTaskError("something else", 8)
    assert e.key is None and e.worker is None and e.task_message == "something else"


# ------------------------------------------------------ client lifetime


def test_client_without_address_starts_a_local_cluster():
    with rask.Client(n_workers=1) as c:
        assert isinstance(c.cluster, rask.LocalCluster)
        assert c.scheduler_address == c.cluster.address
        assert c.submit("inc", 1).result(timeout=10) == 2
        cluster = c.cluster
    assert cluster.closed


def test_client_by_address(cluster):
    with rask.Client(cluster.address, name="by-address") as c:
        assert c.scheduler_address == cluster.address
        assert c.wait_for_workers(2, timeout=5) >= 2
        assert c.submit("inc", 1).result(timeout=10) == 2
    assert "closed" in repr(c)


def test_connecting_to_nothing_fails_clearly():
    with rask.Scheduler() as s:
        address = s.address
    with pytest.raises(rask.RaskConnectionError):
        rask.Client(address, timeout=2)


def test_client_of_a_closed_cluster_raises_instead_of_hanging():
    cluster = rask.LocalCluster(n_workers=1)
    client = rask.Client(cluster)
    done = client.submit("inc", 1)
    assert done.result(timeout=10) == 2
    pending = client.submit(NOBODY, 1)
    cluster.close()
    with pytest.raises(rask.RaskConnectionError, match="scheduler"):
        pending.result()  # no timeout: must not hang
    with pytest.raises(rask.RaskConnectionError):
        client.submit("inc", 2)
    assert pending.status == "error"
    client.close()


def test_futures_of_a_closed_client(cluster):
    c = rask.Client(cluster)
    f = c.submit("inc", 1)
    f.result()
    pending = c.submit(NOBODY, 1)
    c.close()
    c.close()  # idempotent
    with pytest.raises(rask.StateError):
        f.result()
    assert pending.status == "error"
    with pytest.raises(rask.StateError):
        c.submit("inc", 1)


def test_futures_of_another_client_are_refused(cluster, client):
    with rask.Client(cluster) as other:
        f = other.submit("inc", 1)
        with pytest.raises(ValueError, match="another client"):
            client.submit("inc", f)
        with pytest.raises(ValueError, match="another client"):
            client.gather([f])
        with pytest.raises(ValueError, match="one client"):
            rask.wait([f, client.submit("inc", 2)])


def test_result_wait_is_interruptible_by_close_from_another_thread(cluster):
    c = rask.Client(cluster)
    f = c.submit(NOBODY, 1)
    errors = []

    def waiter():
        try:
            f.result()
        except rask.RaskError as e:
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    c.close()
    t.join(5)
    assert not t.is_alive()
    # (a thread already waiting gets RASK_ERR_CONNECTION "the client is
    # closed"; a call made after the close RASK_ERR_STATE)
    assert isinstance(errors[0], (rask.StateError, rask.RaskConnectionError))
    assert "closed" in str(errors[0]) or "freed" in str(errors[0])


def test_done_callbacks(client):
    called = []
    event = threading.Event()

    def note(f):
        called.append((f.key, f.status, threading.current_thread().name))
        if len(called) == 3:
            event.set()

    done = client.submit("inc", 1)
    done.result()
    done.add_done_callback(note)  # already done: called at once (on the callback thread)
    bad = client.submit("inc", "x")
    bad.add_done_callback(note)
    pending = client.submit(NOBODY, 1)
    pending.add_done_callback(note)
    pending.add_done_callback(lambda f: 1 / 0)  # logged, does not stop the others
    time.sleep(0.05)
    pending.cancel()
    assert event.wait(5)
    statuses = sorted(s for _, s, _ in called)
    assert statuses == ["cancelled", "error", "finished"]
    assert {name for _, _, name in called} == {"rask-done-callbacks"}


def test_close_with_callbacks_pending(cluster):
    c = rask.Client(cluster)
    f = c.submit(NOBODY, 1)
    f.add_done_callback(lambda f: None)
    c.close()  # returns (a hang would fail the run); no duration asserted
    assert "closed" in repr(c)


def test_rask_client_scheduler_info_through_ctypes(client):
    # The binding of rask_client_scheduler_info and its struct (_lib.py).
    import ctypes

    from rask import _lib as L
    from rask.errors import call

    def info():
        out = L.SchedulerInfo()
        with client._use() as h:
            call(L.lib().client_scheduler_info, h, ctypes.byref(out))
        return out

    assert client.wait_for_workers(2, timeout=10) == 2
    i = info()
    assert (i.workers, i.tasks) == (2, 0) and i.clients >= 1
    futures = [client.submit(NOBODY, k) for k in range(3)]
    deadline = time.monotonic() + 20
    while (i := info()).no_worker < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (i.tasks, i.no_worker, i.memory) == (3, 3, 0)
    client.cancel(futures)


def test_a_misspelt_function_is_warned_about(client, caplog):
    f = client.submit("incc", 1)
    deadline = time.monotonic() + 20
    while f.warning is None:
        assert time.monotonic() < deadline, "no warning"
        time.sleep(0.005)
    assert "no connected worker offers the function 'incc'" in f.warning
    assert f.status == "pending"
    # result() logs it while it waits.
    with caplog.at_level("WARNING", logger="rask.client"):
        with pytest.raises(TimeoutError):
            f.result(timeout=0.3)
    assert any("'incc'" in r.getMessage() for r in caplog.records)
    assert client.submit("inc", 1).result() == 2
    assert client.submit("inc", 1).warning is None


# ------------------------------------------------------------ one client, many threads


def test_one_client_shared_by_many_threads(cluster):
    client = rask.Client(cluster, timeout=30)
    errors = []

    def work(t):
        try:
            for i in range(50):
                x = t * 1000 + i
                if i % 3 == 0:
                    assert client.submit("inc", x).result(timeout=60) == x + 1
                elif i % 3 == 1:
                    fs = client.map("inc", [x, x + 1])
                    assert client.gather(fs) == [x + 1, x + 2]
                else:
                    f = client.submit("add", x, -(10**6))
                    f.cancel()
                    with pytest.raises(rask.CancelledError):
                        f.result(timeout=60)
        except BaseException as e:  # reported below, from the main thread
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "a thread hangs"
    assert errors == []
    assert client.submit("inc", 41).result(timeout=60) == 42
    client.close()


def test_closing_a_client_while_other_threads_submit_is_a_clear_error(cluster):
    client = rask.Client(cluster, timeout=30)
    started = threading.Barrier(5)
    outcomes = []

    def submit_until_closed():
        started.wait(30)
        n = 0
        while True:
            try:
                client.submit("inc", n)
            except rask.StateError as e:
                outcomes.append(("closed", n, type(e).__name__, str(e)))
                return
            except BaseException as e:
                outcomes.append(("unexpected", n, type(e).__name__, repr(e)))
                return
            n += 1

    threads = [threading.Thread(target=submit_until_closed) for _ in range(4)]
    for th in threads:
        th.start()
    started.wait(30)
    client.close()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads), "a submitting thread hangs"
    assert len(outcomes) == 4
    assert all(o[0] == "closed" and "closed" in o[3] for o in outcomes), outcomes


def test_asyncio_awaits_futures_and_iterates_as_completed():
    # Futures are awaitable and as_completed is an async iterator; the waits
    # run in the event loop (it watches the client's descriptor, no thread
    # blocks), so other coroutines run meanwhile.
    import asyncio

    with rask.LocalCluster(n_workers=1) as cluster, rask.Client(cluster) as c:

        async def main():
            ticks = 0
            stop = asyncio.Event()

            async def ticker():
                nonlocal ticks
                while not stop.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            t = asyncio.ensure_future(ticker())
            x = c.submit("inc", 1)
            assert await x == 2
            fs = c.map("inc", range(20))
            got = sorted([await f async for f in rask.as_completed(fs)])
            assert got == list(range(1, 21))
            # with_results, and an error raised by await
            pairs = [p async for p in rask.as_completed([c.submit("add", 1, 2)], with_results=True)]
            assert pairs[0][1] == 3
            bad = c.submit("div", 1, 0)
            with pytest.raises(rask.RemoteTaskError):
                await bad
            # several coroutines awaiting at once
            many = await asyncio.gather(*(c.submit("inc", i) for i in range(100, 110)))
            assert many == list(range(101, 111))
            stop.set()
            await t
            return ticks

        assert asyncio.run(main()) > 0
        # The client still works without a loop afterwards.
        assert c.submit("inc", 41).result(timeout=10) == 42
