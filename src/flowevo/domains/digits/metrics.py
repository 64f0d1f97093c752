"""Counterfactual metrics (LeapFactual protocol): accuracy, confidence, morphology change, diversity."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from flowevo.domains.digits.morphometrics import METRICS, measure_batch

SHAPE_METRICS = ("area", "length", "thickness", "width", "height")  # slant's relative change explodes near 0


def morph_rel_change(m_edit: np.ndarray, m_ref: np.ndarray) -> dict[str, float]:
    """Mean over rows of ``|m(edit) - m(ref)| / |m(ref)|`` per morphometric (``(N, 6)`` inputs, METRICS order).

    Rows where either measurement is NaN (empty image) are left out of that metric's mean.
    """
    out = {}
    for j, name in enumerate(METRICS):
        rel = np.abs(m_edit[:, j] - m_ref[:, j]) / np.maximum(np.abs(m_ref[:, j]), 1e-6)
        ok = np.isfinite(rel)
        out[name] = float(rel[ok].mean()) if ok.any() else float("nan")
    return out


def slant_abs_change(m_edit: np.ndarray, m_ref: np.ndarray) -> float:
    """Mean absolute slant change in radians."""
    j = METRICS.index("slant")
    d = np.abs(m_edit[:, j] - m_ref[:, j])
    return float(np.nanmean(d))


def morph_mean(rel: dict[str, float]) -> float:
    """Mean relative change over area, length, thickness, width and height."""
    return float(np.mean([rel[k] for k in SHAPE_METRICS]))


def diversity(images: list[Tensor], processes: int | None = None) -> dict[str, float | None]:
    """Mean pairwise distance of the solutions kept per source, averaged over sources with >= 2.

    Args:
        images: per source, a ``(K_b, 28, 28)`` tensor of kept solutions.

    Returns:
        ``{"pixel": ..., "morpho": ..., "sources_with_several": n}``: pixel L2, and L2 in
        morphometric space after dividing each metric by its spread over all kept solutions.
    """
    several = [im for im in images if im.shape[0] >= 2]
    if not several:
        return {"pixel": None, "morpho": None, "sources_with_several": 0}
    pix = [float(torch.pdist(im.flatten(1).double()).mean()) for im in several]
    allm = measure_batch(torch.cat(several).cpu().numpy(), processes=processes)
    scale = np.nanstd(allm, axis=0)
    scale[~(scale > 0)] = 1.0
    morph, start = [], 0
    for im in several:
        m = allm[start:start + im.shape[0]] / scale
        start += im.shape[0]
        m = m[np.isfinite(m).all(axis=1)]
        if len(m) >= 2:
            morph.append(float(torch.pdist(torch.as_tensor(m)).mean()))
    return {"pixel": float(np.mean(pix)), "morpho": float(np.mean(morph)) if morph else None,
            "sources_with_several": len(several)}
