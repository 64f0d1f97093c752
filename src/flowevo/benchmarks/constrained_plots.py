"""Plots of the constrained benchmark: seed summaries, 2-D samples, frontier (rounds: :mod:`flowevo.report.cfo_rounds`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from flowevo.report.cfo_rounds import COLOURS  # noqa: E402
from flowevo.report.plots import save_figure  # noqa: E402


def plot_seed_summary(summary: dict[str, Any], task: str, path: Path | str) -> Path:
    """Per variant, the final figures over seeds: mean (bar) and each seed (dots) of reward, satisfaction and,
    where present, the independent judge, the DFT-labelled mean and the distinct feasible compositions."""
    keys = [k for k in ("reward_mean", "constraint_satisfaction", "judge_mean", "dft_mean_labelled", "feasible_distinct")
            if any(k in v for v in summary.values())]
    titles = {"reward_mean": "mean reward (surrogate)", "constraint_satisfaction": "satisfaction",
              "judge_mean": "independent judge", "dft_mean_labelled": "DFT where labelled",
              "feasible_distinct": "distinct feasible compositions"}
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.6))
    names = list(summary)
    for ax, key in zip(np.atleast_1d(axes), keys):
        for i, name in enumerate(names):
            st = summary[name].get(key)
            if not st or st["mean"] is None:
                continue
            ax.bar(i, st["mean"], color=COLOURS.get(name), alpha=0.5, yerr=st["std"] or 0, capsize=3)
            vals = [v for v in st["per_seed"].values() if v is not None]
            ax.scatter([i] * len(vals), vals, color="k", s=8, zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=30, fontsize=7)
        ax.set_title(titles[key], fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{task}: final round over seeds (bar: mean ± std, dots: seeds)", fontsize=9)
    return save_figure(fig, path)


def plot_synthetic_samples(task: Any, models: dict[str, torch.nn.Module], path: Path | str, seed: int,
                           n: int = 1500) -> Path:
    """Samples of each variant's final flow with the feasible half-plane, the target and the constrained optimum."""
    from flowevo.cfo import sample_flow
    from flowevo.flow import Condition

    fig, axes = plt.subplots(1, len(models), figsize=(3.3 * len(models), 3.4), sharex=True, sharey=True)
    for ax, (name, model) in zip(np.atleast_1d(axes), models.items()):
        _, x = sample_flow(model, n, Condition.from_labels([0]), torch.Generator().manual_seed(seed + 1))
        x = x.cpu().numpy()
        ok = x[:, 0] <= task.bound
        ax.axvspan(task.bound, 6, color="C3", alpha=0.08)
        ax.scatter(x[ok, 0], x[ok, 1], s=2, color="C0", alpha=0.5)
        ax.scatter(x[~ok, 0], x[~ok, 1], s=2, color="C3", alpha=0.6)
        ax.scatter(*task.target, marker="*", s=120, color="gold", edgecolors="k", zorder=3)
        ax.scatter(*task.hard_optimum()["point"], marker="X", s=60, color="k", zorder=3)
        ax.set(title=f"{name}: {ok.mean():.1%} feasible", xlim=(-3.5, 4.0), ylim=(-3.5, 3.5), aspect="equal")
    fig.suptitle(f"final samples; star: reward peak {tuple(task.target)}, X: hard constrained optimum "
                 f"{tuple(task.hard_optimum()['point'])}, red: infeasible (x_0 > {task.bound:g})", fontsize=9)
    return save_figure(fig, path)


def plot_frontier(constrained: list[dict], free: list[dict], metrics: dict[str, Any], path: Path | str,
                  min_ess: float = 200.0) -> Path:
    """The exact reward-vs-KL frontier (constrained and unconstrained) and each variant's final point."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for pts, label, ls in ((constrained, "optimum s.t. violation rate <= max_violation", "-"),
                           (free, "optimum without the constraint", "--")):
        ok = [p for p in pts if p["ess"] >= min_ess]
        ax.plot([p["kl"] for p in ok], [p["reward"] for p in ok], color="k", ls=ls, lw=1.2, label=label)
    for name, m in metrics.items():
        ax.errorbar(m["kl_or_distance_to_pretrained"], m["reward_mean"], xerr=m.get("kl_stderr") or 0, fmt="o",
                    color=COLOURS.get(name), label=f"{name} (sat. {m['constraint_satisfaction']:.2f})")
    ax.set(xlabel="KL(p || pretrained) [nats]", ylabel="mean reward", title="synthetic: reward vs KL")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
