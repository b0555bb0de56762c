"""Dask's collections on a rask cluster of Python worker processes:
dask.compute(x, scheduler=client.get), client.compute, client.persist.
Each result is checked against Dask's own scheduler."""

import os

import pytest

import rask

if not os.environ.get("CI"):  # scripts/test.sh installs dask: in CI these tests never skip
    pytest.importorskip("dask.array")
    pytest.importorskip("dask.bag")
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402
import numpy as np  # noqa: E402
from dask import delayed  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with rask.Client(processes=True, n_workers=2, threads_per_worker=2) as c:
        yield c


def test_the_seed_expression_on_worker_processes(client):
    x = da.random.random((2000, 2000), chunks=(500, 500))  # the seed's 4 x 4 chunks, smaller
    y = (x.dot(x.T + 1) - x.mean()).std()
    (ours,) = dask.compute(y, scheduler=client.get)
    (theirs,) = dask.compute(y, scheduler="threads")
    assert ours == pytest.approx(theirs, rel=1e-12)
    small = da.random.random((200, 200), chunks=(50, 50))
    z = (small.dot(small.T + 1) - small.mean()).std()
    (also,) = dask.compute(z, scheduler=client)  # a Client as dask's scheduler
    assert also == pytest.approx(z.compute(scheduler="sync"), rel=1e-12)


def test_delayed_bag_and_array_against_dask(client):
    def ident(v):
        return v

    parts = [delayed(ident)((i, {"k": [i]})) for i in range(5)]  # tuples and dicts survive the trip
    b = db.from_sequence(range(300), npartitions=6).map(lambda v: v % 7).frequencies()
    x = da.arange(1000, chunks=100).reshape(10, 100).rechunk((5, 50))
    colls = (parts, b, x.sum(axis=1), x[::2].T.mean())
    ours = dask.compute(*colls, scheduler=client.get)
    theirs = dask.compute(*colls, scheduler="sync")
    assert ours[0] == theirs[0] == [(i, {"k": [i]}) for i in range(5)]
    assert sorted(ours[1]) == sorted(theirs[1])
    np.testing.assert_array_equal(ours[2], theirs[2])
    assert ours[3] == theirs[3]


def test_client_compute_and_persist(client):
    import random

    b = db.from_sequence(range(100), npartitions=4).map(lambda v: v * 2)
    f = client.compute(b.sum())
    assert isinstance(f, rask.Future) and f.result(timeout=60) == 9900
    fs = client.compute([b.count(), delayed(max)(3, 9)])
    assert [g.result(timeout=60) for g in fs] == [100, 9]
    # persist: the data stays on the cluster and is reused, not recomputed
    # (a random number would change if it were).
    r = delayed(random.random, pure=False)()
    rp = client.persist(r)
    first = dask.compute(rp, scheduler=client.get)[0]
    assert dask.compute(rp + 1, scheduler=client.get)[0] == first + 1
    assert rp.compute(scheduler=client.get) == first
    x = da.ones((40, 40), chunks=10)
    xp = client.persist(x)
    assert type(xp) is type(x) and xp.chunks == x.chunks
    assert (xp + 1).sum().compute(scheduler=client.get) == 3200


def test_errors_and_unserializable_tasks(client):
    def boom(v):
        raise ValueError(f"bad {v}")

    with pytest.raises(rask.RemoteTaskError, match="ValueError: bad 3"):
        dask.compute(delayed(boom)(3), scheduler=client.get)
    import threading

    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot be sent to the cluster"):
        dask.compute(delayed(lambda v: v)(lock), scheduler=client.get)


def test_numpy_chunks_travel_as_tensors_and_the_rest_boxed():
    import pickle

    from rask._host import portable
    from rask.dask_spec import _box, _Boxed, _unbox
    from rask.values import _msgpack

    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert _box(a) is a  # a host object; leaving the process, a rask tensor
    ext = _msgpack.unpackb(portable(a))  # its portable form: a tensor (extension type 1), not a pickle
    assert isinstance(ext, _msgpack.ExtType) and ext.code == 1
    for other in (
        np.ma.masked_array([1.0, 2.0], mask=[0, 1]),  # a subclass: its mask would be lost
        np.array(["a", "b"]),  # no tensor dtype
        np.arange(3, dtype=np.float16),
        np.arange(3, dtype=">i4"),  # not native byte order
        np.float64(1.5),  # a numpy scalar
        (1, ("nested", 2)),  # a tuple: plain data would make it a list
        {"k": a},
        b"raw bytes",
    ):
        boxed = _box(other)
        assert isinstance(boxed, _Boxed) and _unbox(boxed) is other
        back = _unbox(pickle.loads(pickle.dumps(boxed)))  # how it leaves a process
        assert type(back) is type(other)
        if isinstance(other, np.ndarray):
            # (numpy may unpickle another byte order: the same values, kind and size)
            assert back.dtype.str[1:] == other.dtype.str[1:] and np.array_equal(np.asarray(back), np.asarray(other))
            if isinstance(other, np.ma.MaskedArray):
                assert (back.mask == other.mask).all()
        elif not isinstance(other, dict):
            assert back == other
    assert _box(a).nbytes == 96 and _box([a, a]).nbytes > 0


def test_a_chunk_crosses_processes_as_a_tensor(client):
    # Chunks made on the worker processes, summed there and gathered: the
    # values and the exact dtype come through.
    x = da.arange(40, chunks=10, dtype=np.int32) * 3
    y = (x + 1).sum()
    (ours,) = dask.compute(y, scheduler=client.get)
    assert ours == int(np.sum(np.arange(40, dtype=np.int32) * 3 + 1))
    parts = dask.compute(x, scheduler=client.get)[0]
    assert parts.dtype == np.int32 and np.array_equal(parts, np.arange(40, dtype=np.int32) * 3)
    # A chunk that came from another process is lent to the task that
    # reads it (a read-only array over the received frame), not copied.
    big = client.scatter(np.arange(1 << 16, dtype=np.float64))
    flags = client.submit(lambda v: (bool(v.flags.writeable), bool(v.flags.owndata), float(v.sum())), big).result()
    assert flags == [False, False, float(np.arange(1 << 16, dtype=np.float64).sum())]
    # Tuples made on a worker process come back tuples (boxed, pickled).
    pairs = dask.compute(db.from_sequence(range(6), npartitions=3).map(lambda v: (v, str(v))), scheduler=client.get)[0]
    assert pairs == [(v, str(v)) for v in range(6)] and all(type(p) is tuple for p in pairs)
