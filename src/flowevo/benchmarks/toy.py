"""Toy benchmark: solver accuracy, and REO vs random search vs CMA-ES on a black-box edit task.

Task: sources are class-0 samples of a 16-D :class:`ToyMixture`; each is decoded under
class 1 and must reach a rare region of class 1: a projection ``u . x`` onto a fixed
random direction above the ``quantile`` (default 99.9%) of true class-1 samples, while
staying realistic (within the 99.9% distance of a true class-1 mode centre: a black-box
constraint; without it, unconstrained searches decode huge residuals to off-distribution
points with enormous projections). The black box returns the projection and the
realism distance only. All methods search the same residual space of the same trained
flow with the same per-row budget and seed, each at its own settings (:data:`TOY_SETTINGS`, chosen on
development seeds 10-12; the benchmark runs seeds 0-4).
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from flowevo.baselines import cma_search, random_search
from flowevo.domains.toy import ToyMixture, train_toy_flow
from flowevo.evolve import EditResult, EditTask, Evolver, MaxEvaluations, PreScreen, Variation
from flowevo.flow import Adaptive, Condition, FixedGrid, ResidualCodec, TrainConfig
from flowevo.jsonio import write_json
from flowevo.objectives import Constraint, Evaluator, FunctionObjective, LocalEvaluator, QueryCounter

TOY_SETTINGS: dict[str, dict] = {
    # chosen on development seeds 10-12 (docs/benchmarks.md, "Query efficiency"; the benchmark runs 0-4): REO at
    # population 16 (plain, pre-screened with a per-source or a pooled GP), 8 and 4 (pooled), 4 (per-source) and 2
    # (pooled), 8 or 16 children decoded per child scored; CMA-ES at population 2, 4 (steps 0.3, 0.5, 1.0), 6 (1.0),
    # 8 and 16; random search has no setting but its batch.
    "reo": {"population": 2, "prescreen": 8, "pool": True, "cross_rate": 0.3},
    "cma": {"popsize": 4, "sigma0": 0.5},
    "random": {"batch": 16},
}
"""Each toy method's settings: ``batch`` (the candidates per row and step) is ``population`` / ``popsize`` / ``batch``."""


def toy_batch(method: str) -> int:
    """Candidates per row and step of a toy method at its :data:`TOY_SETTINGS`."""
    s = TOY_SETTINGS[method]
    return s.get("population") or s.get("popsize") or s["batch"]


SOLVERS = [FixedGrid("euler", 10), FixedGrid("euler", 50), FixedGrid("midpoint", 10), FixedGrid("rk4", 5),
           FixedGrid("rk4", 10), FixedGrid("rk4", 20), Adaptive("dopri5", 1e-5, 1e-5), Adaptive("dopri5", 1e-6, 1e-6)]


def _label(d) -> str:
    return f"{d.method}_{d.steps}" if isinstance(d, FixedGrid) else f"{d.method}_tol{d.rtol:g}"


def roundtrip_table(model, x: torch.Tensor, c: Condition) -> dict:
    """Relative round-trip error (mean, max) and NFE per direction for each solver setting."""
    out = {}
    for d in SOLVERS:
        codec = ResidualCodec(model, d)
        start = time.perf_counter()
        with torch.inference_mode():
            err = codec.roundtrip_error(x, c)
        out[_label(d)] = {"mean": float(err.mean()), "max": float(err.max()), "nfe": codec.nfe / 2,
                          "wall_s": time.perf_counter() - start}
    return out


def _summary(first_success: torch.Tensor, wall_s: float, evaluations: int, best: torch.Tensor) -> dict:
    ok = torch.isfinite(first_success)
    med = statistics.median(first_success.tolist())
    return {
        "success_rate": float(ok.double().mean()),
        "evaluations_to_target": None if math.isinf(med) else med,  # median over rows; failures count as inf
        "evaluations_to_target_successful": statistics.median(first_success[ok].tolist()) if ok.any() else None,
        "evaluations_per_row": evaluations,
        "best_projection_mean": float(best.mean()),
        "wall_s": wall_s,
    }


@dataclass
class ToyEditTask:
    """The toy benchmark's black-box edit task for one seed (trained flow, rows, black box, success).

    ``success(evaluation, candidates) -> (N,)`` bool: projection at or above ``threshold`` and realistic."""

    toy: ToyMixture
    model: torch.nn.Module
    codec: ResidualCodec
    task: EditTask
    evaluator: LocalEvaluator
    success: Callable
    threshold: float
    realism_bound: float
    train_s: float


