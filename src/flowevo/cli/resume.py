"""``flowevo resume RUN_DIR``: continue a killed run from its last checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli import configured
from flowevo.cli.app import app
from flowevo.cli.common import device_or_fail, fail, guarded, logger, print_metrics

RESUME_DEVICE_HELP = ("Continue on this device (cpu, cuda, cuda:N; default: the run's). Same device type: identical to "
                      "an uninterrupted run; another: statistically equivalent (random draws re-seeded).")


@app.command("resume", epilog="Example: flowevo resume runs/toy")
def resume(
    run_dir: Path = typer.Argument(..., help="A run directory of flowevo optimize, flowevo cfo or demo toy (with its "
                                             "checkpoint.pt / checkpoints/round_<k>.pt)."),
    device: str | None = typer.Option(None, "--device", help=RESUME_DEVICE_HELP),
    backend: str | None = configured.evaluation_options()["backend"],
    workers: int | None = configured.evaluation_options()["workers"],
    address: str | None = configured.evaluation_options()["address"],
    timeout_s: float | None = configured.evaluation_options()["timeout_s"],
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Continue a killed run from its last checkpoint (optimize, cfo and toy demo runs); results equal an uninterrupted
    run."""
    from flowevo.demos.toy import resume_toy_demo
    from flowevo.workflows import is_cfo_run, is_optimize_run

    if device is not None:
        device_or_fail(device)
    if is_cfo_run(run_dir):
        if device is not None:
            fail(f"{run_dir}: a cfo run resumes on its own device (--device would change its result)")
        flags = configured.evaluation_flags(backend, workers, address, timeout_s, None, section="cfo")
        m = guarded(lambda: resume_cfo_run(run_dir, quiet, flags), quiet)
        from flowevo.cli.cfo import summary_rows

        print_metrics(m, as_json, f"resumed -> {run_dir}", summary_rows(m))
        return
    if is_optimize_run(run_dir):
        flags = {"optimize.device": device, **configured.evaluation_flags(backend, workers, address, timeout_s, None)}
        m = guarded(lambda: _resume_optimize(run_dir, quiet, flags), quiet)
    else:
        if any(v is not None for v in (backend, workers, address, timeout_s)):
            fail(f"{run_dir}: --backend/--workers/--address/--timeout-s apply to optimize runs only")
        m = guarded(lambda: resume_toy_demo(run_dir, show_progress=not quiet, device=device), quiet)
    print_metrics(m, as_json, f"resumed -> {run_dir}", [("evaluations", str(m["evaluations"])),
                                                         ("generations", str(m["generations"]))])


def resume_cfo_run(run_dir: Path, quiet: bool, flags: dict) -> dict:
    from flowevo.workflows import resume_cfo

    return resume_cfo(run_dir, show_progress=not quiet, log=logger(quiet), flags=flags)


def _resume_optimize(run_dir: Path, quiet: bool, flags: dict) -> dict:
    from flowevo.config import ConfigError
    from flowevo.workflows import resume_optimize

    try:
        return resume_optimize(run_dir, show_progress=not quiet, log=logger(quiet), flags=flags)
    except ConfigError as exc:
        fail(str(exc))
        raise  # unreachable
