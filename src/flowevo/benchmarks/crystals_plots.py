"""Figures of the crystal benchmark: SR per budget and method, and SR against evaluations spent."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowevo.report.plots import save_figure

ORDER = ("k1_bkept", "k2_bkept", "k1", "k2", "any")


def plot_sr_by_budget(metrics: dict, path: Path | str, key: str = "sr10") -> Path:
    """Grouped bars: ``key`` by the independent predictor (left) and by CHGNet (right), per budget and method."""
    import matplotlib.pyplot as plt

    methods = list(metrics["methods"])
    budgets = [b for b in ORDER if b in next(iter(metrics["methods"].values()))["budgets"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    width = 0.8 / len(methods)
    for ax, suffix, title in ((axes[0], "", "independent predictor"), (axes[1], "_chgnet", "CHGNet formation energy")):
        for j, name in enumerate(methods):
            vals = [metrics["methods"][name]["budgets"][b][key + suffix] or 0.0 for b in budgets]
            ax.bar(np.arange(len(budgets)) + (j - (len(methods) - 1) / 2) * width, vals, width, label=name)
        ax.set_xticks(range(len(budgets)), budgets)
        ax.set_title(f"{key.upper()} judged by the {title}")
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel(f"fraction of sources below the {key[2:]}th percentile")
    axes[1].legend(fontsize=8, ncol=2)
    return save_figure(fig, path)


def plot_sr_vs_evaluations(metrics: dict, path: Path | str, budgets: tuple[str, ...] = ("k1_bkept", "k2_bkept"),
                           key: str = "sr10") -> Path:
    """``key`` (independent predictor) against surrogate evaluations per source, one panel per budget:
    Evolver-based methods as curves over generations, the others as their final point."""
    import matplotlib.pyplot as plt

    names = list(metrics["methods"])
    fig, axes = plt.subplots(1, len(budgets), figsize=(5.5 * len(budgets), 4), squeeze=False)
    for ax, budget in zip(axes[0], budgets):
        for i, name in enumerate(names):
            r = metrics["methods"][name]["budgets"][budget]
            if r.get("curve"):
                ax.plot([c["evaluations"] for c in r["curve"]], [c[key] for c in r["curve"]], "-o", ms=4, color=f"C{i}",
                        label=name)
            else:
                ax.scatter(r["evaluations"], r[key] or 0.0, s=45, color=f"C{i}", label=name, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("surrogate evaluations per source")
        ax.set_ylabel(f"{key.upper()} (independent predictor)")
        ax.set_title(f"budget {budget}")
        ax.set_ylim(0, None)
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, path)
