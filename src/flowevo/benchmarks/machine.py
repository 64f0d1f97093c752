"""What a timing was measured on: cores, threads, BLAS, CPU model, load, and the command.

Every timing benchmark records :func:`machine_info` at its start and :func:`load_average`
at its end, so a figure measured on a busy machine says so.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str | None:
    """The CPU model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def blas_config() -> dict:
    """BLAS / LAPACK / MKL / OpenMP lines of ``torch.__config__`` (build and parallel info)."""
    show = torch.__config__.show()
    flags = dict(re.findall(r"(BLAS_INFO|LAPACK_INFO|USE_MKL|USE_MKLDNN|USE_OPENMP|PERF_WITH_AVX2?)=([^,\s]*)", show))
    lines = [ln.strip(" -") for ln in show.splitlines()
             if re.search(r"MKL|OpenMP|oneDNN|CPU capability|LAPACK is", ln) and "Build settings" not in ln]
    parallel = [ln.strip() for ln in torch.__config__.parallel_info().splitlines() if ln.strip() and not ln.startswith("-")]
    return {"blas": flags.get("BLAS_INFO"), "lapack": flags.get("LAPACK_INFO"), "build_flags": flags,
            "build_lines": lines, "parallel_info": parallel}


def git_commit() -> str | None:
    """The checkout's commit (with ``+dirty`` when tracked files differ), or None outside git."""
    root = Path(__file__).resolve().parents[3]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(command: str | None = None) -> dict:
    """Cores, torch threads, BLAS/MKL config, CPU model, load average now, and the command that runs."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ.get(k) for k in _THREAD_VARS},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **blas_config(),
        "git_commit": git_commit(),
        "load_average_start": load_average(),
        "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
