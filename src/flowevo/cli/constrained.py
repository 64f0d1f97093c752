"""``flowevo benchmark constrained``: adaptive CFO vs unconstrained and fixed-penalty fine-tuning."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli.app import bench_app
from flowevo.cli.common import device_option, device_or_fail, fail, guarded, invoked_command, logger, print_metrics

DEFAULT_DATA = Path("../shared/data/perov_5/val.csv")


@bench_app.command("constrained", epilog="Example: flowevo benchmark constrained --out out/constrained --seeds 0,1,2")
def bench_constrained(
    out: Path = typer.Option(..., help="Output directory (metrics.json, <task>_seeds.png; per seed: seed_<s>/ with its "
                                       "metrics.json, PNG plots, checkpoints/<task>/round_*.pt)."),
    seed: int = typer.Option(0, help="Seed for pretraining, sampling and fine-tuning (one seed; see --seeds)."),
    seeds: str | None = typer.Option(None, help="Comma-separated seeds (e.g. 0,1,2): one run per seed under "
                                                   "OUT/seed_<s>/, mean and spread per variant in OUT/metrics.json. "
                                                   "Overrides --seed."),
    data: Path = typer.Option(DEFAULT_DATA, help="Perov-5 CSV for the crystals task (CDVAE format with heat_ref, ind_gap)."),
    tasks: str = typer.Option("synthetic,crystals", help="Comma-separated tasks: synthetic, crystals."),
    rounds: int | None = typer.Option(None, min=0, help="Fine-tuning rounds (default: 8)."),
    samples: int | None = typer.Option(None, min=2, help="Samples per round (default: 512 synthetic, 256 crystals)."),
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
    seed_list = [seed]
    if seeds is not None:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            fail(f"--seeds: expected comma-separated integers, got {seeds!r}")
        if not seed_list or len(set(seed_list)) != len(seed_list):
            fail(f"--seeds: expected distinct comma-separated integers, got {seeds!r}")
    log = logger(quiet)
    m = guarded(lambda: run_constrained_benchmark(out, data=data, seeds=seed_list, tasks=chosen, rounds=rounds,
                                                  samples=samples, pretrain_steps=pretrain_steps, cfm_steps=cfm_steps,
                                                  command=invoked_command(), log=log, show_progress=not quiet,
                                                  device=device_or_fail(device)), quiet)
    rows = []
    for task, variants in m["summary"].items():
        for name, v in variants.items():
            rows.append((f"{task} {name}", ", ".join(
                f"{label} {_mean_spread(v.get(key))}" for key, label in
                (("reward_mean", "reward"), ("constraint_satisfaction", "satisfied"),
                 ("kl_or_distance_to_pretrained", "KL"), ("judge_mean", "judge"),
                 ("feasible_distinct", "distinct feasible")) if v.get(key) is not None)))
        per_seed = m["bars"][task]["per_seed"]
        rows.append((f"{task} bar", ", ".join(f"seed {s}: {'met' if b['met'] else 'NOT met'}" for s, b in per_seed.items())))
    print_metrics(m, as_json, f"constrained benchmark -> {out}/metrics.json", rows)


def _mean_spread(stat: dict | None) -> str:
    """``mean ± std`` (``mean`` alone for one seed); ``-`` where undefined."""
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{stat['mean']:.3g}" + (f" ± {stat['std']:.2g}" if stat.get("std") is not None else "")
