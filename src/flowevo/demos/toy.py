"""Toy demo: edit 2-D class-0 samples into class 2 with two objectives, and plot what happened."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from flowevo.domains.toy import ToyMixture, train_toy_flow  # noqa: E402
from flowevo.evolve import Checkpointer, EditTask, Evolver, MaxGenerations  # noqa: E402
from flowevo.flow import Condition, FixedGrid, ResidualCodec, TrainConfig, load_checkpoint, save_checkpoint  # noqa: E402
from flowevo.jsonio import read_json, write_json  # noqa: E402
from flowevo.objectives import FunctionObjective, LocalEvaluator  # noqa: E402
from flowevo.report.plots import plot_front, plot_history, save_figure  # noqa: E402
from flowevo.workflows.devices import restore_run_state  # noqa: E402


def resume_toy_demo(run_dir: Path | str, show_progress: bool = True, device: str | None = None) -> dict:
    """Continue a killed toy demo from ``run_dir/checkpoint.pt`` (same results as an uninterrupted run on the same
    device type; ``device``: continue elsewhere, statistically equivalent, see :mod:`flowevo.workflows.devices`)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a flowevo run directory (no config.json)")
    cfg = read_json(cfg_path)
    if cfg.get("demo") != "toy":
        raise ValueError(f"{run_dir}: resume supports toy demo runs; this run is {cfg.get('demo')!r}")
    return run_toy_demo(run_dir, seed=cfg["seed"], rows=cfg["rows"], generations=cfg["generations"],
                        device=device or cfg["device"], show_progress=show_progress, resume=True)


def run_toy_demo(run_dir: Path | str, seed: int = 0, rows: int = 24, generations: int = 15,
                 device: str = "cpu", show_progress: bool = True, resume: bool = False) -> dict:
    """Train a 2-D flow, run two-objective REO, write ``run_dir`` (metrics.json, history.csv, PNGs, edits.npz).

    The run directory also holds ``config.json``, the model (``model.pt``) and a checkpoint
    written after every generation (``checkpoint.pt``); ``resume=True`` continues from it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    toy = ToyMixture(dim=2, num_classes=3, modes=2, seed=0)
    if resume:
        model, _ = load_checkpoint(run_dir / "model.pt", device=device)
    else:
        model = train_toy_flow(toy, config=TrainConfig(steps=1500, seed=seed), device=device, show_progress=show_progress)
        save_checkpoint(run_dir / "model.pt", model, {"domain": "toy", "seed": seed})
        config = {"demo": "toy", "seed": seed, "rows": rows, "generations": generations, "device": device}
        write_json(run_dir / "config.json", config)
    codec = ResidualCodec(model, FixedGrid("rk4", 10))
    src, lab = toy.sample(rows, torch.Generator().manual_seed(seed + 1), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src.to(device), Condition.from_labels(lab, device), Condition.from_labels(torch.full((rows,), 2), device))
    goal = toy.centres[2, 0].to(device)
    objectives = [
        FunctionObjective("distance_to_goal", "min", lambda b: (b.x - goal).norm(dim=1)),
        FunctionObjective("distance_to_source", "min", lambda b: (b.x - b.sources).norm(dim=1)),
    ]
    evolver = Evolver(codec, task, LocalEvaluator(objectives), population_size=16,
                      termination=[MaxGenerations(generations)], seed=seed)
    if resume:
        restore_run_state(evolver, run_dir / "checkpoint.pt", seed)
    result = evolver.run(callbacks=[Checkpointer(run_dir / "checkpoint.pt")], show_progress=show_progress)

    pop = result.population
    values = pop.values.numpy()
    front = result.pareto_mask().numpy()
    plot_history(result.history, result.objective_names, run_dir / "fitness.png")
    plot_front(values, result.objective_names, run_dir / "front.png",
               colour=pop.row.cpu().numpy().astype(float), colour_label="source row", front=None)
    _plot_edits(toy, src.numpy(), result.best.decoded.cpu().numpy(), goal.cpu().numpy(), run_dir / "edits.png")
    with open(run_dir / "history.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(result.history[0].to_dict()))
        w.writeheader()
        for h in result.history:
            w.writerow(h.to_dict())
    np.savez(run_dir / "edits.npz", sources=src.numpy(), edits=pop.decoded.cpu().numpy(), row=pop.row.cpu().numpy(),
             values=values, pareto=front)
    metrics = {
        "demo": "toy", "rows": rows, "generations": result.history[-1].generation,
        "evaluations": result.evaluations, "stop_reason": result.stop_reason,
        "objectives": dict(zip(result.objective_names, result.senses)),
        "initial_mean_best": result.history[0].best, "final_mean_best": result.history[-1].best,
        "final_hypervolume": result.history[-1].hypervolume, "pareto_points_per_row": float(front.sum() / rows),
        "wall_s": time.perf_counter() - start,
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def _plot_edits(toy: ToyMixture, src: np.ndarray, edits: np.ndarray, goal: np.ndarray, path: Path) -> None:
    bg, lab = toy.sample(3000, torch.Generator().manual_seed(123))
    fig, ax = plt.subplots(figsize=(5, 5))
    for k in range(toy.num_classes):
        pts = bg[lab == k].numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.25, label=f"class {k}")
    for s, e in zip(src, edits):
        ax.annotate("", xy=e, xytext=s, arrowprops=dict(arrowstyle="->", color="0.3", lw=0.8))
    ax.scatter(src[:, 0], src[:, 1], c="k", s=12, label="sources")
    ax.scatter(edits[:, 0], edits[:, 1], c="C3", s=12, label="best edit per source")
    ax.scatter(*goal, marker="*", s=200, c="gold", edgecolors="k", label="goal")
    ax.legend(fontsize=7, loc="best")
    ax.set(title="REO edits: class 0 -> class 2, toward the goal", aspect="equal")
    save_figure(fig, path)
