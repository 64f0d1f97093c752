"""``flowevo benchmark ...``: benchmarks that write ``DIR/metrics.json``."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli.app import bench_app
from flowevo.cli.common import device_option, device_or_fail, guarded, invoked_command, logger, print_metrics


@bench_app.command("toy", epilog="Example: flowevo benchmark toy --out out/toy --seed 0")
def bench_toy(
    out: Path = typer.Option(..., help="Output directory (metrics.json)."),
    seed: int = typer.Option(0, help="Seed for training, sources and every method."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Solver round-trip accuracy, and REO vs random search vs CMA-ES on a 16-D black-box edit task."""
    from flowevo.benchmarks.toy import run_toy_benchmark

    m = guarded(lambda: run_toy_benchmark(out, seed=seed, show_progress=not quiet, device=device_or_fail(device)), quiet)
    rows = [(f"{name}: success / evals to target / wall",
             f"{r['success_rate']:.2f} / {r['evaluations_to_target']} / {r['wall_s']:.1f} s")
            for name, r in m["methods"].items()]
    rows += [(f"round trip {k} (nfe {v['nfe']:g})", f"{v['mean']:.2e}") for k, v in m["roundtrip_rel_error"].items()]
    print_metrics(m, as_json, f"toy benchmark -> {out}/metrics.json", rows)


