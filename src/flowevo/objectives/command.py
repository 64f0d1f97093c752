"""An external program as a black-box objective: one process per candidate, no shell.

Protocol (what the program sees and must answer):

- **input**: each candidate is written to a temporary file whose path replaces ``{input}`` in
  ``argv``. ``payload_format``:

  - ``"npz"``: ``numpy.load(path)`` gives ``x`` (the candidate, shape ``D``), ``index`` (its
    position in the batch), ``row`` (its task row) and, when present, ``source`` (shape ``D``),
    ``target_labels`` / ``target_values`` (its target ``Condition``) or ``target`` (a tensor target);
  - ``"json"``: ``{"x": [...], "index": i, "row": r, "source": [...]}`` (nested lists; for vectors);
  - ``"cif"``: the pymatgen ``Structure`` in ``Candidates.extra["structures"][i]``, written as CIF.

- **output**: the last non-empty line of stdout is read as JSON: a bare number (``1.23``) or an
  object with a numeric ``"score"`` (``{"score": 1.23, ...}``). Anything before it (logs) is ignored.

A candidate fails, with a reason naming it, when the program exits non-zero, runs past
``timeout_s`` (its whole process group is killed), or prints no readable score; the other
candidates keep their scores (the objective raises :class:`PartialFailure`). Up to
``max_parallel`` candidates of a batch run at once.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from flowevo.jsonio import write_json
from flowevo.objectives.base import Candidates, PartialFailure, Sense

PayloadFormat = Literal["npz", "json", "cif"]


@dataclass(frozen=True)
class CommandObjective:
    """Score each candidate by running ``argv`` (no shell) and reading a JSON score from stdout.

    Args:
        name: objective name.
        sense: ``"min"`` or ``"max"``.
        argv: program and arguments; ``"{input}"`` inside any argument is replaced by the file path.
        timeout_s: wall-clock limit per candidate; past it the process group is killed.
        payload_format: ``"npz"``, ``"json"`` or ``"cif"`` (see the module docstring).
        max_parallel: candidates run concurrently within one batch.
        env: extra environment variables for the program (added to this process's environment).

    Example:
        >>> obj = CommandObjective("energy", "min", [sys.executable, "score.py", "{input}"], timeout_s=30)  # doctest: +SKIP
    """

    name: str
    sense: Sense
    argv: tuple[str, ...] | list[str]
    timeout_s: float
    payload_format: PayloadFormat = "npz"
    max_parallel: int = 1
    env: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.sense not in ("min", "max"):
            raise ValueError(f"objective {self.name!r}: sense must be 'min' or 'max', got {self.sense!r}")
        if isinstance(self.argv, str) or not self.argv:
            raise ValueError("argv must be a non-empty list of strings (no shell is used)")
        if not any("{input}" in a for a in self.argv):
            raise ValueError("argv must contain '{input}' where the candidate file path goes")
        if self.payload_format not in ("npz", "json", "cif"):
            raise ValueError(f"payload_format must be 'npz', 'json' or 'cif', got {self.payload_format!r}")
        if not self.timeout_s > 0 or self.max_parallel < 1:
            raise ValueError("timeout_s must be > 0 and max_parallel >= 1")
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    def __call__(self, candidates: Candidates) -> Tensor:
        """``(N,)`` scores; raises :class:`PartialFailure` naming each candidate that failed."""
        n = len(candidates)
        values = torch.full((n,), math.nan, dtype=torch.float64)
        errors: dict[int, str] = {}
        with tempfile.TemporaryDirectory(prefix="flowevo-cmd-") as tmp:
            paths = [Path(tmp) / f"candidate_{i}.{self.payload_format}" for i in range(n)]
            jobs = []
            for i, path in enumerate(paths):
                try:
                    self._write(candidates, i, path)
                    jobs.append(i)
                except Exception as exc:
                    errors[i] = f"candidate {i}: could not write {self.payload_format} input ({type(exc).__name__}: {exc})"
            with ThreadPoolExecutor(max_workers=min(self.max_parallel, max(1, len(jobs)))) as pool:
                for i, (score, err) in zip(jobs, pool.map(lambda j: self._run(paths[j]), jobs)):
                    if err is None:
                        values[i] = score
                    else:
                        errors[i] = f"candidate {i} (row {int(candidates.source_index[i])}): {err}"
        if errors:
            raise PartialFailure(values, errors)
        return values

    # -- one candidate ----------------------------------------------------------------------------
    def _write(self, b: Candidates, i: int, path: Path) -> None:
        if self.payload_format == "cif":
            structures = b.extra.get("structures")
            if structures is None:
                raise ValueError("payload_format 'cif' needs Candidates.extra['structures'] (pymatgen Structures)")
            from pymatgen.io.cif import CifWriter  # lazy: pymatgen is an optional dependency

            CifWriter(structures[i]).write_file(str(path))
            return
        x = b.x[i].detach().cpu().numpy()
        src = None if b.sources is None else b.sources[i].detach().cpu().numpy()
        row = int(b.source_index[i])
        if self.payload_format == "json":
            record = {"x": x.tolist(), "index": i, "row": row}
            if src is not None:
                record["source"] = src.tolist()
            write_json(path, record, indent=None)
            return
        arrays = {"x": x, "index": np.array(i), "row": np.array(row)}
        if src is not None:
            arrays["source"] = src
        target = b.target[i] if b.target is not None and hasattr(b.target, "__getitem__") else None
        if isinstance(target, Tensor):
            arrays["target"] = target.detach().cpu().numpy()
        for part in ("labels", "values"):
            t = getattr(target, part, None)
            if isinstance(t, Tensor):
                arrays[f"target_{part}"] = t.detach().cpu().numpy()[0]
        with path.open("wb") as fh:
            np.savez(fh, **arrays)

    def _run(self, path: Path) -> tuple[float, str | None]:
        argv = [a.replace("{input}", str(path)) for a in self.argv]
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                text=True, env=env, start_new_session=True,  # own process group: the kill reaches children
            )
        except OSError as exc:
            return math.nan, f"could not start {argv[0]!r} ({exc})"
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return math.nan, f"timed out after {self.timeout_s:g} s (process group killed)"
        if proc.returncode != 0:
            return math.nan, f"exited with code {proc.returncode}; stderr: {_tail(err)}"
        try:
            return parse_score(out), None
        except ValueError as exc:
            return math.nan, str(exc)


def parse_score(stdout: str) -> float:
    """Read the score from a program's stdout (last non-empty line: a number or ``{"score": n}``)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("printed nothing on stdout (expected a JSON number or {\"score\": ...})")
    try:
        obj = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise ValueError(f"last stdout line is not JSON: {_tail(lines[-1])}") from None
    if isinstance(obj, dict):
        obj = obj.get("score")
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        raise ValueError(f"no numeric score in stdout line: {_tail(lines[-1])}")
    if not math.isfinite(obj):
        raise ValueError(f"score is not finite: {obj}")
    return float(obj)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild holds the pipes open: stop reading them
        proc.kill()
        proc.wait()


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else "..." + text[-limit:])
