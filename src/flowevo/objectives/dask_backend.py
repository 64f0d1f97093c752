"""Evaluate on Dask distributed: a private ``LocalCluster`` on 127.0.0.1, or a scheduler by address.

The cluster started here binds only to 127.0.0.1, has no dashboard, runs ``n_workers``
worker processes (each under a nanny) with ``threads_per_worker`` threads. With ``address``
the evaluator joins an existing scheduler instead (e.g. one started by dask-jobqueue) and
leaves it running on :meth:`DaskEvaluator.close`. The client is never made Dask's default.

A chunk that passes its deadline is cancelled and its worker replaced (Dask cannot stop a
running task otherwise): on the local cluster the worker process is killed (``SIGKILL``) and
its nanny starts a fresh one; on a joined cluster the worker is restarted through its nanny
(``Client.restart_workers``, which first waits a few seconds for a graceful exit). Workers
without a nanny cannot be restarted: the chunk is still abandoned, but its thread stays busy.
See :mod:`flowevo.objectives.dispatch` for timeouts, retries and failure isolation.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Sequence
from typing import Any

from flowevo.objectives.base import Constraint, Objective
from flowevo.objectives.dispatch import ChunkedEvaluator, WorkerLost
from flowevo.objectives.payload import Payload
from flowevo.objectives.worker import ChunkResult, evaluate_chunk, warm


class DaskEvaluator(ChunkedEvaluator):
    """Score candidates on a Dask cluster; a drop-in for ``LocalEvaluator``.

    Args:
        objectives: picklable objectives (module-level functions, dataclasses); else ``TypeError``.
        constraints: picklable constraints.
        address: scheduler address (``"tcp://host:port"``) to join; None starts a local cluster.
        n_workers: worker processes of the local cluster (ignored with ``address``).
        threads_per_worker: threads per local worker (keep 1 for CPU-bound Python objectives).
        chunk_size: candidates per task (default ``ceil(N / (4 * total threads))``).
        timeout_s: per-candidate time limit in seconds, or None.
        retries: extra attempts for a single candidate whose worker timed out or died.
        startup_timeout_s: limit for starting / joining the cluster and restarting a worker.

    Example:
        >>> with DaskEvaluator([my_objective], n_workers=2, timeout_s=5.0) as ev:  # doctest: +SKIP
        ...     evaluation = ev(candidates)
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        address: str | None = None,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        chunk_size: int | None = None,
        timeout_s: float | None = None,
        retries: int = 1,
        startup_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(objectives, constraints, chunk_size, timeout_s, retries)
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("DaskEvaluator needs dask.distributed: pip install 'flowevo[distributed]'") from exc
        if n_workers < 1 or threads_per_worker < 1:
            raise ValueError("n_workers and threads_per_worker must be >= 1")
        self.address, self.startup_timeout_s = address, startup_timeout_s
        self.cluster: Any = None
        self.n_workers = n_workers
        self._pids: dict[str, int] = {}
        self.restarts = 0  # workers restarted after a timeout
        self._done: queue.Queue = queue.Queue()
        if address is None:
            self.cluster = LocalCluster(
                n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                host="127.0.0.1", dashboard_address=None,
                # no dashboard; the scheduler's small HTTP server (health, metrics) on a free loopback port
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            )
            address = self.cluster.scheduler_address
        try:
            self.client: Any = Client(address, set_as_default=False, timeout=startup_timeout_s)
            self.client.wait_for_workers(n_workers if self.cluster is not None else 1, timeout=startup_timeout_s)
            self._pids = self.client.run(warm, self._blob)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the client, and the cluster if this evaluator started it (idempotent)."""
        client, self.client = getattr(self, "client", None), None
        cluster, self.cluster = self.cluster, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    # -- transport ---------------------------------------------------------------------------------
    def _live_client(self) -> Any:
        if self.client is None:
            raise RuntimeError("this evaluator is closed")
        return self.client

    def _slots(self) -> int:
        return sum(self._live_client().nthreads().values())

    def _submit(self, payload: Payload) -> Any:
        future = self._live_client().submit(evaluate_chunk, self._blob, payload, pure=False)
        future.add_done_callback(self._done.put)
        return future

    def _wait(self, futures: list[Any], timeout: float | None) -> list[Any]:
        keys = {f.key: f for f in futures}
        done: dict[str, Any] = {}
        try:
            first = self._done.get(timeout=timeout)
            while True:  # drain everything that is finished; skip abandoned futures
                if first.key in keys:
                    done[first.key] = keys[first.key]
                first = self._done.get_nowait()
        except queue.Empty:
            pass
        return list(done.values())

    def _result(self, future: Any) -> ChunkResult:
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError

        try:
            return future.result()
        except (KilledWorker, CommClosedError, OSError) as exc:
            raise WorkerLost(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            if future.status == "cancelled":
                raise WorkerLost(f"task cancelled: {exc}") from exc
            raise

    def _abandon(self, expired: list[Any], running: list[Any]) -> list[Any]:
        client = self._live_client()
        expired_keys = {f.key for f in expired}
        workers = [w for w, keys in client.processing().items() if expired_keys & set(keys)]
        busy = {k for w in workers for k in client.processing(workers=[w]).get(w, ())}
        collateral = [f for f in running if f.key in busy and f.key not in expired_keys]
        client.cancel(list(expired) + collateral)
        if not workers:
            return collateral
        if self.cluster is not None:  # our own cluster: every worker is a local process
            for w in workers:
                try:
                    os.kill(self._pids[w], signal.SIGKILL)
                except (KeyError, ProcessLookupError):
                    pass
            self._await_workers(gone=set(workers))
        else:
            try:
                client.restart_workers(workers, timeout=self.startup_timeout_s, raise_for_error=False)
            except ValueError:  # workers without a nanny cannot be restarted
                return collateral
        self.restarts += len(workers)
        self._pids = client.run(warm, self._blob)
        return collateral

    def _await_workers(self, gone: set[str]) -> None:
        """Wait until the killed workers have left and the nannies' replacements have joined."""
        client, deadline = self._live_client(), time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            workers = set(client.nthreads())
            if not workers & gone and len(workers) >= self.n_workers:
                return
            time.sleep(0.05)
        raise TimeoutError(f"workers were not replaced within {self.startup_timeout_s} s")
