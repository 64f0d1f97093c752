"""A user's objectives for the evaluation-backend tests, imported by path in the workers ("<this file>:<name>").

``staggered`` makes the chunk holding row 0 the slowest, so on two workers chunks submitted after it
finish first; it logs when each call started and finished, to prove that the order was mixed.
"""

import os
import time


def lift(candidates):
    """Vectorised: the 4th feature (maximise it)."""
    return candidates.x[:, 3].double()


def staggered(log: str, delay: float = 0.3):
    """Factory: ``|x_0 - 1|``, sleeping ``delay`` s on chunks that hold row 0; appends ``start end pid`` to ``log``."""

    def score(candidates):
        start = time.monotonic()
        if bool((candidates.source_index == 0).any()):
            time.sleep(delay)
        with open(log, "a") as fh:
            fh.write(f"{start:.6f} {time.monotonic():.6f} {os.getpid()}\n")
        return (candidates.x[:, 0] - 1.0).abs().double()

    return score


def overtaken(log: str) -> int:
    """Calls that started after another one and finished before it (batches never overlap, so both are in one batch)."""
    calls = [tuple(map(float, line.split()[:2])) for line in open(log).read().splitlines() if line.strip()]
    return sum(1 for a in calls for b in calls if a[0] < b[0] and b[1] < a[1])
