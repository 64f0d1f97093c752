"""Progress bars for long work (rich, on stderr so ``--json`` output stays clean), silent when disabled or
when ``FLOWEVO_QUIET=1``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def quiet() -> bool:
    """True when progress output is switched off for this process (``FLOWEVO_QUIET=1``)."""
    return os.environ.get("FLOWEVO_QUIET", "") not in ("", "0")


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n, **fields)``; shows a bar with the latest fields (e.g. ``loss=0.1``)."""
    if not enabled or quiet():
        yield lambda n=1, **fields: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields: float) -> None:
            info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task, advance=n, info=info)

        yield advance
