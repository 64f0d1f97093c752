"""Where the time goes: cProfile of the end-to-end digits REO generation and of the decode path.

Writes ``top_functions.md`` (the top functions by own time, and the share of each stage:
flow velocity calls, VAE decode, CNN black box, variation, survival, bookkeeping) and
``metrics.json``. For a sampling profile with native frames, run the same command under
py-spy (see docs/benchmarks.md).
"""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path

import torch

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.jsonio import write_json

# stage -> [(file suffix, function name)] whose cumulative times make that stage
STAGES = {
    "flow velocity (MLPVelocity.forward)": [("flow/velocity.py", "forward")],
    "ODE solver overhead (torchdiffeq, excl. velocity)": [("torchdiffeq/_impl/odeint.py", "odeint")],
    "VAE decode": [("domains/digits/nets.py", "decode")],
    "CNN black box (ClassifierOracle.probs)": [("domains/digits/objectives.py", "probs")],
    "preservation objective (shape / pixel distance)": [("domains/digits/objectives.py", "shape_distance"),
                                                        ("domains/digits/objectives.py", "pixel_distance")],
    "variation (self/cross-pollination, repair)": [("evolve/operators/variation.py", "offspring")],
    "survival": [("evolve/survival.py", "__call__")],
    "generation record (incl. hypervolume)": [("evolve/history.py", "summarise_generation")],
    "benchmark scoring after the run (morphometrics)": [("domains/digits/morphometrics.py", "measure_batch")],
}
SCORING = "benchmark scoring after the run (morphometrics)"


def _cum(stats: pstats.Stats, *where: tuple[str, str]) -> float:
    return sum(v[3] for (f, _, fn), v in stats.stats.items() if any(f.endswith(s) and fn == n for s, n in where))


def _top(stats: pstats.Stats, total: float, k: int) -> list[dict]:
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:k]
    root = str(Path(__file__).resolve().parents[2])
    return [{"function": f"{Path(f).name if root not in f else f.replace(root + '/', '')}:{line}({fn})"
             if not f.startswith("~") else fn, "calls": v[1], "own_s": v[2], "own_share": v[2] / total, "cum_s": v[3]}
            for (f, line, fn), v in rows]


def _profile(fn) -> tuple[pstats.Stats, float]:
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    return pstats.Stats(prof), time.perf_counter() - start


def profile_reo(n: int = 200, population: int = 24, generations: int = 3, seed: int = 0, top: int = 15,
                device: str = "cpu") -> dict:
    """Profile the digits benchmark's own REO (``DigitCounterfactuals.reo`` at tau 0.9, then the kept edits
    scored as the benchmark scores them) on ``n`` sources.

    Candidates per second exclude the benchmark's scoring after the run (morphometrics)."""
    from flowevo.domains.digits.counterfactuals import REO_POPULATION, REO_PRESCREEN, DigitCounterfactuals
    from flowevo.domains.digits.data import load_source_digits
    from flowevo.domains.digits.models import load_digit_models

    models = load_digit_models(device=device)
    x, labels = load_source_digits(None, n)
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x, labels, targets, seed, population, generations)
    out: dict = {}

    def run() -> None:
        res = cf.reo(0.9)
        cf.score(*cf.kept(res, 0.9))
        out["evaluations"] = float(res.evaluations_per_row.mean())

    stats, wall = _profile(run)
    stages = {k: _cum(stats, *v) for k, v in STAGES.items()}
    solver = "ODE solver overhead (torchdiffeq, excl. velocity)"
    stages[solver] -= stages["flow velocity (MLPVelocity.forward)"]
    run_s = wall - stages[SCORING]
    return {"what": f"DigitCounterfactuals.reo(0.9): {n} sources, {population * (generations + 1)} evaluations each "
                    f"(REO's defaults: {REO_POPULATION} residuals per source, pre-screening {REO_PRESCREEN}), then the "
                    "benchmark's scoring", "wall_s": wall,
            "candidates_per_s": out["evaluations"] * n / run_s,
            "stages": {k: {"s": v, "share": v / wall} for k, v in stages.items()}, "top": _top(stats, wall, top)}


def profile_decode(batch: int = 1024, repeats: int = 5, seed: int = 0, top: int = 12, device: str = "cpu") -> dict:
    """Profile ``repeats`` latent decodes (rk4, 10 steps) of the shipped digits flow at ``batch``."""
    from flowevo.domains.digits.models import load_digit_models
    from flowevo.flow import Condition, FixedGrid, ResidualCodec

    codec = ResidualCodec(load_digit_models(device=device).flow, FixedGrid("rk4", 10))
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(batch, 16, generator=g).to(device)
    c = Condition.from_labels(torch.randint(0, 10, (batch,), generator=g), device)

    def run() -> None:
        with torch.inference_mode():
            for _ in range(repeats):
                codec.decode_latent(r, c)
            if r.device.type == "cuda":
                torch.cuda.synchronize(r.device)

    run()  # warm-up
    stats, wall = _profile(run)
    velocity = _cum(stats, ("flow/velocity.py", "forward"))
    linear = sum(v[2] for (f, _, fn), v in stats.stats.items() if fn == "<built-in method torch._C._nn.linear>")
    return {"what": f"{repeats} decodes of {batch} latents, rk4 10 steps (40 velocity calls each)", "wall_s": wall,
            "candidates_per_s": batch * repeats / wall,
            "stages": {"velocity calls": {"s": velocity, "share": velocity / wall},
                       "of which linear layers (MKL GEMM)": {"s": linear, "share": linear / wall}},
            "top": _top(stats, wall, top)}


def profile_tables(metrics: dict) -> str:
    """Markdown: per profile, the stage shares and the top functions by own time."""
    lines = []
    for name, p in metrics["profiles"].items():
        lines += [f"**{name}**: {p['what']}; {p['wall_s']:.2f} s under cProfile, {p['candidates_per_s']:,.0f} "
                  "candidates / s (profiler overhead included).",
                  "", "| stage | s | share |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['s']:.2f} | {v['share']:.0%} |" for k, v in p["stages"].items()]
        lines += ["", "| function (own time) | calls | own s | share |", "|---|---:|---:|---:|"]
        lines += [f"| `{t['function']}` | {t['calls']} | {t['own_s']:.3f} | {t['own_share']:.1%} |" for t in p["top"]]
        lines.append("")
    return "\n".join(lines)


def run_profile(out_dir: Path | str, seed: int = 0, command: str | None = None, device: str = "cpu") -> dict:
    """Profile both paths; write ``metrics.json`` and ``top_functions.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info(command or f"flowevo benchmark profile --out {out_dir} --seed {seed}")
    metrics = {"benchmark": "profile", "command": machine["command"], "device": device,
               "profiles": {"end-to-end digits REO": profile_reo(seed=seed, device=device),
                            "decode, batch 1024": profile_decode(seed=seed, device=device)},
               "machine": machine}
    metrics["machine"]["load_average_end"] = load_average()
    write_json(out_dir / "metrics.json", metrics)
    (out_dir / "top_functions.md").write_text(f"# Profile\n\nCommand: `{metrics['command']}`; torch threads "
                                              f"{machine['torch_threads']}, load average {machine['load_average_start']}"
                                              f" -> {machine['load_average_end']}.\n\n" + profile_tables(metrics))
    return metrics