def toy_edit_task(seed: int = 0, rows: int = 32, quantile: float = 0.999, show_progress: bool = False,
                  device: str = "cpu") -> ToyEditTask:
    """Train the 16-D toy flow (seeded by ``seed``) on ``device`` and build the edit task every toy method is run on
    (sources and reference samples are drawn on the CPU, so they are the same on every device)."""
    t0 = time.perf_counter()
    toy = ToyMixture(dim=16, num_classes=3, modes=2, seed=0)
    model = train_toy_flow(toy, config=TrainConfig(steps=1500, seed=seed), device=device, show_progress=show_progress)
    train_s = time.perf_counter() - t0
    src, lab = toy.sample(rows, torch.Generator().manual_seed(20_000 + seed), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(rows, dtype=torch.long)))
    u = torch.randn(16, generator=torch.Generator().manual_seed(5))
    u = u / u.norm()
    ref, _ = toy.sample(50_000, torch.Generator().manual_seed(3), labels=torch.ones(50_000, dtype=torch.long))
    centres = toy.centres[1]
    distance = lambda x: torch.cdist(x, centres).min(dim=1).values
    threshold = torch.quantile(ref @ u, quantile).item()
    realism_bound = torch.quantile(distance(ref), 0.999).item()
    u, centres = u.to(device), centres.to(device)
    objective = FunctionObjective("projection", "max", lambda b: b.x @ u)
    evaluator = LocalEvaluator([objective], [Constraint("realism", lambda b: distance(b.x), realism_bound)])
    success = lambda ev, cands: (ev.values[:, 0] >= threshold) & (ev.violation == 0)
    codec = ResidualCodec(model, FixedGrid("rk4", 8))
    return ToyEditTask(toy, model, codec, task, evaluator, success, threshold, realism_bound, train_s)


def toy_search(setup: ToyEditTask, method: str, budget: int = 512, seed: int = 0, evaluator: Evaluator | None = None,
               show_progress: bool = False) -> EditResult:
    """Run ``method`` (``reo``, ``random`` or ``cma``) on the task at its :data:`TOY_SETTINGS`, as the toy benchmark
    does. REO: pre-screening with a Gaussian process pooled over the rows (they share the target, and the black
    box reads the decoded candidate alone).

    ``evaluator`` replaces the task's own (e.g. a :class:`~flowevo.objectives.QueryCounter`)."""
    evaluator = setup.evaluator if evaluator is None else evaluator
    rows = len(setup.task)
    if method not in TOY_SETTINGS:
        raise ValueError(f"unknown toy method {method!r}; use reo, random or cma")
    s = TOY_SETTINGS[method]
    if method == "reo":
        variation = PreScreen(Variation(cross_rate=s["cross_rate"]), factor=s["prescreen"], pool=s["pool"], seed=seed)
        evolver = Evolver(setup.codec, setup.task, evaluator, population_size=s["population"], variation=variation,
                          termination=[MaxEvaluations(budget * rows)], seed=seed)
        return evolver.run(show_progress=show_progress)
    if method == "random":
        return random_search(setup.codec, setup.task, evaluator, budget, batch=s["batch"], seed=seed)
    return cma_search(setup.codec, setup.task, evaluator, budget, popsize=s["popsize"], sigma0=s["sigma0"], seed=seed)


def run_toy_benchmark(out_dir: Path | str, seed: int = 0, rows: int = 32, budget: int = 512,
                      quantile: float = 0.999, show_progress: bool = False, device: str = "cpu") -> dict:
    """Run the benchmark and write ``out_dir/metrics.json``; returns the metrics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    setup = toy_edit_task(seed, rows, quantile, show_progress, device)
    toy, model, threshold, realism_bound = setup.toy, setup.model, setup.threshold, setup.realism_bound

    x_test, y_test = toy.sample(256, torch.Generator().manual_seed(10_000 + seed))
    roundtrip = roundtrip_table(model, x_test.to(device), Condition.from_labels(y_test, device))

    methods = {}
    for name in ("reo", "random", "cma"):
        counter = QueryCounter(setup.evaluator, rows, {"success": setup.success})
        start = time.perf_counter()
        res = toy_search(setup, name, budget, seed, evaluator=counter, show_progress=show_progress and name == "reo")
        # whole batches: a row's first success counts every evaluation of the batch (step) it came in
        batch = toy_batch(name)
        first = torch.ceil(counter.first["success"] / batch) * batch
        methods[name] = _summary(first, time.perf_counter() - start, int(res.evaluations_per_row.mean()),
                                 res.best.values[:, 0])

    metrics = {
        "benchmark": "toy",
        "command": f"flowevo benchmark toy --out {out_dir} --seed {seed} --device {device}", "device": device,
        "seed": seed,
        "task": {"dim": 16, "rows": rows, "budget_per_row": budget, "settings": TOY_SETTINGS, "quantile": quantile,
                 "threshold": threshold, "realism_bound": realism_bound, "codec": "rk4, 8 steps",
                 "objective": "maximise u.x of the candidate decoded under class 1; success: u.x >= the quantile "
                              "of true class-1 samples and within the realism bound"},
        "roundtrip_rel_error": roundtrip,
        "methods": methods,
        "train_s": setup.train_s,
        "total_s": time.perf_counter() - t0,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics
