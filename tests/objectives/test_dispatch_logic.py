"""The chunk / timeout / split / retry loop of ChunkedEvaluator, on threads (no processes)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any

import pytest
import torch

from flowevo.objectives import Candidates, ChunkedEvaluator, FunctionObjective
from flowevo.objectives.dispatch import WorkerLost
from flowevo.objectives.worker import evaluate_chunk


class Gate:
    """Releases hanging threads in the order they arrived, one per :meth:`release` ("kills" the oldest).

    A semaphore would let a thread that arrives after a release (the retry of the culprit) take the permit meant for
    the thread being killed: under load that race failed this test."""

    def __init__(self) -> None:
        self.cond, self.arrived, self.released = threading.Condition(), 0, 0

    def wait(self, timeout: float) -> None:
        with self.cond:
            self.arrived += 1
            ticket = self.arrived
            self.cond.wait_for(lambda: self.released >= ticket, timeout=timeout)

    def release(self) -> None:
        with self.cond:
            self.released += 1
            self.cond.notify_all()


GATE = Gate()  # released once per abandoned chunk holding 7


class Killed(BaseException):
    """Ends a released thread (not an Exception, so the failure isolation does not catch it)."""


def stuck_on_seven(b: Candidates) -> torch.Tensor:
    """Blocks (until released) when a candidate equals 7."""
    if (b.x[:, 0] == 7).any():
        GATE.wait(timeout=30)
        raise Killed
    return b.x[:, 0].double()


def crash_on_three(b: Candidates) -> torch.Tensor:
    """Marker objective: the fake transport reports a lost worker for chunks holding 3."""
    return b.x[:, 0].double()


class ThreadEvaluator(ChunkedEvaluator):
    """Transport on a thread pool; 'killing' releases the blocked thread."""

    def __init__(self, *args: Any, crash: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = cf.ThreadPoolExecutor(2)
        self.submitted: list[int] = []
        self.holds_seven: dict[cf.Future, bool] = {}
        self.abandoned = 0
        self.crash = crash

    def _slots(self) -> int:
        return 2

    def _submit(self, payload):
        self.submitted.append(len(payload))
        if self.crash and (payload.x.data[:, 0] == 3).any():
            f: cf.Future = cf.Future()
            f.set_exception(WorkerLost("segfault"))
            return f
        future = self.pool.submit(evaluate_chunk, self._blob, payload)
        self.holds_seven[future] = bool((payload.x.data[:, 0] == 7).any())
        return future

    def _wait(self, futures, timeout):
        return list(cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED).done)

    def _result(self, future):
        return future.result()

    def _abandon(self, expired, running):
        self.abandoned += 1
        for future in expired:  # release only threads that block: a slow chunk under load must not leave a permit
            if self.holds_seven.get(future, False):
                GATE.release()
        return []

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _batch(n: int = 10) -> Candidates:
    return Candidates(x=torch.arange(n, dtype=torch.float32)[:, None], source_index=torch.arange(n))


def test_timeout_splits_chunk_and_fails_only_the_culprit():
    with ThreadEvaluator([FunctionObjective("s", "min", stuck_on_seven)], chunk_size=4, timeout_s=2.0, retries=1) as ev:
        out = ev(_batch())
    assert out.failed.tolist() == [i == 7 for i in range(10)]
    assert out.values[[0, 5, 9], 0].tolist() == [0.0, 5.0, 9.0]
    # chunks [0:4] [4:8] [8:10]; [4:8] times out and is split; 7 is retried once: 2 timeouts
    assert ev.abandoned == 3 and ev.submitted == [4, 4, 2, 1, 1, 1, 1, 1]
    (failure,) = out.failures
    assert (failure.index, failure.name) == (7, "s") and "timed out" in failure.error and "after 2 attempts" in failure.error


def test_lost_worker_is_retried_then_recorded():
    with ThreadEvaluator([FunctionObjective("c", "min", crash_on_three)], chunk_size=5, retries=2, crash=True) as ev:
        out = ev(_batch())
    assert out.failed.tolist() == [i == 3 for i in range(10)]
    assert ev.submitted == [5, 5, 1, 1, 1, 1, 1, 1, 1]  # split, then 3 tried 1 + 2 times
    assert "worker lost (segfault) (after 3 attempts)" in out.failures[0].error


def test_invalid_settings():
    obj = [FunctionObjective("c", "min", crash_on_three)]
    for kwargs in ({"chunk_size": 0}, {"timeout_s": 0.0}, {"retries": -1}):
        with pytest.raises(ValueError):
            ThreadEvaluator(obj, **kwargs)
