"""Plots people would rather look at than read: fitness curves and Pareto fronts (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from flowevo.evolve.history import GenerationRecord  # noqa: E402


def save_figure(fig: plt.Figure, path: Path | str, dpi: int = 110) -> Path:
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
    _feasibility(axes[0, m], [h.to_dict() for h in history], legend_size=8)
    return save_figure(fig, path)


def _feasibility(ax, history: Sequence[dict], legend_size: float) -> None:
    """The feasibility panel from :meth:`GenerationRecord.to_dict` dicts: sources with a feasible edit,
    feasible new candidates, per-constraint satisfaction (dashed) and, under a
    :class:`~flowevo.evolve.LagrangianPenalty`, each multiplier (dotted, right axis)."""
    gens = [h["generation"] for h in history]
    ax.plot(gens, [h["rows_feasible"] for h in history], marker=".", color="C2", label="sources with a feasible edit")
    ax.plot(gens, [h["feasible_fraction"] for h in history], marker=".", color="C1", label="feasible new candidates")
    for i, name in enumerate(sorted({c for h in history for c in h.get("satisfaction") or {}})):
        ax.plot(gens, [(h.get("satisfaction") or {}).get(name, np.nan) for h in history], ls="--", lw=1,
                color=f"C{(5 + i) % 10}", label=f"{name} satisfied (new)")
    ax.set(title="feasibility", xlabel="generation", ylim=(-0.05, 1.05))
    ax.legend(fontsize=legend_size, loc="best", framealpha=0.6)
    ax.grid(alpha=0.3)
    lams = sorted({c for h in history for c in h.get("multipliers") or {}})
    if lams:  # adaptive Lagrangian penalty: its multipliers on a second axis
        ax2 = ax.twinx()
        for i, name in enumerate(lams):
            ax2.plot(gens, [(h.get("multipliers") or {}).get(name, np.nan) for h in history], ls=":",
                     color=f"C{(5 + i) % 10}")
        ax2.set_ylabel("multiplier (dotted)", fontsize=8)


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


def plot_losses(losses: Sequence[float], steps: int, path: Path | str) -> Path:
    """Training loss (subsampled ``losses`` spread over ``steps``), with a moving average."""
    y = np.asarray(losses, dtype=float)
    x = np.linspace(1, steps, len(y)) if len(y) else y
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(x, y, color="C0", alpha=0.35, lw=0.8, label="loss")
    if len(y) >= 5:
        k = max(3, len(y) // 20)
        ax.plot(x[k - 1:], np.convolve(y, np.ones(k) / k, mode="valid"), color="C0", lw=1.8, label=f"moving mean ({k})")
    ax.set(xlabel="step", ylabel="flow-matching loss", title="training", yscale="log" if len(y) and (y > 0).all() else "linear")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_curves(history: Sequence[dict], names: Sequence[str], senses: Sequence[str], path: Path | str) -> Path:
    """Per objective, the mean over rows of each row's best feasible value per generation; then hypervolume
    (several objectives) and feasibility (with the Lagrange multipliers of a penalised run).
    ``history`` holds :meth:`GenerationRecord.to_dict` dicts."""
    gens = [h["generation"] for h in history]
    hv = [h.get("hypervolume") for h in history]
    has_hv = any(v is not None for v in hv)
    panels = len(names) + int(has_hv) + 1
    cols = min(panels, 3)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.1 * rows), squeeze=False)
    flat = list(axes.flat)
    for j, (name, sense) in enumerate(zip(names, senses)):
        ax = flat[j]
        ys = [h["best"][j] if h["best"][j] is not None else np.nan for h in history]
        ax.plot(gens, ys, marker=".", color=f"C{j}")
        if not np.isfinite(np.asarray(ys, dtype=float)).any():
            ax.text(0.5, 0.5, "no feasible edit yet", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=f"{name} ({sense}; mean best over sources)", xlabel="generation")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    k = len(names)
    if has_hv:
        ax = flat[k]
        ax.plot(gens, [np.nan if v is None else v for v in hv], marker=".", color="C4")
        ax.set(title="hypervolume (mean over sources)", xlabel="generation")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        k += 1
    _feasibility(flat[k], history, legend_size=6)
    flat[k].title.set_fontsize(9)
    for ax in flat[k + 1:]:
        ax.set_visible(False)
    return save_figure(fig, path)


def plot_pareto(x: np.ndarray, y: np.ndarray, colour: np.ndarray, front: np.ndarray, labels: tuple[str, str],
                colour_label: str, path: Path | str) -> Path:
    """Feasible survivors ``x (N,)`` vs ``y (N,)`` coloured by ``colour (N,)``; ``front (N,)`` bool marks each
    source's non-dominated edits (black edge)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if len(x):
        sc = ax.scatter(x[~front], y[~front], c=colour[~front], s=16, cmap="viridis", alpha=0.55,
                        vmin=np.nanmin(colour), vmax=np.nanmax(colour), label="other survivors")
        sc = ax.scatter(x[front], y[front], c=colour[front], s=42, cmap="viridis", edgecolors="k", linewidths=0.9,
                        vmin=np.nanmin(colour), vmax=np.nanmax(colour), label="Pareto set of its source")
        fig.colorbar(sc, ax=ax, label=colour_label)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no feasible survivors", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel=labels[0], ylabel=labels[1], title="alignment vs preservation (feasible survivors)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


ORIGIN_COLOURS = {"seed": "0.6", "self": "C0", "cross": "C3"}


def plot_lineage(records: Sequence[dict], row: np.ndarray, origin_names: np.ndarray, donor_row: np.ndarray,
                 path: Path | str) -> Path:
    """Lineage: survivors by origin per generation, new survivors per generation by origin, and which
    sources donated to the cross-pollinated survivors (``row (N,)``, ``origin_names (N,)`` str, ``donor_row (N,)``)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    gens = [r["generation"] for r in records]
    origins = [o for o in ("seed", "self", "cross") if any(f"survivors_{o}" in r for r in records)]
    ax = axes[0]
    if records:
        ax.stackplot(gens, *[[r[f"survivors_{o}"] for r in records] for o in origins], labels=origins,
                     colors=[ORIGIN_COLOURS[o] for o in origins], alpha=0.85)
    ax.set(title="survivors by origin", xlabel="generation", ylabel="individuals")
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1]
    width = 0.4
    g = np.asarray(gens[1:], dtype=float)
    for i, o in enumerate(("self", "cross")):
        ax.bar(g + (i - 0.5) * width, [r.get(f"kept_{o}", 0) for r in records[1:]], width, color=ORIGIN_COLOURS[o],
               label=f"{o}-pollination")
    ax.set(title="new edits kept per generation", xlabel="generation", ylabel="survivors born that generation")
    ax.legend(fontsize=8)
    ax = axes[2]
    rows = int(row.max()) + 1 if len(row) else 1
    cross = origin_names == "cross"
    m = np.zeros((rows, rows))
    np.add.at(m, (row[cross], donor_row[cross]), 1)
    im = ax.imshow(m, cmap="Reds", aspect="auto", origin="lower", vmin=0, vmax=max(1.0, float(m.max())))
    ticks = np.arange(rows) if rows <= 12 else np.linspace(0, rows - 1, 6).round().astype(int)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    fig.colorbar(im, ax=ax, label="cross-pollinated survivors")
    ax.set(title="donor source -> edited source (final survivors)", xlabel="donor source", ylabel="edited source")
    for a in axes:
        a.title.set_fontsize(9)
    return save_figure(fig, path)
