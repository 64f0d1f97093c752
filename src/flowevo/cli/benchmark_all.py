"""``flowevo benchmark all``: every benchmark in one run, with metrics.json, tables.md and the machine."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli.app import bench_app
from flowevo.cli.common import console, device_option, device_or_fail, guarded, invoked_command, logger, print_metrics


@bench_app.command("all", epilog="Example: flowevo benchmark all --out out/all --only toy,throughput,cost")
def bench_all(
    out: Path = typer.Option(..., help="Output directory: DIR/<part>/, DIR/metrics.json, DIR/tables.md."),
    data: Path | None = typer.Option(None, help="Crystals training CSV (CDVAE format); without it crystals is skipped."),
    seed: int = typer.Option(0, help="Seed of every part (query efficiency uses seeds S..S+4)."),
    only: str | None = typer.Option(None, help="Comma-separated parts: toy, digits, crystals, throughput, cost, "
                                                  "queries, scaling (default: all but scaling)."),
    digits_n: int = typer.Option(200, "--digits-n", min=1, help="Digits benchmark sources."),
    crystals_n: int = typer.Option(100, "--crystals-n", min=1, help="Crystals benchmark sources."),
    query_n: int = typer.Option(200, "--query-n", min=1, help="Digits sources of the query-efficiency part."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Toy, digits, crystals (with --data), throughput, cost scaling and query efficiency in one run."""
    from flowevo.benchmarks.all import run_all

    m = guarded(lambda: run_all(out, data=data, seed=seed, only=only, digits_n=digits_n, crystals_n=crystals_n,
                                query_n=query_n, command=invoked_command(), log=logger(quiet),
                                device=device_or_fail(device)), quiet)
    rows = [(name, f"failed: {e['error']}" if "error" in e else f"{e['wall_s']:.0f} s, load {e['load_average_start']}"
                                                                 f" -> {e['load_average_end']}")
            for name, e in m["parts"].items()]
    print_metrics(m, as_json, f"all benchmarks -> {out}/metrics.json, {out}/tables.md", rows)
    if any("error" in e for e in m["parts"].values()):
        console.print("[red]some parts failed; see metrics.json[/red]")
        raise typer.Exit(code=1)
