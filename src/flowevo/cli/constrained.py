"""``flowevo benchmark constrained``: adaptive CFO vs unconstrained and fixed-penalty fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from flowevo.cli.app import bench_app
from flowevo.cli.common import device_option, device_or_fail, fail, guarded, invoked_command, logger, print_metrics

DEFAULT_DATA = Path("../shared/data/perov_5/val.csv")


@bench_app.command("constrained", epilog="Example: flowevo benchmark constrained --out out/constrained --seed 0")
def bench_constrained(
    out: Path = typer.Option(..., help="Output directory (metrics.json, PNG plots, checkpoints/<task>/round_*.pt)."),
    seed: int = typer.Option(0, help="Seed for pretraining, sampling and fine-tuning."),
    data: Path = typer.Option(DEFAULT_DATA, help="Perov-5 CSV for the crystals task (CDVAE format with heat_ref, ind_gap)."),
    tasks: str = typer.Option("synthetic,crystals", help="Comma-separated tasks: synthetic, crystals."),
    rounds: Optional[int] = typer.Option(None, min=0, help="Fine-tuning rounds (default: 8)."),
    samples: Optional[int] = typer.Option(None, min=2, help="Samples per round (default: 512 synthetic, 256 crystals)."),
    pretrain_steps: int = typer.Option(1500, min=1, help="Training steps of the synthetic task's pretrained 2-D flow."),
    cfm_steps: int = typer.Option(3000, min=1, help="Training steps of the crystals task's pretrained CFM."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Constrained flow optimisation on a 2-D task with a checkable optimum and on crystals (band gap up, SMACT-strict
    valid, formation energy under a CHGNet-judged ceiling)."""
    from flowevo.benchmarks.constrained import TASKS, run_constrained_benchmark

    chosen = [t.strip() for t in tasks.split(",") if t.strip()]
    bad = [t for t in chosen if t not in TASKS]
    if bad or not chosen:
        fail(f"--tasks: unknown task(s) {bad or tasks!r}; use a comma-separated subset of {list(TASKS)}")
    log = logger(quiet)
    m = guarded(lambda: run_constrained_benchmark(out, data=data, seed=seed, tasks=chosen, rounds=rounds, samples=samples,
                                                  pretrain_steps=pretrain_steps, cfm_steps=cfm_steps, command=invoked_command(), log=log, show_progress=not quiet,
                                                  device=device_or_fail(device)), quiet)
    rows = []
    for task, variants in m["tasks"].items():
        for name, v in variants.items():
            kl = v["kl_or_distance_to_pretrained"]
            rows.append((f"{task} {name}", f"reward {v['reward_mean']:.3f}, satisfied {v['constraint_satisfaction']:.3f}, "
                                           f"KL {kl if kl is None else format(kl, '.2f')}"))
        b = m["bars"][task]
        rows.append((f"{task} bar", "met" if b["met"] else "NOT met"))
    print_metrics(m, as_json, f"constrained benchmark -> {out}/metrics.json", rows)
