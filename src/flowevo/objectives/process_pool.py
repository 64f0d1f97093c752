"""Evaluate on a local process pool (``concurrent.futures.ProcessPoolExecutor``).

Workers are started with the ``spawn`` context by default (safe with torch's threads and
with CUDA in the parent), each limited to ``threads_per_worker`` torch threads, and warmed
up at start (objectives unpickled, imports done) so a chunk's deadline measures the chunk.
A chunk that passes its deadline gets its pool killed (``SIGKILL`` to every worker: a
``ProcessPoolExecutor`` cannot cancel one running task) and a fresh pool is started; the
other chunks that were running are resubmitted. See :mod:`flowevo.objectives.dispatch`.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from flowevo.objectives.base import Constraint, Objective
from flowevo.objectives.dispatch import ChunkedEvaluator, WorkerLost
from flowevo.objectives.payload import Payload
from flowevo.objectives.worker import ChunkResult, evaluate_chunk, init_worker, warm


class ProcessPoolEvaluator(ChunkedEvaluator):
    """Score candidates on ``n_workers`` local processes; a drop-in for ``LocalEvaluator``.

    Args:
        objectives: picklable objectives (module-level functions, dataclasses); else ``TypeError``.
        constraints: picklable constraints.
        n_workers: worker processes.
        chunk_size: candidates per task (default ``ceil(N / (4 * n_workers))``).
        timeout_s: per-candidate time limit in seconds, or None.
        retries: extra attempts for a single candidate whose worker timed out or died.
        start_method: ``"spawn"`` (default) or ``"forkserver"``; ``"fork"`` is refused (unsafe with torch).
        threads_per_worker: torch intra-op threads in each worker.
        startup_timeout_s: limit for starting and warming up the pool.

    Example:
        >>> with ProcessPoolEvaluator([my_objective], n_workers=2, timeout_s=5.0) as ev:  # doctest: +SKIP
        ...     evaluation = ev(candidates)
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        n_workers: int = 2,
        chunk_size: int | None = None,
        timeout_s: float | None = None,
        retries: int = 1,
        start_method: Literal["spawn", "forkserver"] = "spawn",
        threads_per_worker: int = 1,
        startup_timeout_s: float = 120.0,
    ) -> None:
        super().__init__(objectives, constraints, chunk_size, timeout_s, retries)
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got {n_workers}")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
        self.n_workers, self.threads_per_worker = int(n_workers), int(threads_per_worker)
        self.startup_timeout_s = startup_timeout_s
        self._context = multiprocessing.get_context(start_method)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pids: set[int] = set()
        self._issued: weakref.WeakKeyDictionary[cf.Future, cf.ProcessPoolExecutor] = weakref.WeakKeyDictionary()
        self._closed = False
        self.restarts = 0  # pools replaced after a timeout or a crash
        self.start()

    def start(self) -> None:
        """Start the pool and wait until every worker has loaded the objectives."""
        if self._closed:
            raise RuntimeError("this evaluator is closed")
        if self._pool is not None:
            return
        pool = cf.ProcessPoolExecutor(
            self.n_workers, mp_context=self._context, initializer=init_worker, initargs=(self.threads_per_worker,)
        )
        pids: set[int] = set()
        deadline = time.monotonic() + self.startup_timeout_s
        try:  # every worker must answer once: only then are all of them warm and known by pid
            while len(pids) < self.n_workers:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(pids)} of {self.n_workers} workers started in {self.startup_timeout_s} s")
                futures = [pool.submit(warm, self._blob, 0.05) for _ in range(self.n_workers)]
                pids.update(f.result(timeout=self.startup_timeout_s) for f in futures)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        self._pool, self._pids = pool, pids

    def close(self) -> None:
        """Shut the pool down and reap its workers (idempotent)."""
        self._closed = True
        self._stop_pool(kill=False)

    def _stop_pool(self, kill: bool, grace_s: float = 5.0) -> None:
        """Shut the pool down; kill its workers now (``kill``) or if they outlive ``grace_s``."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            self._kill_workers()
        closer = threading.Thread(target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True)
        closer.start()
        closer.join(None if kill else grace_s)
        if closer.is_alive():  # a worker is stuck in a task (e.g. after an interrupted call)
            self._kill_workers()
            closer.join()
        self._pids = set()

    def _kill_workers(self) -> None:
        for pid in self._pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- transport ---------------------------------------------------------------------------------
    def _slots(self) -> int:
        return self.n_workers

    def _submit(self, payload: Payload) -> cf.Future:
        if self._pool is None:
            self.restarts += 1
            self.start()
        assert self._pool is not None
        try:
            future = self._pool.submit(evaluate_chunk, self._blob, payload)
        except BrokenProcessPool:  # a worker died since the last chunk: replace the pool once
            self._stop_pool(kill=True)
            self.restarts += 1
            self.start()
            assert self._pool is not None
            future = self._pool.submit(evaluate_chunk, self._blob, payload)
        self._issued[future] = self._pool
        return future

    def _wait(self, futures: list[Any], timeout: float | None) -> list[Any]:
        return list(cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED).done)

    def _result(self, future: cf.Future) -> ChunkResult:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            if self._issued.get(future) is self._pool:
                self._stop_pool(kill=True)  # the next submit starts a fresh pool
            raise WorkerLost(f"worker process died: {exc}") from exc

    def _abandon(self, expired: list[Any], running: list[Any]) -> list[Any]:
        self._stop_pool(kill=True)
        return [f for f in running if f not in expired]
