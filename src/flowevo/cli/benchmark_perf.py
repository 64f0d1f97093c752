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


@bench_app.command("queries", epilog="Example: flowevo benchmark queries --out out/queries --n 200 --seeds 5  "
                                        "(with crystals: --data ../shared/data/perov_5/val.csv)")
def bench_queries(
    out: Path = typer.Option(..., help="Output directory (metrics.json, queries.png, crystals_queries.png)."),
    n: int = typer.Option(200, min=1, help="Digits sources (the first n held-out digits)."),
    seeds: int = typer.Option(5, min=1, help="Number of seeds (0..seeds-1)."),
    tasks: str | None = typer.Option(None, help="Comma-separated tasks: toy, digits, crystals (needs --data), dev (REO "
                                                "settings on a development split of training digits, seeds 100 and "
                                                "101). Default: toy,digits, and crystals when --data is given."),
    tau: float = typer.Option(0.9, min=0.0, max=1.0, help="Digits: success needs p(target) >= tau."),
    sources: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                        help="Digits: an .npz of source digits (images uint8 (N, 28, 28), labels); "
                                             "default the built-in held-out digits. Crystals: a CDVAE-format .csv of "
                                             "source crystals (then all of --data trains); default held-out rows of "
                                             "--data."),
    data: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                     help="Crystals: a CDVAE-format CSV (columns cif, heat_ref, formula) the models "
                                          "are trained on, e.g. Perov-5's val.csv; without it no crystals task."),
    crystal_n: int = typer.Option(100, "--crystal-n", min=1, help="Crystals: number of sources."),
    chgnet: bool = typer.Option(True, "--chgnet/--no-chgnet", help="Crystals: judge kept edits by CHGNet too."),
    methods: str = typer.Option("reo,cma,random,nsga2,bo", help="Digits: comma-separated methods of reo, cma, random, "
                                                               "nsga2, bo."),
    bo_rows: int = typer.Option(50, "--bo-rows", min=1, help="Digits: BO runs on the first this many sources (the "
                                                             "others on all n; tables compare on those rows too)."),
    crystal_bo_rows: int = typer.Option(50, "--crystal-bo-rows", min=1,
                                        help="Crystals: BO runs on the first this many sources."),
    crystal_split_seed: int = typer.Option(0, "--crystal-split-seed", min=0,
                                           help="Crystals: seed of the data split and of the models' training (the "
                                                "method seeds are 0..seeds-1)."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Black-box evaluations until X% of sources succeed, hypervolume per source after 16-384 evaluations and the
    kept edits' quality: REO vs CMA-ES, random search, NSGA-II and Bayesian optimisation, over seeds; crystals:
    SR5/10/15 after 8-48 evaluations by four judges and DFT, and how far each judge can be trusted."""
    from flowevo.benchmarks.query_digits import QUERY_METHODS
    from flowevo.benchmarks.query_efficiency import run_query_benchmark
    from flowevo.cli.common import fail

    names = [t.strip() for t in (tasks or ("toy,digits" + (",crystals" if data else ""))).split(",") if t.strip()]
    if not names or any(t not in ("toy", "digits", "crystals", "dev") for t in names):
        fail(f"--tasks: use toy, digits, crystals and/or dev, got {tasks!r}")
    chosen = [t.strip() for t in methods.split(",") if t.strip()]
    if not chosen or any(t not in QUERY_METHODS for t in chosen):
        fail(f"--methods: use some of {', '.join(QUERY_METHODS)}, got {methods!r}")
    digit_sources = crystal_sources = None
    if sources is not None:
        if sources.suffix.lower() == ".csv":
            if "crystals" not in names:
                fail(f"--sources {sources}: a .csv of crystals needs the crystals task (--tasks crystals --data ...)")
            crystal_sources = str(sources)
        else:
            if "digits" not in names:
                fail(f"--sources {sources}: an .npz of digits needs the digits task")
            digit_sources = str(sources)
    if "crystals" in names:
        if data is None:
            fail("--tasks crystals needs --data PATH.csv (a CDVAE-format CSV with columns cif, heat_ref, formula)")
        from flowevo.domains.crystals import load_cdvae_csv

        for path in [data] + ([sources] if crystal_sources else []):
            guarded(lambda path=path: load_cdvae_csv(path, ("heat_ref",), limit=2), quiet)  # malformed: fail now
    if digit_sources is not None:
        from flowevo.domains.digits.data import load_digits_npz

        guarded(lambda: load_digits_npz(digit_sources), quiet)  # a malformed file fails here, before any work
    m = guarded(lambda: run_query_benchmark(out, seeds=range(seeds), n=n, tau=tau, tasks=names,
                                            command=invoked_command(), log=logger(quiet), device=device_or_fail(device),
                                            sources=digit_sources, methods=chosen, bo_rows=bo_rows,
                                            data=None if data is None else str(data), crystal_sources=crystal_sources,
                                            crystal_n=crystal_n,
                                            crystal_options={"bo_rows": crystal_bo_rows, "chgnet": chgnet,
                                                             "split_seed": crystal_split_seed}), quiet)
    fmt = lambda v: "never" if v is None else f"{v:g}"
    rows = [(f"{task} {goal}: {meth}", " / ".join(f"{float(r):.0%} {fmt(v)}" for r, v in s["median"].items()))
            for task, t in m["tasks"].items() for goal, g in t.get("goals", {}).items()
            for meth, s in g["methods"].items()]
    if "crystals" in m["tasks"]:
        c = m["tasks"]["crystals"]
        med = lambda d: "-" if d is None else f"{d['median']:.2f}"  # noqa: E731
        for meth, per in c["summary"].items():
            for b, cells in per.items():
                for cell in cells.values():
                    rows.append((f"crystals {b} SR10: {meth} @{cell['evaluations']:.0f}",
                                 ", ".join(f"{j} {med(cell.get(j, {}).get('sr10'))}" for j in c["judges"])))
        rows += [(f"crystals judge {r['judge']} vs DFT", f"Spearman {r['spearman']:.2f}, MAE {r['mae']:.2f}, "
                                                        f"precision below SR10 {r['precision_below']:.2f}")
                 for r in c["judge_trust"]["judges"]]
    print_metrics(m, as_json, f"query efficiency -> {out}/metrics.json (median evaluations to a success rate; "
                              "crystals: median SR10 by judge)", rows)


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
