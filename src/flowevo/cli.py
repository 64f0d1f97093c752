"""The ``flowevo`` command line (typer + rich).

Usage and input errors exit with code 2 and a one-line message (no traceback).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from flowevo import __version__

app = typer.Typer(
    help="Residual-space evolutionary optimisation with conditional flow-matching models.\n\n"
    "Example: flowevo demo toy --run-dir runs/toy",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="Short end-to-end runs that write a run directory with plots and results.\n\n"
                       "Example: flowevo demo digits --run-dir runs/digits", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that write DIR/metrics.json.\n\nExample: flowevo benchmark toy --out out/toy",
                        no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(bench_app, name="benchmark")

console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code=2)


def _guarded(fn: Callable[[], dict], quiet: bool) -> dict:
    """Run ``fn``; turn input errors into a one-line message with exit code 2."""
    if quiet:
        os.environ["FLOWEVO_QUIET"] = "1"
    try:
        return fn()
    except (ValueError, FileNotFoundError, TypeError) as exc:
        _fail(str(exc))
        raise  # unreachable


def _device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        _fail(f"--device {device} asked for, but torch sees no CUDA device")
    return device


def _print_metrics(metrics: dict, as_json: bool, title: str, rows: list[tuple[str, str]]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
        return
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flowevo {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")) -> None:
    """flowevo: edit data toward black-box goals by evolving flow residuals."""


@demo_app.command("toy", epilog="Example: flowevo demo toy --run-dir runs/toy --seed 1")
def demo_toy(
    run_dir: Path = typer.Option(Path("runs/toy"), help="Where to write results."),
    seed: int = typer.Option(0, help="Run seed (same seed, same result)."),
    generations: int = typer.Option(15, min=1, help="Generations of evolution."),
    device: str = typer.Option("cpu", help="cpu or cuda[:N]."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Edit 2-D toy samples from class 0 toward a goal in class 2 (two objectives) and plot it."""
    from flowevo.demos.toy import run_toy_demo

    m = _guarded(lambda: run_toy_demo(run_dir, seed=seed, generations=generations, device=_device(device),
                                      show_progress=not quiet), quiet)
    _print_metrics(m, as_json, f"toy demo -> {run_dir}", [
        ("evaluations", str(m["evaluations"])),
        ("distance to goal (mean best): start -> end", f"{m['initial_mean_best'][0]:.3f} -> {m['final_mean_best'][0]:.3f}"),
        ("Pareto points per source", f"{m['pareto_points_per_row']:.1f}"),
        ("wall time", f"{m['wall_s']:.1f} s"),
    ])


