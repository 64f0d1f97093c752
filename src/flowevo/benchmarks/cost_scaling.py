"""Cost scaling: time per generation against population, residual dimension and NFE; accuracy against NFE.

Timing uses **untrained** ``MLPVelocity`` models with the shipped digits flow's architecture
(hidden width, depth, time features) and the residual dimension under test: the cost of a
generation does not depend on what the weights are. A generation is one full REO cycle on a
synthetic edit task (variation, repair, one batched decode, a cheap vectorised objective,
survival); its cost should be linear in the number of candidates, in the dimension (through the
first and last linear layers) and in the solver's NFE. Each sweep is fitted by least squares
(slope, intercept, R^2).

Accuracy uses the **trained** shipped digits flow: the relative round-trip error
``|decode(invert(z)) - z| / |z|`` of held-out digit latents for each solver and step count.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from flowevo.benchmarks.machine import load_average, machine_info
from flowevo.benchmarks.throughput import linear_flops_per_sample
from flowevo.evolve import EditTask, Evolver, MaxGenerations
from flowevo.flow import Adaptive, Condition, FixedGrid, MLPVelocity, ResidualCodec
from flowevo.jsonio import write_json
from flowevo.objectives import FunctionObjective, LocalEvaluator
from flowevo.progress import progress_bar

POPULATIONS = (4, 8, 16, 32, 64)  # individuals per row (rows fixed): candidates per generation = rows x k
DIMS = (8, 64, 256, 512, 1024, 2048)  # wide: the dimension only enters the first and last layers
RK4_STEPS = (1, 2, 4, 8, 16)  # NFE = 4 x steps
ACCURACY_STEPS = {"euler": (2, 4, 8, 16, 32, 64, 128), "midpoint": (1, 2, 4, 8, 16, 32, 64), "rk4": (1, 2, 4, 8, 16, 32)}
ACCURACY_TOLS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict:
    """Least-squares line ``y = slope * x + intercept`` and its coefficient of determination R^2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("a line needs at least two distinct x values")
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(((y - (slope * x + intercept)) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"slope": float(slope), "intercept": float(intercept), "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0}


def _model(dim: int, arch: dict, seed: int, device: str = "cpu") -> MLPVelocity:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MLPVelocity((dim,), num_classes=10, hidden=arch["hidden"], depth=arch["depth"],
                           time_dim=arch["time_dim"]).eval().to(device)


def generation_time(dim: int, rows: int, per_row: int, steps: int, arch: dict, seed: int = 0,
                    generations: int = 3, device: str = "cpu") -> dict:
    """Seconds per REO generation (best and median of ``generations`` timed ones after generation 0).

    Synthetic task: ``rows`` random sources in ``dim`` dimensions, random source/target classes,
    objective = L2 distance of the decoded candidate to its source (``min``), rk4 with ``steps``.
    Also splits each generation into ``ask`` (variation + decode) and ``tell`` (objective + survival).
    """
    g = torch.Generator().manual_seed(seed)
    model = _model(dim, arch, seed, device)
    codec = ResidualCodec(model, FixedGrid("rk4", steps))
    x = torch.randn(rows, dim, generator=g)
    task = EditTask(x, Condition.from_labels(torch.randint(0, 10, (rows,), generator=g)),
                    Condition.from_labels(torch.randint(0, 10, (rows,), generator=g)))
    objective = FunctionObjective("distance", "min", lambda c: (c.x - c.sources).flatten(1).norm(dim=1))
    evaluator = LocalEvaluator([objective])
    evolver = Evolver(codec, task, evaluator, population_size=per_row,
                      termination=[MaxGenerations(generations)], seed=seed)
    evolver.step()  # generation 0 (inversion of the sources, seeding): not timed
    total, ask, tell = [], [], []
    for _ in range(generations):
        t0 = time.perf_counter()
        cands = evolver.ask()
        _sync(device)
        t1 = time.perf_counter()
        evolver.tell(evaluator(cands))
        _sync(device)
        t2 = time.perf_counter()
        total.append(t2 - t0), ask.append(t1 - t0), tell.append(t2 - t1)
    n = rows * per_row
    flops = n * 4 * steps * linear_flops_per_sample(model)
    best = min(total)
    return {"dim": dim, "rows": rows, "per_row": per_row, "candidates": n, "steps": steps, "nfe": 4 * steps,
            "seconds": best, "seconds_median": statistics.median(total), "ask_s": min(ask), "tell_s": min(tell),
            "flops": flops, "gflop_per_s": flops / best / 1e9}


def _sync(device: str) -> None:
    """Wait for queued GPU work, so wall-clock stages are honest on CUDA."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def roundtrip_curve(model: torch.nn.Module, z: torch.Tensor, c: Condition,
                    steps: dict[str, Sequence[int]] = ACCURACY_STEPS, tols: Sequence[float] = ACCURACY_TOLS) -> list[dict]:
    """Relative round-trip error (mean, max) of ``z (N, *S)`` and NFE per direction, per solver setting."""
    settings = [FixedGrid(m, s) for m, ss in steps.items() for s in ss] + [Adaptive("dopri5", t, t) for t in tols]
    out = []
    for d in settings:
        codec = ResidualCodec(model, d)
        with torch.inference_mode():
            err = codec.roundtrip_error(z, c)
        out.append({"method": d.method, "steps": getattr(d, "steps", None), "tol": getattr(d, "rtol", None),
                    "nfe": codec.nfe / 2, "mean": float(err.mean()), "max": float(err.max())})
    return out


def convergence_order(points: list[dict], floor: float = 1e-5) -> float | None:
    """Slope of log(mean error) against log(NFE) over the points above ``floor`` (float32 round-off).

    A method of order p has slope about -p."""
    pts = [(p["nfe"], p["mean"]) for p in points if p["mean"] > floor]
    if len(pts) < 2:
        return None
    return linear_fit([math.log(n) for n, _ in pts], [math.log(e) for _, e in pts])["slope"]


def plot_cost(metrics: dict, path: Path | str) -> Path:
    """Three panels: seconds per generation against candidates, dimension and NFE, with the fitted lines."""
    import matplotlib.pyplot as plt

    from flowevo.report.plots import save_figure

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (name, key, label) in zip(axes, (("population", "candidates", "candidates per generation"),
                                             ("dimension", "dim", "residual dimension"), ("nfe", "nfe", "NFE per decode"))):
        sweep = metrics["sweeps"][name]
        xs = [p[key] for p in sweep["points"]]
        ax.plot(xs, [p["seconds"] for p in sweep["points"]], "o", label="measured (best of gens)")
        ax.plot(xs, [p["seconds_median"] for p in sweep["points"]], "x", color="grey", label="median")
        fit = sweep["fit"]
        grid = np.linspace(0, max(xs), 50)
        ax.plot(grid, fit["slope"] * grid + fit["intercept"], "-", label=f"fit, R² = {fit['r2']:.3f}")
        ax.set(xlabel=label, ylabel="seconds per generation", title=sweep["fixed"])
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax, fit = axes[3], metrics["sweeps"]["flops"]["fit"]
    for name in ("population", "dimension", "nfe"):
        pts = metrics["sweeps"][name]["points"]
        ax.plot([p["flops"] / 1e9 for p in pts], [p["seconds"] for p in pts], "o", label=f"{name} sweep")
    top = max(p["flops"] for n in ("population", "dimension", "nfe") for p in metrics["sweeps"][n]["points"])
    grid = np.linspace(0, top, 50)
    ax.plot(grid / 1e9, fit["slope"] * grid + fit["intercept"], "-", color="grey",
            label=f"one line, {1e-9 / fit['slope']:.0f} GFLOP/s, R² = {fit['r2']:.3f}")
    ax.set(xlabel="GFLOP per generation (linear layers)", ylabel="seconds per generation", title="all points")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_accuracy(metrics: dict, path: Path | str) -> Path:
    """Log-log round-trip error against NFE per solver."""
    import matplotlib.pyplot as plt

    from flowevo.report.plots import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method, pts in metrics["accuracy"]["curves"].items():
        order = metrics["accuracy"]["order"].get(method)
        label = method + (f" (slope {order:.1f})" if order is not None else "")
        ax.loglog([p["nfe"] for p in pts], [p["mean"] for p in pts], "o-", label=label)
    ax.set(xlabel="NFE per direction", ylabel="mean relative round-trip error",
           title=f"shipped digits flow, {metrics['accuracy']['samples']} held-out latents")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def run_cost_benchmark(out_dir: Path | str, seed: int = 0, rows: int = 32, populations: Sequence[int] = POPULATIONS,
                       dims: Sequence[int] = DIMS, rk4_steps: Sequence[int] = RK4_STEPS, generations: int = 5,
                       accuracy_samples: int = 256, command: str | None = None, show_progress: bool = False,
                       log: Callable[[str], None] = lambda s: None, device: str = "cpu") -> dict:
    """Run the three timing sweeps and the accuracy curve; write ``metrics.json``, ``cost.png``, ``accuracy.png``.

    Defaults: rk4 with 10 steps, dimension 16 and 16 individuals per row unless swept; ``rows`` sources;
    each point is the best of ``generations`` timed generations (the least disturbed by other load).
    """
    from flowevo.domains.digits.data import load_source_digits
    from flowevo.domains.digits.models import load_digit_models

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info(command or f"flowevo benchmark cost --out {out_dir} --seed {seed}")
    t_start = time.perf_counter()
    models = load_digit_models(device=device)
    arch = {k: models.flow.config[k] for k in ("hidden", "depth", "time_dim")}
    base = {"dim": 16, "per_row": 16, "steps": 10}
    jobs = [("population", "candidates", dict(base, per_row=k)) for k in populations]
    jobs += [("dimension", "dim", dict(base, dim=d)) for d in dims]
    jobs += [("nfe", "nfe", dict(base, steps=s)) for s in rk4_steps]
    points: dict[str, list[dict]] = {"population": [], "dimension": [], "nfe": []}
    with progress_bar("cost sweeps", total=len(jobs), enabled=show_progress) as advance:
        for name, _, kw in jobs:
            points[name].append(generation_time(rows=rows, arch=arch, seed=seed, generations=generations, device=device,
                                                **kw))
            advance(1)
    fixed = {"population": f"dim 16, NFE 40, {rows} rows", "dimension": f"{rows * 16} candidates, NFE 40",
             "nfe": f"{rows * 16} candidates, dim 16"}
    sweeps = {name: {"fixed": fixed[name], "points": pts, "fit": linear_fit([p[key] for p in pts], [p["seconds"] for p in pts]),
                     "fit_median": linear_fit([p[key] for p in pts], [p["seconds_median"] for p in pts])}
              for name, key, pts in (("population", "candidates", points["population"]),
                                     ("dimension", "dim", points["dimension"]), ("nfe", "nfe", points["nfe"]))}
    every = [p for pts in points.values() for p in pts]
    sweeps["flops"] = {"fixed": "all points", "fit": linear_fit([p["flops"] for p in every], [p["seconds"] for p in every])}
    log("accuracy")

    x, labels = load_source_digits(None, accuracy_samples)
    with torch.inference_mode():
        z = models.vae.encode(x.to(device))
    curve = roundtrip_curve(models.flow, z, Condition.from_labels(labels, device))
    curves = {m: [p for p in curve if p["method"] == m] for m in dict.fromkeys(p["method"] for p in curve)}
    accuracy = {"samples": len(z), "model": "shipped digits flow (trained), latents of held-out digits",
                "curves": curves, "order": {m: convergence_order(pts) for m, pts in curves.items() if m in ACCURACY_STEPS}}

    metrics = {
        "benchmark": "cost", "command": machine["command"], "seed": seed, "device": device,
        "models": {"timing": f"untrained MLPVelocity, hidden {arch['hidden']}, depth {arch['depth']}, time features "
                             f"{arch['time_dim']} (the shipped digits flow's architecture), 10 classes",
                   "task": "synthetic: random sources and classes; objective L2 to the source (cheap, vectorised)",
                   "accuracy": accuracy["model"]},
        "generations_timed": generations, "sweeps": sweeps, "accuracy": accuracy,
        "machine": {**machine, "load_average_end": load_average()},
        "total_s": time.perf_counter() - t_start,
    }
    write_json(out_dir / "metrics.json", metrics)
    plot_cost(metrics, out_dir / "cost.png")
    plot_accuracy(metrics, out_dir / "accuracy.png")
    return metrics


def cost_tables(metrics: dict) -> str:
    """Markdown tables (docs/benchmarks.md-ready) of the fits, the points and the accuracy curve."""
    s = metrics["sweeps"]
    lines = ["| sweep | fixed | slope | intercept (s) | R² |", "|---|---|---:|---:|---:|"]
    units = {"population": "s per candidate", "dimension": "s per dimension", "nfe": "s per NFE", "flops": "s per GFLOP"}
    for name in ("population", "dimension", "nfe", "flops"):
        f = s[name]["fit"]
        slope = f["slope"] * (1e9 if name == "flops" else 1.0)
        lines.append(f"| {name} | {s[name]['fixed']} | {slope:.3g} {units[name]} | {f['intercept']:.3f} | {f['r2']:.3f} |")
    lines += ["", "| sweep | x | s / generation (best) | median | ask (decode) s | tell s | GFLOP/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, key in (("population", "candidates"), ("dimension", "dim"), ("nfe", "nfe")):
        for p in s[name]["points"]:
            lines.append(f"| {name} | {p[key]} | {p['seconds']:.3f} | {p['seconds_median']:.3f} | {p['ask_s']:.3f} | "
                         f"{p['tell_s']:.4f} | {p['gflop_per_s']:.1f} |")
    acc = metrics["accuracy"]
    lines += ["", "| solver | setting | NFE / direction | mean rel. error | max rel. error |", "|---|---|---:|---:|---:|"]
    for m, pts in acc["curves"].items():
        for p in pts:
            setting = f"{p['steps']} step{'s' * (p['steps'] > 1)}" if p["steps"] is not None else f"tol {p['tol']:g}"
            lines.append(f"| {m} | {setting} | {p['nfe']:g} | {p['mean']:.1e} | {p['max']:.1e} |")
    orders = ", ".join(f"{m} {o:.2f}" for m, o in acc["order"].items() if o is not None)
    lines += ["", f"Empirical order (slope of log error against log NFE, points above 1e-5): {orders}."]
    return "\n".join(lines) + "\n"
