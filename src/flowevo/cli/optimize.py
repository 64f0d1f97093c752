"""``flowevo optimize``: edit sources toward a target with residual-space evolution, write RUN_DIR and its report."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli import configured
from flowevo.cli.app import app
from flowevo.cli.common import device_option, device_or_fail, fail, guarded, logger, print_metrics

EXAMPLE = ("Example: flowevo optimize --model models/blobs --sources data/blobs_sources.npz --target 'class=3 values=2.5' "
           "--objective target_probability --objective examples/blob_objectives.py:brightness@max "
           "--constraint 'distance_to_source<=6' --run-dir runs/blobs")

OBJECTIVE_HELP = ("Repeatable. A built-in (distance_to_source, target_probability, target_label, target_value_error, "
                  "digits.target_probability, digits.thickness, ...), package.module:function, path/file.py:function "
                  "or 'cmd:PROGRAM ARGS {input}'; options after '@': min|max, per_item, name=N, role=R, key=value params. "
                  "Default: the judge's alignment + distance_to_source.")


@app.command("optimize", epilog=EXAMPLE)
def optimize(
    model: Path | None = typer.Option(None, help="MODEL_DIR written by flowevo train, or path/file.py:factory "
                                                    "returning your own adapted flow (see the README)."),
    sources: Path | None = typer.Option(None, help=".npz of samples to edit: x, and their own c and/or v."),
    target: str | None = typer.Option(None, help="Target condition: a class id (2), values=0.5,1.0, or 'class=2 values=0.5'."),
    objective: list[str] | None = typer.Option(None, "--objective", help=OBJECTIVE_HELP),
    constraint: list[str] | None = typer.Option(None, "--constraint",
                                                help="Repeatable. SPEC<=BOUND or SPEC>=BOUND (SPEC as for --objective)."),
    run_dir: Path | None = typer.Option(None, help="Where to write results, checkpoints and report.html."),
    config_file: Path | None = configured.config_option(),
    rows: int | None = typer.Option(None, help="Edit only the first ROWS sources."),
    generations: int | None = typer.Option(None, help="Generations of evolution (default 15)."),
    population: int | None = typer.Option(None, help="Residuals kept per source (default 16)."),
    cross_rate: float | None = typer.Option(None, help="Share of offspring made by cross-pollination (default 0.3)."),
    strategy: str | None = typer.Option(None, help="Search method: reo (default), cma, nsga2, bo or random; the "
                                                      "baselines get REO's evaluations per source."),
    prescreen: int | None = typer.Option(None, help="REO: children decoded and ranked by a surrogate per child "
                                                       "evaluated (default 1: off)."),
    init: str | None = typer.Option(None, help="REO's generation 0: own (default: each source's own residual) or "
                                                  "ranked (a seed pool ranked by the flow's reading of the target "
                                                  "class; class targets)."),
    solver_steps: int | None = typer.Option(None, help="ODE steps for inversion and decoding (default 10)."),
    strength: float | None = typer.Option(None, help="Edit strength in (0, 1]: invert only to t = 1 - strength."),
    seed: int | None = typer.Option(None, help="Run seed (same seed, same result)."),
    report: bool | None = typer.Option(None, "--report/--no-report", help="Write report.html at the end (default: on)."),
    backend: str | None = configured.evaluation_options()["backend"],
    workers: int | None = configured.evaluation_options()["workers"],
    address: str | None = configured.evaluation_options()["address"],
    timeout_s: float | None = configured.evaluation_options()["timeout_s"],
    cache: bool | None = configured.evaluation_options()["cache"],
    device: str | None = device_option(None),
    sets: list[str] | None = configured.set_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Edit each source toward the target with black-box objectives and constraints (a Pareto set per source).

    Checkpoints every generation (flowevo resume RUN_DIR continues a killed run).
    """
    from flowevo.config import ConfigError
    from flowevo.config.flags import parse_constraint_flag, parse_objective_flag, parse_target_flag
    from flowevo.workflows import run_optimize

    try:
        flags = {
            "optimize.model": None if model is None else str(model),
            "optimize.sources": None if sources is None else str(sources),
            "optimize.run_dir": None if run_dir is None else str(run_dir),
            "optimize.target": None if target is None else parse_target_flag(target),
            "optimize.objectives": [parse_objective_flag(o) for o in objective] if objective else None,
            "optimize.constraints": [parse_constraint_flag(c) for c in constraint] if constraint else None,
            "optimize.rows": rows, "optimize.generations": generations, "optimize.population": population,
            "optimize.cross_rate": cross_rate, "optimize.strategy": strategy, "optimize.prescreen": prescreen,
            "optimize.init": init,
            "optimize.solver_steps": solver_steps, "optimize.strength": strength,
            "optimize.report": report, "optimize.device": device, "seed": seed,
            **configured.evaluation_flags(backend, workers, address, timeout_s, cache),
        }
    except ConfigError as exc:
        fail(str(exc))
    cfg = configured.load(config_file, sets, flags)
    device_or_fail(cfg.optimize.device)
    m = guarded(lambda: run_optimize(cfg, show_progress=not quiet, log=logger(quiet)), quiet)
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    rows_out = [(f"{o['name']} ({o['sense']}): mean best, start -> end", f"{fmt(a)} -> {fmt(b)}")
                for o, a, b in zip(m["objectives"], m["initial_mean_best"], m["final_mean_best"])]
    rows_out += [("sources with a feasible edit", f"{m['rows_feasible']:.0%}"),
                 ("Pareto points per source", f"{m['pareto_points_per_row']:.1f}"),
                 ("evaluations / failures", f"{m['evaluations']} / {m['failures']}"),
                 ("wall time", f"{m['wall_s']:.1f} s")]
    print_metrics(m, as_json, f"optimize -> {m.get('report', m['run_dir'])}", rows_out)
