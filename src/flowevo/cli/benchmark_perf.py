"""``flowevo benchmark cost`` and ``flowevo benchmark queries``: cost scaling and query efficiency."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli.app import bench_app
from flowevo.cli.common import device_option, device_or_fail, guarded, invoked_command, logger, print_metrics


@bench_app.command("cost", epilog="Example: flowevo benchmark cost --out out/cost")
def bench_cost(
    out: Path = typer.Option(..., help="Output directory (metrics.json, cost.png, accuracy.png)."),
    seed: int = typer.Option(0, help="Seed of the synthetic tasks and model weights."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Seconds per generation against population, dimension and NFE (linear fits); round-trip error against NFE."""
    from flowevo.benchmarks.cost_scaling import run_cost_benchmark

    m = guarded(lambda: run_cost_benchmark(out, seed=seed, command=invoked_command(), show_progress=not quiet,
                                           log=logger(quiet), device=device_or_fail(device)), quiet)
    rows = [(f"time vs {name}", f"slope {s['fit']['slope']:.3g}, intercept {s['fit']['intercept']:.3f} s, "
                                f"R² {s['fit']['r2']:.3f}") for name, s in m["sweeps"].items()]
    rows += [(f"order of {k}", "–" if v is None else f"{v:.2f}") for k, v in m["accuracy"]["order"].items()]
    print_metrics(m, as_json, f"cost scaling -> {out}/metrics.json", rows)


@bench_app.command("queries", epilog="Example: flowevo benchmark queries --out out/queries --n 200 --seeds 5")
def bench_queries(
    out: Path = typer.Option(..., help="Output directory (metrics.json, queries.png)."),
    n: int = typer.Option(200, min=1, help="Digits sources (the first n held-out digits)."),
    seeds: int = typer.Option(5, min=1, help="Number of seeds (0..seeds-1)."),
    tasks: str = typer.Option("toy,digits", help="Comma-separated tasks: toy, digits, dev (REO settings on a "
                                                 "development split of training digits, seeds 100 and 101)."),
    tau: float = typer.Option(0.9, min=0.0, max=1.0, help="Digits: success needs p(target) >= tau."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Black-box evaluations until X% of sources succeed: REO vs CMA-ES vs random search, over seeds."""
    from flowevo.benchmarks.query_efficiency import run_query_benchmark

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names or any(t not in ("toy", "digits", "dev") for t in names):
        from flowevo.cli.common import fail

        fail(f"--tasks: use toy, digits and/or dev, got {tasks!r}")
    m = guarded(lambda: run_query_benchmark(out, seeds=range(seeds), n=n, tau=tau, tasks=names,
                                            command=invoked_command(), log=logger(quiet),
                                            device=device_or_fail(device)), quiet)
    fmt = lambda v: "never" if v is None else f"{v:g}"
    rows = [(f"{task} {goal}: {meth}", " / ".join(f"{float(r):.0%} {fmt(v)}" for r, v in s["median"].items()))
            for task, t in m["tasks"].items() for goal, g in t["goals"].items() for meth, s in g["methods"].items()]
    print_metrics(m, as_json, f"query efficiency -> {out}/metrics.json (median evaluations to a success rate)", rows)


@bench_app.command("profile", epilog="Example: flowevo benchmark profile --out out/profile")
def bench_profile(
    out: Path = typer.Option(..., help="Output directory (metrics.json, top_functions.md)."),
    seed: int = typer.Option(0, help="Seed."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """cProfile of the end-to-end digits REO generation and of the decode path: stage shares, top functions."""
    from flowevo.benchmarks.profile import run_profile

    m = guarded(lambda: run_profile(out, seed=seed, command=invoked_command(), device=device_or_fail(device)), quiet)
    rows = [(f"{name}: {stage}", f"{v['share']:.0%}") for name, p in m["profiles"].items() for stage, v in p["stages"].items()]
    print_metrics(m, as_json, f"profile -> {out}/top_functions.md", rows)
