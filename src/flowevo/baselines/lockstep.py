"""Batch the fitness calls of per-source optimisers that evaluate one candidate at a time.

Some optimisers (e.g. pycma's ``cma.fitness_models.SurrogatePopulation``) call their fitness
function candidate by candidate and decide adaptively how many to evaluate. :class:`Lockstep`
runs one such *program* per source, each in its own thread, **one thread at a time**: every live
program runs until it asks for a fitness value (or ends); then all the asked candidates are
evaluated together (one decode and one black-box call for all sources) and every program resumes
with its value. Only one thread runs at any moment, so the interleaving, and therefore any use
of global random state, is the same on every run: same seed, same result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Lockstep", "OutOfBudget"]


class OutOfBudget(Exception):
    """Raised inside a program by its fitness function once its source's budget is spent."""


Program = Callable[[Callable[[Any], float]], None]


class Lockstep:
    """Run ``programs[b](fitness)`` for every source ``b`` with batched fitness calls.

    Args:
        programs: one callable per source; each receives its ``fitness(x) -> float`` and loops
            (ask / evaluate / tell) until its fitness raises :class:`OutOfBudget`, which ends it.
        budget: fitness calls allowed per source; the next call raises :class:`OutOfBudget`.
    """

    def __init__(self, programs: list[Program], budget: int) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        self.programs, self.budget = programs, budget
        n = len(programs)
        self._go = [threading.Semaphore(0) for _ in range(n)]
        self._back = threading.Semaphore(0)
        self._request: list[Any] = [None] * n
        self._pending = [False] * n
        self._value = [0.0] * n
        self._done = [False] * n
        self._error: list[BaseException | None] = [None] * n
        self.calls = [0] * n

    def _fitness(self, b: int) -> Callable[[Any], float]:
        def fitness(x: Any) -> float:
            if self.calls[b] >= self.budget:
                raise OutOfBudget
            self.calls[b] += 1
            self._request[b], self._pending[b] = x, True
            self._back.release()
            self._go[b].acquire()
            return self._value[b]

        return fitness

    def _thread(self, b: int) -> None:
        self._go[b].acquire()
        try:
            self.programs[b](self._fitness(b))
        except OutOfBudget:
            pass
        except BaseException as exc:  # re-raised by run()
            self._error[b] = exc
        finally:
            self._done[b] = True
            self._back.release()

    def run(self, evaluate: Callable[[list[int], list[Any]], list[float]]) -> None:
        """Drive every program to its end; ``evaluate(rows, xs) -> values`` scores each round's requests
        (at most one per source, in source order)."""
        threads = [threading.Thread(target=self._thread, args=(b,), daemon=True) for b in range(len(self.programs))]
        for t in threads:
            t.start()
        live = list(range(len(self.programs)))
        try:
            while live:
                for b in live:  # one thread at a time: b runs until it asks or ends
                    self._go[b].release()
                    self._back.acquire()
                    if self._error[b] is not None:
                        raise self._error[b]
                rows = [b for b in live if self._pending[b]]
                live = [b for b in live if not self._done[b]]
                if not rows:
                    continue
                values = evaluate(rows, [self._request[b] for b in rows])
                for b, v in zip(rows, values):
                    self._value[b], self._pending[b] = float(v), False
        finally:
            for b in range(len(self.programs)):  # unblock any thread left waiting (error path)
                if not self._done[b]:
                    self.calls[b] = self.budget
                    self._go[b].release()
            for t in threads:
                t.join(timeout=5)