@bench_app.command("digits", epilog="Example: flowevo benchmark digits --n 200 --out out/digits")
def bench_digits(
    out: Path = typer.Option(..., help="Output directory (metrics.json, edits.npz)."),
    sources: Path | None = typer.Option(None, help="A .npz with images and labels (default: built-in held-out digits)."),
    n: int = typer.Option(200, min=1, help="Number of sources (the first n)."),
    seed: int = typer.Option(0, help="Seed for targets and every method."),
    ablation_seeds: int = typer.Option(2, min=1, help="Seeds per variant of the REO self/cross ablation."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """LeapFactual-protocol counterfactuals: reo, leap, gradient, cma, random, swap; fronts, ablation, fidelity."""
    from flowevo.benchmarks.digits import run_digits_benchmark

    log = logger(quiet)
    m = guarded(lambda: run_digits_benchmark(out, sources=sources, n=n, seed=seed, ablation_seeds=ablation_seeds,
                                             device=device_or_fail(device), command=invoked_command(), log=log), quiet)
    rows = [(name, f"acc {r['acc']:.2f} / indep {r['acc_independent']:.2f} / morph {r['morph_mean']:.3f} / "
                   f"{r['evaluations']:.0f} evals") for name, r in m["methods"].items()]
    print_metrics(m, as_json, f"digits benchmark -> {out}/metrics.json", rows)


@bench_app.command("crystals",
                   epilog="Example: flowevo benchmark crystals --data ../shared/data/perov_5/val.csv --n 100 --out out/crystals")
def bench_crystals(
    data: Path = typer.Option(..., help="Training crystals, a CDVAE-format CSV (columns cif, heat_ref, formula)."),
    out: Path = typer.Option(..., help="Output directory (metrics.json, cif/<method>/<budget>/<i>.cif)."),
    sources: Path | None = typer.Option(None, help="Source crystals CSV (first n rows; default: n held-out rows of --data)."),
    n: int = typer.Option(100, min=1, help="Number of sources."),
    seed: int = typer.Option(0, help="Seed for the split, training and every method."),
    dev: bool = typer.Option(False, "--dev",
                             help="Hold sources out of the training part instead (the split settings are chosen on)."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """CDVAE-protocol heat_ref lowering at edit budgets: reo, masked_random, random, cma, leap, gradient,
    exhaustive; two judges; CIFs."""
    from flowevo.benchmarks.crystals import run_crystals_benchmark

    log = logger(quiet)
    m = guarded(lambda: run_crystals_benchmark(out, data, sources=sources, n=n, seed=seed, command=invoked_command(),
                                               dev=dev, log=log, device=device_or_fail(device)), quiet)
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    rows = [(f"{name} {b}", f"SR5/10/15 {fmt(r['sr5'])}/{fmt(r['sr10'])}/{fmt(r['sr15'])}, chgnet "
                            f"{fmt(r['sr5_chgnet'])}/{fmt(r['sr10_chgnet'])}/{fmt(r['sr15_chgnet'])}, "
                            f"sites {fmt(r['sites_changed'])}, {r['evaluations']:.0f} evals")
            for name, v in m["methods"].items() for b, r in v["budgets"].items()]
    print_metrics(m, as_json, f"crystals benchmark -> {out}/metrics.json", rows)


@bench_app.command("throughput", epilog="Example: flowevo benchmark throughput --out out/throughput  "
                                          "(on a GPU: --device cuda)")
def bench_throughput(
    out: Path = typer.Option(..., help="Output directory (metrics.json)."),
    seed: int = typer.Option(0, help="Seed."),
    device: str = typer.Option("cpu", help="cpu, or cuda[:N]: batches 1,024 to 1,048,576 per precision, CUDA events."),
    captures: str = typer.Option("none,graph,compile,graph+compile",
                                 help="On CUDA: capture modes compared at fp32 / batch 4,096 and tf32 / batch 65,536 "
                                      "(comma-separated; '' for none)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Decode throughput per batch size against the FLOP bound measured in the same run, and end-to-end REO."""
    from flowevo.benchmarks.throughput import run_throughput_benchmark

    modes = [m.strip() for m in captures.split(",") if m.strip()]
    m = guarded(lambda: run_throughput_benchmark(out, seed=seed, command=invoked_command(), device=device_or_fail(device),
                                                 captures=modes), quiet)
    d = m["throughput"]["decode"]
    if "gpu" not in m:  # the CPU run
        rows = [(f"decode batch {b}", f"{r['candidates_per_s']:.0f} cand/s, {r['fraction_of_flop_bound']:.0%} of bound")
                for b, r in d.items()]
        rows.append(("decode batch 1024, bf16", f"{m['bf16']['decode']['1024']['candidates_per_s']:.0f} cand/s, "
                                                f"{m['bf16']['decode']['1024']['fraction_of_flop_bound']:.0%} of bf16 bound"))
    else:
        rows = [(f"decode {p} batch {b}", f"{r['candidates_per_s']:.0f} cand/s, {r['fraction_of_flop_bound']:.0%} of {p} bound")
                for p, per in d.items() for b, r in per.items()]
        rows += [(f"capture {mode} {p} batch {b}", f"{r['candidates_per_s']:.0f} cand/s, {r['fraction_of_flop_bound']:.0%}")
                 for mode, per in m["throughput"]["decode_by_capture"].items() for p, rs in per.items() for b, r in rs.items()]
    rows += [(f"round trip {p}, median", f"{v['median']:.1e}") for p, v in m["roundtrip_rel_error"].items()]
    e2e = m["throughput"]["end_to_end_digits"]
    rows.append(("end-to-end digits REO", f"{e2e['candidates_per_s']:.0f} cand/s" if "error" not in e2e else e2e["error"]))
    print_metrics(m, as_json, f"throughput benchmark -> {out}/metrics.json", rows)


@bench_app.command("scaling", epilog="Example: flowevo benchmark scaling --out out/scaling")
def bench_scaling(
    out: Path = typer.Option(..., help="Output directory (metrics.json)."),
    seed: int = typer.Option(0, help="Seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Candidates per second of each evaluation backend (in process, process pool, Dask) with 1 and 2 workers."""
    from flowevo.benchmarks.scaling import run_scaling_benchmark

    m = guarded(lambda: run_scaling_benchmark(out, seed=seed), quiet)
    rows = [(f"{name} x{w}", f"{r.get('candidates_per_s', float('nan')):.1f} cand/s, "
                             f"overhead {r.get('overhead_ms', float('nan')):.2f} ms")
            for name, per in m["backends"].items() for w, r in per.items() if isinstance(r, dict)]
    print_metrics(m, as_json, f"scaling benchmark -> {out}/metrics.json", rows)
