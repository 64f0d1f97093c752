"""Rounds of a constrained flow optimisation: reward, satisfaction and multipliers per round (``flowevo cfo``'s
``rounds.png`` and the constrained benchmark's ``<task>_rounds.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from flowevo.report.plots import save_figure  # noqa: E402

__all__ = ["COLOURS", "plot_rounds"]

COLOURS = {"pretrained": "0.4", "unconstrained": "C3", "fixed_small": "C1", "fixed_large": "C0", "cfo": "C2"}


def plot_rounds(metrics: dict[str, Any], task: str, path: Path | str, bar: float | None, target: float) -> Path:
    """Panels per round: mean reward, constraint satisfaction (all constraints), multipliers; where the rounds carry
    monitored figures (crystals), also the independent judge's mean and the distinct compositions among the
    feasible samples.

    ``metrics``: variant name -> ``{"trace": [RoundRecord.to_dict(), ...]}``, with ``"pretrained"`` holding
    ``reward_mean`` and its round-0 record; ``bar``: a satisfaction bar to draw (None: none); ``target``: the
    satisfaction CFO aims at."""
    monitored = bool(metrics["pretrained"]["trace"][0].get("monitored"))
    fig, axes = plt.subplots(1, 5 if monitored else 3, figsize=(23 if monitored else 14, 3.8))
    pre = metrics["pretrained"]
    for name, m in metrics.items():
        if name == "pretrained":
            continue
        rounds = [r["round"] for r in m["trace"]]
        c = COLOURS.get(name)
        axes[0].plot(rounds, [r["reward_mean"] for r in m["trace"]], marker=".", color=c, label=name)
        axes[1].plot(rounds, [r["satisfaction"] for r in m["trace"]], marker=".", color=c, label=name)
        for j, (cname, _) in enumerate(m["trace"][0]["multipliers"].items()):
            ls = ["-", "--", ":"][j % 3]
            axes[2].plot(rounds, [r["multipliers"][cname] for r in m["trace"]], ls=ls, marker=".", color=c,
                         label=f"{name}: {cname}" if name == "cfo" or j == 0 else None)
        if monitored:
            axes[3].plot(rounds, [r["monitored"].get("judge_mean") for r in m["trace"]], marker=".", color=c,
                         label=name)
            axes[4].plot(rounds, [r["monitored"].get("feasible_distinct") for r in m["trace"]], marker=".", color=c,
                         label=name)
    axes[0].axhline(pre["reward_mean"], color=COLOURS["pretrained"], ls="--", lw=1, label="pretrained")
    axes[0].set(title=f"{task}: mean reward of the flow's samples", xlabel="round")
    if bar is not None:
        axes[1].axhline(bar, color="k", ls=":", lw=1, label=f"bar {bar:g}")
    axes[1].axhline(target, color="C2", ls=":", lw=1, label=f"CFO target {target:g}")
    axes[1].set(title="constraint satisfaction (all constraints)", xlabel="round", ylim=(-0.02, 1.02))
    axes[2].set(title="multiplier per constraint", xlabel="round", yscale="symlog")
    if monitored:
        axes[3].axhline(pre["trace"][0]["monitored"]["judge_mean"], color=COLOURS["pretrained"], ls="--", lw=1,
                        label="pretrained")
        axes[3].set(title="independent judge: mean predicted gap", xlabel="round")
        axes[4].axhline(50, color="k", ls=":", lw=1, label="bar 50")
        axes[4].set(title="distinct compositions among feasible samples", xlabel="round")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)
