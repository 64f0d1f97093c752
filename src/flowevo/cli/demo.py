"""``flowevo demo ...``: short end-to-end runs that write a run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from flowevo.cli.app import demo_app
from flowevo.cli.common import device_option, device_or_fail, guarded, logger, print_metrics


@demo_app.command("toy", epilog="Example: flowevo demo toy --run-dir runs/toy --seed 1")
def demo_toy(
    run_dir: Path = typer.Option(Path("runs/toy"), help="Where to write results."),
    seed: int = typer.Option(0, help="Run seed (same seed, same result)."),
    generations: int = typer.Option(15, min=1, help="Generations of evolution."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Edit 2-D toy samples from class 0 toward a goal in class 2 (two objectives) and plot it."""
    from flowevo.demos.toy import run_toy_demo

    m = guarded(lambda: run_toy_demo(run_dir, seed=seed, generations=generations, device=device_or_fail(device),
                                      show_progress=not quiet), quiet)
    print_metrics(m, as_json, f"toy demo -> {run_dir}", [
        ("evaluations", str(m["evaluations"])),
        ("distance to goal (mean best): start -> end", f"{m['initial_mean_best'][0]:.3f} -> {m['final_mean_best'][0]:.3f}"),
        ("Pareto points per source", f"{m['pareto_points_per_row']:.1f}"),
        ("wall time", f"{m['wall_s']:.1f} s"),
    ])


@demo_app.command("digits", epilog="Example: flowevo demo digits --run-dir runs/digits --n 12")
def demo_digits(
    run_dir: Path = typer.Option(Path("runs/digits"), help="Where to write results (report.html, PNGs, JSON, npz)."),
    n: int = typer.Option(12, min=1, max=200, help="Held-out digits to edit."),
    seed: int = typer.Option(0, help="Run seed (targets and evolution)."),
    generations: int = typer.Option(15, min=1, help="REO generations (24 residuals per digit)."),
    sources: Path | None = typer.Option(None,
                                        help="A .npz with images (N,28,28) and labels (default: built-in held-out digits)."),
    device: str = device_option(),
    weights: Path | None = typer.Option(None, help="A folder of digit models (default: the shipped weights)."),
    retrain: bool = typer.Option(False, "--retrain", help="Train all digit models from scratch first (~5 min)."),
    thickness_band: float | None = typer.Option(None, help="Constrained thickness edit: least pixel change with "
                                                           "|thickness - 1.6x| <= this (px)."),
    penalty: bool = typer.Option(False, "--penalty", help="Adaptive Lagrangian penalty for the thickness edit's constraints."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """The main job: counterfactual edits of held-out digits by every method, plus a thickness edit, with a report."""
    from flowevo.demos.digits import run_digits_demo

    log = logger(quiet)
    m = guarded(lambda: run_digits_demo(run_dir, n=n, seed=seed, generations=generations,
                                         sources=str(sources) if sources else None, device=device_or_fail(device), log=log,
                                         weights=weights, retrain=retrain, thickness_band=thickness_band,
                                         penalty=penalty), quiet)
    if as_json:
        sys.stdout.write(json.dumps(m, indent=2) + "\n")
        return
    table = Table(title=f"digits demo -> {run_dir}/report.html")
    for col in ("method", "acc", "acc (indep.)", "p(target)", "morph. change", "evals/digit", "wall s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for k, v in m["methods"].items():
        table.add_row(k, f"{v['acc']:.2f}", f"{v['acc_independent']:.2f}", f"{v['mean_p_target']:.2f}",
                      f"{v['morph_mean']:.3f}", f"{v['evaluations']:.0f}", f"{v['wall_s']:.1f}")
    Console().print(table)
    t = m["thickness_task"]
    Console().print(f"thickness edit: mean |error| {t['mean_abs_error']:.2f} px, class kept {t['keeps_class_rate']:.0%}; "
                    f"total {m['wall_s']:.0f} s")


@demo_app.command("crystals",
                  epilog="Example: flowevo demo crystals --data ../shared/data/perov_5/val.csv --run-dir runs/crystals --n 8")
def demo_crystals(
    data: Path = typer.Option(..., help="Training crystals, a CDVAE-format CSV (columns cif, heat_ref, formula)."),
    run_dir: Path = typer.Option(Path("runs/crystals"), help="Where to write results (report.html, CIFs, metrics.json)."),
    n: int = typer.Option(8, min=1, max=200, help="Held-out crystals to edit."),
    seed: int = typer.Option(0, help="Seed for the split, training and evolution."),
    budget: str = typer.Option("k2_bkept", help="Edit budget: any, k1, k2, k1_bkept, k2_bkept."),
    constraint: list[str] | None = typer.Option(None, "--constraint",
                                                help="Repeatable extra constraint: smact_strict (SMACT, pymatgen_sp)."),
    energy_ceiling: float | None = typer.Option(None, help="Also require CHGNet formation energy <= this (eV/atom)."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Lower heat_ref of held-out crystals by REO under an edit budget; report property, energy and symmetry before/after."""
    from flowevo.demos.crystals import run_crystals_demo

    log = logger(quiet)
    m = guarded(lambda: run_crystals_demo(run_dir, data, n=n, seed=seed, budget=budget, log=log,
                                          constraints=tuple(constraint or ()), energy_ceiling=energy_ceiling,
                                          device=device_or_fail(device)), quiet)
    rows = [(f"{r['formula_before']} -> {r['formula_after']}",
             f"{r['sites_changed']} sites, surrogate {r['surrogate_before']:.2f} -> "
             + (f"{r['surrogate_after']:.2f}" if r["surrogate_after"] is not None else "-")) for r in m["edits"]]
    rows.append(("valid / improved / wall", f"{m['valid_rate']:.2f} / {m['improved_rate']:.2f} / {m['wall_s']:.0f} s"))
    print_metrics(m, as_json, f"crystals demo -> {run_dir}/report.html", rows)
