"""Chunked remote evaluation with per-candidate timeouts and bounded retries.

:class:`ChunkedEvaluator` is the shared loop of the process-pool and Dask backends. A batch
of N candidates is cut into chunks; at most one chunk per worker slot is in flight, so a
chunk starts when it is submitted and its deadline (``timeout_s`` x its size) is honest.

What can go wrong with a chunk, and what happens:

- an objective raises / returns NaN or a wrong shape: handled inside the worker exactly as
  :class:`~flowevo.objectives.evaluator.LocalEvaluator` does (only those candidates fail);
- the chunk passes its deadline: its worker is killed and replaced (never waited for), the
  chunk is split into single candidates and resubmitted, so one hanging candidate cannot
  sink its neighbours; a single candidate that times out is retried up to ``retries`` times
  and then recorded as a :class:`Failure` (other chunks lost with the killed worker are
  resubmitted at no cost to their retries);
- the worker dies (crash, OOM kill): the same split / retry path;
- anything else raised by the machinery (e.g. a worker cannot import an objective's module):
  every candidate of the chunk fails with that error, without retries.

Failures from the last two cases name every callable (``"a, b, c"``): the parent cannot tell
which one was running. A crash charges every chunk that was running with it (the pool cannot
tell which chunk crashed its worker), which ``retries`` absorbs.
"""

from __future__ import annotations

import math
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from flowevo.objectives.base import Candidates, Constraint, Objective
from flowevo.objectives.evaluator import Evaluation, Failure, assemble, check_callables
from flowevo.objectives.payload import Payload, to_payload
from flowevo.objectives.worker import ChunkResult, pickle_callables


class WorkerLost(Exception):
    """A chunk's worker died or was killed before answering; the chunk may be retried."""


@dataclass
class _Chunk:
    start: int
    stop: int
    attempts: int = 0

    def __len__(self) -> int:
        return self.stop - self.start


class ChunkedEvaluator:
    """Base of the remote evaluators: same ``__call__(Candidates) -> Evaluation`` as LocalEvaluator.

    Subclasses provide the transport: ``_slots``, ``_submit``, ``_wait``, ``_result``, ``_abandon``.

    Args:
        objectives: picklable objectives (at least one).
        constraints: picklable constraints.
        chunk_size: candidates per task; default ``ceil(N / (4 * slots))``.
        timeout_s: per-candidate time limit in seconds (a chunk of n gets ``n * timeout_s``); None: no limit.
        retries: extra attempts for a single candidate whose worker timed out or died.
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        constraints: Sequence[Constraint] = (),
        chunk_size: int | None = None,
        timeout_s: float | None = None,
        retries: int = 1,
    ) -> None:
        self.objectives, self.constraints = check_callables(objectives, constraints)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.chunk_size, self.timeout_s, self.retries = chunk_size, timeout_s, int(retries)
        self._blob = pickle_callables(self.objectives, self.constraints)
        self._names = [o.name for o in self.objectives] + [c.name for c in self.constraints]

    # -- transport, provided by subclasses ------------------------------------------------------
    def _slots(self) -> int:
        """How many chunks may run at once (worker processes or threads)."""
        raise NotImplementedError

    def _submit(self, payload: Payload) -> Any:
        """Start scoring one chunk; return a future."""
        raise NotImplementedError

    def _wait(self, futures: list[Any], timeout: float | None) -> list[Any]:
        """Block until one of ``futures`` is done or ``timeout`` passes; return the done ones."""
        raise NotImplementedError

    def _result(self, future: Any) -> ChunkResult:
        """The chunk's result; raise :class:`WorkerLost` if its worker died."""
        raise NotImplementedError

    def _abandon(self, expired: list[Any], running: list[Any]) -> list[Any]:
        """Kill the workers of ``expired`` futures; return other ``running`` futures lost with them."""
        raise NotImplementedError

    # -- the loop ---------------------------------------------------------------------------------
    def __call__(self, batch: Candidates) -> Evaluation:
        n, m = len(batch), len(self.objectives)
        table = np.full((n, len(self._names)), math.nan)
        failures: list[Failure] = []
        if n:
            self._dispatch(batch, table, failures)
        order = {name: k for k, name in enumerate(self._names)}
        failures.sort(key=lambda f: (order.get(f.name, len(order)), f.index))
        t = torch.from_numpy(table)
        return assemble(t[:, :m], t[:, m:], self.constraints, failures)

    def _dispatch(self, batch: Candidates, table: np.ndarray, failures: list[Failure]) -> None:
        n, slots = len(batch), max(1, self._slots())
        size = self.chunk_size or max(1, math.ceil(n / (4 * slots)))
        pending = deque(_Chunk(s, min(s + size, n)) for s in range(0, n, size))
        running: dict[Any, tuple[_Chunk, float]] = {}
        while pending or running:
            while pending and len(running) < slots:
                chunk = pending.popleft()
                future = self._submit(to_payload(batch.subset(torch.arange(chunk.start, chunk.stop))))
                running[future] = (chunk, time.monotonic() + self._budget(chunk))
            deadline = min(d for _, d in running.values())
            wait_s = None if math.isinf(deadline) else max(0.0, deadline - time.monotonic())
            for future in self._wait(list(running), wait_s):
                chunk, _ = running.pop(future)
                try:
                    res = self._result(future)
                except WorkerLost as exc:
                    self._lost(chunk, f"worker lost ({exc})", pending, batch, failures)
                except Exception as exc:  # the machinery itself failed: no retry helps
                    self._fail(chunk, _describe(exc), batch, failures)
                else:
                    table[chunk.start:chunk.stop] = res.values
                    failures.extend(
                        Failure(chunk.start + i, int(batch.source_index[chunk.start + i]), name, err)
                        for i, name, err in res.failures
                    )
            now = time.monotonic()
            expired = [f for f, (_, d) in running.items() if d <= now]
            if expired:
                collateral = self._abandon(expired, list(running))
                for future in expired:
                    chunk, _ = running.pop(future)
                    why = f"timed out after {self._budget(chunk):.3g} s (limit {self.timeout_s:g} s per candidate); worker killed"
                    self._lost(chunk, why, pending, batch, failures)
                for future in collateral:
                    if future in running:
                        pending.appendleft(running.pop(future)[0])

    def _budget(self, chunk: _Chunk) -> float:
        return math.inf if self.timeout_s is None else self.timeout_s * len(chunk)

    def _lost(self, chunk: _Chunk, why: str, pending: deque, batch: Candidates, failures: list[Failure]) -> None:
        if len(chunk) > 1:  # isolate the culprit: retry its candidates one by one
            pending.extend(_Chunk(i, i + 1) for i in range(chunk.start, chunk.stop))
        elif chunk.attempts < self.retries:
            chunk.attempts += 1
            pending.append(chunk)
        else:
            tries = f" (after {chunk.attempts + 1} attempts)" if chunk.attempts else ""
            self._fail(chunk, why + tries, batch, failures)

    def _fail(self, chunk: _Chunk, why: str, batch: Candidates, failures: list[Failure]) -> None:
        name = ", ".join(self._names)  # which callable was running is unknown to the parent
        failures.extend(Failure(i, int(batch.source_index[i]), name, why) for i in range(chunk.start, chunk.stop))

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self) -> ChunkedEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"
