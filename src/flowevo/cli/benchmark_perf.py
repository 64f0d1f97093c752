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
    sources: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                        help="Digits: an .npz of source digits (images uint8 (N, 28, 28), labels); "
                                             "default the built-in held-out digits."),
    methods: str = typer.Option("reo,cma,random,nsga2,bo", help="Digits: comma-separated methods of reo, cma, random, "
                                                               "nsga2, bo."),
    bo_rows: int = typer.Option(50, "--bo-rows", min=1, help="Digits: BO runs on the first this many sources (the "
                                                             "others on all n; tables compare on those rows too)."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Black-box evaluations until X% of sources succeed, hypervolume per source after 16-384 evaluations and the
    kept edits' quality: REO vs CMA-ES, random search, NSGA-II and Bayesian optimisation, over seeds."""
    from flowevo.benchmarks.query_efficiency import run_query_benchmark

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    from flowevo.benchmarks.query_digits import QUERY_METHODS
    from flowevo.cli.common import fail

    if not names or any(t not in ("toy", "digits", "dev") for t in names):
        fail(f"--tasks: use toy, digits and/or dev, got {tasks!r}")
    chosen = [t.strip() for t in methods.split(",") if t.strip()]
    if not chosen or any(t not in QUERY_METHODS for t in chosen):
        fail(f"--methods: use some of {', '.join(QUERY_METHODS)}, got {methods!r}")
    if sources is not None:
        from flowevo.domains.digits.data import load_digits_npz

        guarded(lambda: load_digits_npz(sources), quiet)  # a malformed file fails here, before any work
    m = guarded(lambda: run_query_benchmark(out, seeds=range(seeds), n=n, tau=tau, tasks=names,
                                            command=invoked_command(), log=logger(quiet), device=device_or_fail(device),
                                            sources=None if sources is None else str(sources), methods=chosen,
                                            bo_rows=bo_rows), quiet)
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