@app.command("resume", epilog="Example: flowevo resume runs/toy")
def resume(
    run_dir: Path = typer.Argument(..., help="A run directory with config.json and checkpoint.pt."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Continue a killed run from its last checkpoint (toy demo runs); results equal an uninterrupted run."""
    from flowevo.demos.toy import resume_toy_demo

    m = _guarded(lambda: resume_toy_demo(run_dir, show_progress=not quiet), quiet)
    _print_metrics(m, as_json, f"resumed -> {run_dir}", [("evaluations", str(m["evaluations"])),
                                                         ("generations", str(m["generations"]))])


@bench_app.command("toy", epilog="Example: flowevo benchmark toy --out out/toy --seed 0")
def bench_toy(
    out: Path = typer.Option(..., help="Output directory (metrics.json)."),
    seed: int = typer.Option(0, help="Seed for training, sources and every method."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Solver round-trip accuracy, and REO vs random search vs CMA-ES on a 16-D black-box edit task."""
    from flowevo.benchmarks.toy import run_toy_benchmark

    m = _guarded(lambda: run_toy_benchmark(out, seed=seed, show_progress=not quiet), quiet)
    rows = [(f"{name}: success / evals to target / wall",
             f"{r['success_rate']:.2f} / {r['evaluations_to_target']} / {r['wall_s']:.1f} s")
            for name, r in m["methods"].items()]
    rows += [(f"round trip {k} (nfe {v['nfe']:g})", f"{v['mean']:.2e}") for k, v in m["roundtrip_rel_error"].items()]
    _print_metrics(m, as_json, f"toy benchmark -> {out}/metrics.json", rows)


@demo_app.command("digits", epilog="Example: flowevo demo digits --run-dir runs/digits --n 12")
def demo_digits(
    run_dir: Path = typer.Option(Path("runs/digits"), help="Where to write results (report.html, PNGs, JSON, npz)."),
    n: int = typer.Option(12, min=1, max=200, help="Held-out digits to edit."),
    seed: int = typer.Option(0, help="Run seed (targets and evolution)."),
    generations: int = typer.Option(15, min=1, help="REO generations (24 residuals per digit)."),
    sources: Optional[Path] = typer.Option(None, help="A .npz with images (N,28,28) and labels (default: built-in held-out digits)."),
    device: str = typer.Option("cpu", help="cpu or cuda[:N]."),
    weights: Optional[Path] = typer.Option(None, help="A folder of digit models (default: the shipped weights)."),
    retrain: bool = typer.Option(False, "--retrain", help="Train all digit models from scratch first (~5 min)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """The main job: counterfactual edits of held-out digits by every method, plus a thickness edit, with a report."""
    from flowevo.demos.digits import run_digits_demo

    log = (lambda s: None) if quiet else (lambda s: console.print(f"[dim]{s}[/dim]"))
    m = _guarded(lambda: run_digits_demo(run_dir, n=n, seed=seed, generations=generations,
                                         sources=str(sources) if sources else None, device=_device(device), log=log,
                                         weights=weights, retrain=retrain), quiet)
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


@bench_app.command("digits", epilog="Example: flowevo benchmark digits --n 200 --out out/digits")
def bench_digits(
    out: Path = typer.Option(..., help="Output directory (metrics.json, edits.npz)."),
    sources: Optional[Path] = typer.Option(None, help="A .npz with images and labels (default: built-in held-out digits)."),
    n: int = typer.Option(200, min=1, help="Number of sources (the first n)."),
    seed: int = typer.Option(0, help="Seed for targets and every method."),
    device: str = typer.Option("cpu", help="cpu or cuda[:N]."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """LeapFactual-protocol counterfactuals: reo, leap, gradient, cma, random, swap; fronts, ablation, fidelity."""
    from flowevo.benchmarks.digits import run_digits_benchmark

    log = (lambda s: None) if quiet else (lambda s: console.print(f"[dim]{s}[/dim]"))
    m = _guarded(lambda: run_digits_benchmark(out, sources=sources, n=n, seed=seed, device=_device(device), log=log), quiet)
    rows = [(name, f"acc {r['acc']:.2f} / indep {r['acc_independent']:.2f} / morph {r['morph_mean']:.3f} / "
                   f"{r['evaluations']:.0f} evals") for name, r in m["methods"].items()]
    _print_metrics(m, as_json, f"digits benchmark -> {out}/metrics.json", rows)


@demo_app.command("crystals", epilog="Example: flowevo demo crystals --data ../shared/data/perov_5/val.csv --run-dir runs/crystals --n 8")
def demo_crystals(
    data: Path = typer.Option(..., help="Training crystals, a CDVAE-format CSV (columns cif, heat_ref, formula)."),
    run_dir: Path = typer.Option(Path("runs/crystals"), help="Where to write results (report.html, CIFs, metrics.json)."),
    n: int = typer.Option(8, min=1, max=200, help="Held-out crystals to edit."),
    seed: int = typer.Option(0, help="Seed for the split, training and evolution."),
    budget: str = typer.Option("k2_bkept", help="Edit budget: any, k1, k2, k1_bkept, k2_bkept."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Lower heat_ref of held-out crystals by REO under an edit budget; report property, energy and symmetry before/after."""
    from flowevo.demos.crystals import run_crystals_demo

    log = (lambda s: None) if quiet else (lambda s: console.print(f"[dim]{s}[/dim]"))
    m = _guarded(lambda: run_crystals_demo(run_dir, data, n=n, seed=seed, budget=budget, log=log), quiet)
    rows = [(f"{r['formula_before']} -> {r['formula_after']}",
             f"{r['sites_changed']} sites, surrogate {r['surrogate_before']:.2f} -> "
             + (f"{r['surrogate_after']:.2f}" if r["surrogate_after"] is not None else "-")) for r in m["edits"]]
    rows.append(("valid / improved / wall", f"{m['valid_rate']:.2f} / {m['improved_rate']:.2f} / {m['wall_s']:.0f} s"))
    _print_metrics(m, as_json, f"crystals demo -> {run_dir}/report.html", rows)


@bench_app.command("crystals", epilog="Example: flowevo benchmark crystals --data ../shared/data/perov_5/val.csv --n 100 --out out/crystals")
def bench_crystals(
    data: Path = typer.Option(..., help="Training crystals, a CDVAE-format CSV (columns cif, heat_ref, formula)."),
    out: Path = typer.Option(..., help="Output directory (metrics.json, cif/<method>/<budget>/<i>.cif)."),
    sources: Optional[Path] = typer.Option(None, help="Source crystals CSV (first n rows; default: n held-out rows of --data)."),
    n: int = typer.Option(100, min=1, help="Number of sources."),
    seed: int = typer.Option(0, help="Seed for the split, training and every method."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """CDVAE-protocol heat_ref lowering at edit budgets: reo, random, cma, exhaustive; two judges; CIFs."""
    from flowevo.benchmarks.crystals import run_crystals_benchmark

    log = (lambda s: None) if quiet else (lambda s: console.print(f"[dim]{s}[/dim]"))
    cmd = "flowevo " + " ".join(sys.argv[1:]) if sys.argv and "benchmark" in sys.argv else None
    m = _guarded(lambda: run_crystals_benchmark(out, data, sources=sources, n=n, seed=seed, command=cmd, log=log), quiet)
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    rows = [(f"{name} {b}", f"SR5/10/15 {fmt(r['sr5'])}/{fmt(r['sr10'])}/{fmt(r['sr15'])}, chgnet "
                            f"{fmt(r['sr5_chgnet'])}/{fmt(r['sr10_chgnet'])}/{fmt(r['sr15_chgnet'])}, "
                            f"sites {fmt(r['sites_changed'])}, {r['evaluations']:.0f} evals")
            for name, v in m["methods"].items() for b, r in v["budgets"].items()]
    _print_metrics(m, as_json, f"crystals benchmark -> {out}/metrics.json", rows)


@bench_app.command("throughput", epilog="Example: flowevo benchmark throughput --out out/throughput")
def bench_throughput(
    out: Path = typer.Option(..., help="Output directory (metrics.json)."),
    seed: int = typer.Option(0, help="Seed."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Decode throughput per batch size against the FLOP bound measured in the same run, and end-to-end REO."""
    from flowevo.benchmarks.throughput import run_throughput_benchmark

    m = _guarded(lambda: run_throughput_benchmark(out, seed=seed), False)
    rows = [(f"decode batch {b}", f"{r['candidates_per_s']:.0f} cand/s, {r['fraction_of_flop_bound']:.0%} of bound")
            for b, r in m["throughput"]["decode"].items()]
    rows.append(("end-to-end digits REO", f"{m['throughput']['end_to_end_digits']['candidates_per_s']:.0f} cand/s"))
    _print_metrics(m, as_json, f"throughput benchmark -> {out}/metrics.json", rows)


@bench_app.command("scaling", epilog="Example: flowevo benchmark scaling --out out/scaling")
def bench_scaling(
    out: Path = typer.Option(..., help="Output directory (metrics.json)."),
    seed: int = typer.Option(0, help="Seed."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Candidates per second of each evaluation backend (in process, process pool, Dask) with 1 and 2 workers."""
    from flowevo.benchmarks.scaling import run_scaling_benchmark

    m = _guarded(lambda: run_scaling_benchmark(out, seed=seed), False)
    rows = [(f"{name} x{w}", f"{r.get('candidates_per_s', float('nan')):.1f} cand/s, overhead {r.get('overhead_ms', float('nan')):.2f} ms")
            for name, per in m["backends"].items() for w, r in per.items() if isinstance(r, dict)]
    _print_metrics(m, as_json, f"scaling benchmark -> {out}/metrics.json", rows)


def run() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
