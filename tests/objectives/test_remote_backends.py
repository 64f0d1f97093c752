"""Process-pool and Dask backends: same results as in process, timeouts isolate one candidate."""

from __future__ import annotations

import time

import psutil
import pytest
import torch
from objective_helpers import make_batch, make_callables

from flowevo.objectives import CachedEvaluator, DaskEvaluator, Evaluation, FunctionObjective, LocalEvaluator, ProcessPoolEvaluator


def _failures(ev: Evaluation) -> set[tuple[int, int, str]]:
    return {(f.index, f.row, f.name) for f in ev.failures}


def _assert_same(got: Evaluation, ref: Evaluation) -> None:
    torch.testing.assert_close(got.values, ref.values, equal_nan=True)
    torch.testing.assert_close(got.constraint_values, ref.constraint_values, equal_nan=True)
    assert torch.equal(got.violation, ref.violation)
    assert _failures(got) == _failures(ref)


@pytest.fixture(scope="module")
def reference() -> Evaluation:
    return LocalEvaluator(*make_callables())(make_batch())


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolEvaluator(*make_callables(), n_workers=2, chunk_size=1, timeout_s=1.0, retries=0) as ev:
        yield ev
        workers = set(ev._pids)
    assert workers and not any(_alive(pid) for pid in workers)  # no leaked worker processes


@pytest.fixture(scope="module")
def dask_ev():
    with DaskEvaluator(*make_callables(), n_workers=2, chunk_size=1, timeout_s=1.0, retries=0) as ev:
        yield ev
        workers = set(ev._pids.values())
    assert workers and not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_process_pool_matches_in_process(pool, reference):
    got = pool(make_batch())
    _assert_same(got, reference)
    assert got.failed.tolist() == reference.failed.tolist()
    assert got.failed[[2, 3, 7]].all() and got.failed.sum() == 3


def test_process_pool_hang_times_out_only_that_candidate(pool, reference):
    batch = make_batch()
    batch.x[5, 0] = 1000.0  # hangs_on_large sleeps 60 s for this one
    t0 = time.monotonic()
    got = pool(batch)
    assert time.monotonic() - t0 < 40
    assert got.failed.tolist() == [i in (2, 3, 5, 7) for i in range(10)]
    timeouts = [f for f in got.failures if "timed out" in f.error]
    assert [(f.index, f.row) for f in timeouts] == [(5, 2)]
    assert "worker killed" in timeouts[0].error
    others = [i for i in range(10) if i != 5]
    torch.testing.assert_close(got.values[others], reference.values[others], equal_nan=True)
    _assert_same(pool(make_batch()), reference)  # a fresh pool replaced the killed one
    assert pool.restarts == 1


def test_cache_in_front_of_process_pool(pool, reference):
    cached = CachedEvaluator(pool)
    _assert_same(cached(make_batch()), reference)
    _assert_same(cached(make_batch()), reference)
    # 7 of 10 candidates have all-finite values and are cached; the 3 failures are scored again
    assert cached.cache.hits == 7 and cached.cache.misses == 13


def test_dask_matches_in_process(dask_ev, reference):
    addresses = list(dask_ev.client.scheduler_info()["workers"])
    assert addresses and all(a.startswith("tcp://127.0.0.1:") for a in addresses)
    assert dask_ev.client.scheduler.address.startswith("tcp://127.0.0.1:")
    me = psutil.Process()
    listening = {
        c.laddr.ip for p in [me, *me.children(recursive=True)]
        for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
    }
    assert listening == {"127.0.0.1"}  # scheduler, nannies, workers and HTTP servers: loopback only
    _assert_same(dask_ev(make_batch()), reference)


def test_dask_hang_times_out_only_that_candidate(dask_ev, reference):
    batch = make_batch()
    batch.x[4, 0] = 500.0
    got = dask_ev(batch)
    assert got.failed.tolist() == [i in (2, 3, 4, 7) for i in range(10)]
    assert [(f.index, f.row) for f in got.failures if "timed out" in f.error] == [(4, 2)]
    assert dask_ev.restarts == 1
    _assert_same(dask_ev(make_batch()), reference)


def test_dask_joins_an_existing_scheduler(dask_ev, reference):
    address = dask_ev.client.scheduler.address
    with DaskEvaluator(*make_callables(), address=address) as joined:
        assert joined.cluster is None
        _assert_same(joined(make_batch()), reference)
    assert dask_ev.client.status == "running"  # closing the joiner leaves the cluster alone


def test_unpicklable_objective_is_a_clear_error():
    lam = FunctionObjective("lam", "min", lambda b: b.x.sum(dim=1))
    with pytest.raises(TypeError, match="objective 'lam' cannot be sent to worker processes.*lambdas"):
        ProcessPoolEvaluator([lam], n_workers=1)
    with pytest.raises(TypeError, match="objective 'lam' cannot be sent"):
        DaskEvaluator([lam], n_workers=1)


def test_empty_batch(pool):
    ev = pool(make_batch().subset(torch.tensor([], dtype=torch.long)))
    assert ev.values.shape == (0, 5) and ev.violation.shape == (0,)
