"""Plots people would rather look at than read: fitness curves and Pareto fronts (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from flowevo.evolve.history import GenerationRecord  # noqa: E402


def save_figure(fig, path: Path | str, dpi: int = 110) -> Path:
    """Lay out, write and close a matplotlib figure; returns the path."""
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_history(history: Sequence[GenerationRecord], names: Sequence[str], path: Path | str) -> Path:
    """Mean best value per objective over generations (one panel each) plus feasibility."""
    gens = [h.generation for h in history]
    m = len(names)
    fig, axes = plt.subplots(1, m + 1, figsize=(4 * (m + 1), 3.2), squeeze=False)
    for j, name in enumerate(names):
        ax = axes[0, j]
        ax.plot(gens, [h.best[j] for h in history], marker=".", color="C0")
        ax.set(title=f"{name} (mean best over rows)", xlabel="generation")
        ax.grid(alpha=0.3)
    ax = axes[0, m]
    ax.plot(gens, [h.rows_feasible for h in history], marker=".", color="C2", label="rows with a feasible edit")
    ax.plot(gens, [h.feasible_fraction for h in history], marker=".", color="C1", label="feasible new candidates")
    ax.set(title="feasibility", xlabel="generation", ylim=(-0.05, 1.05))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_front(values: np.ndarray, names: Sequence[str], path: Path | str, colour: np.ndarray | None = None,
               colour_label: str = "", front: np.ndarray | None = None) -> Path:
    """Scatter of two objectives ``values (N, 2)``; ``front (N,)`` bool highlights the non-dominated points."""
    fig, ax = plt.subplots(figsize=(5, 4))
    sc = ax.scatter(values[:, 0], values[:, 1], c=colour, s=14, cmap="viridis", alpha=0.8)
    if colour is not None:
        fig.colorbar(sc, ax=ax, label=colour_label)
    if front is not None and front.any():
        f = values[front]
        f = f[np.argsort(f[:, 0])]
        ax.plot(f[:, 0], f[:, 1], color="C3", lw=1.5, marker="o", ms=4, label="Pareto front")
        ax.legend(fontsize=8)
    ax.set(xlabel=names[0], ylabel=names[1], title="candidates and Pareto front")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
