"""Image grids: rows of samples, columns of variants (source, reconstruction, each method's edit)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from flowevo.report.plots import save_figure  # noqa: E402


def image_grid(columns: dict[str, np.ndarray], path: Path | str, row_labels: Sequence[str] | None = None,
               cell_labels: dict[str, Sequence[str]] | None = None, title: str = "") -> Path:
    """Plot ``{column name: images (N, H, W)}`` as an N x C grid; optional per-cell captions."""
    names = list(columns)
    n = len(next(iter(columns.values())))
    fig, axes = plt.subplots(n, len(names), figsize=(1.25 * len(names) + 0.6, 1.3 * n + 0.5), squeeze=False)
    for j, name in enumerate(names):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(columns[name][i], cmap="gray_r", vmin=0, vmax=1 if columns[name].max() <= 1 else 255)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if cell_labels and name in cell_labels:
                ax.set_xlabel(cell_labels[name][i], fontsize=6.5, labelpad=1)
            if j == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
