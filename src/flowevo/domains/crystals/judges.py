"""A judge of crystal edits that shares as little as possible with the surrogate, and how far to trust each judge.

The surrogate (:func:`~.predictors.fit_surrogate`, an MLP) and the gradient-boosting judge
(:func:`~.predictors.fit_independent`) read the same per-site descriptors (:class:`~.predictors.ABXFeaturizer`)
and are fitted on the same rows, so they share their errors: an edit that fools one tends to fool the other.
:class:`ElementJudge` differs in all three respects:

* **features** (:class:`ElementStatsFeaturizer`): site-agnostic statistics over the five atoms (mean, standard
  deviation, min, max of electronegativity, atomic and ionic radius, Mendeleev number, row, group, first
  ionisation energy) and perovskite chemistry computed from oxidation states: the charge left over by each
  site's most common oxidation state, the Goldschmidt tolerance factor and the octahedral factor from Shannon
  radii of those states (pymatgen ``Species.ionic_radius``; the element's average ionic radius where pymatgen
  has none), and the electronegativity gaps A-anion and B-anion;
* **family**: kernel ridge regression with an RBF kernel (default), a random forest or k nearest neighbours
  (scikit-learn); the default and its settings were chosen on a development split
  (``benchmarks/dev/crystal_judges.py``: Spearman 0.85 against DFT on held-out training rows, where the
  forest reached 0.84 but called only a quarter of the truly low crystals low, and kNN 0.75);
* **rows**: the caller fits it on rows the surrogate never saw (e.g. the other part of a split,
  :func:`~.data.split_indices`).

:func:`judge_trust` says how far a judge can be trusted: on labelled crystals none of the judges trained on,
its Spearman correlation and mean absolute error against the labels (e.g. DFT ``heat_ref``) and the precision
and recall of its "below the threshold" calls (the success test of SR10).

Example (a :class:`~.data.CrystalTable` split into ``surrogate_rows``, ``judge_rows``, ``held``)::

    judge = fit_element_judge(judge_rows.structures, judge_rows.properties["heat_ref"], formulas=judge_rows.formulas)
    rows = judge_trust({"surrogate": surrogate.predict(held_structs), "element": judge.predict(held_structs)},
                       held.properties["heat_ref"], threshold=thresholds["sr10"])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from .predictors import Sites, abx_sites

__all__ = ["ELEMENT_STATS", "JUDGE_KINDS", "ElementJudge", "ElementStatsFeaturizer", "fit_element_judge", "judge_trust"]

#: pymatgen ``Element`` attributes whose statistics over the five atoms are features.
ELEMENT_STATS: tuple[str, ...] = ("X", "atomic_radius", "average_ionic_radius", "mendeleev_no", "row", "group",
                                  "ionization_energy")
#: model families of :func:`fit_element_judge`.
JUDGE_KINDS: tuple[str, ...] = ("kernel_ridge", "forest", "knn")
JudgeKind = Literal["kernel_ridge", "forest", "knn"]


def _float(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


@cache
def _element(symbol: str) -> tuple[tuple[float, ...], tuple[int, ...], float]:
    """``(ELEMENT_STATS values, common oxidation states, average ionic radius)`` of an element."""
    from pymatgen.core import Element

    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = tuple(_float(getattr(el, p)) for p in ELEMENT_STATS)
        states = tuple(int(s) for s in (el.common_oxidation_states or el.oxidation_states or (0,)))
        radius = _float(el.average_ionic_radius)
    return stats, states, radius


@cache
def _shannon(symbol: str, state: int) -> float:
    """Shannon ionic radius (Å) of ``symbol`` in ``state``, else its average ionic radius (NaN if neither)."""
    from pymatgen.core import Species

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = _float(Species(symbol, state).ionic_radius) if state != 0 else math.nan
        except (ValueError, KeyError):
            r = math.nan
    return r if math.isfinite(r) and r > 0 else _element(symbol)[2]


@cache
def _site_features(site: Sites) -> tuple[float, ...]:
    a, b, xs = site
    atoms = [a, b, *xs]
    stats = np.array([_element(s)[0] for s in atoms], dtype=np.float64)  # (5, len(ELEMENT_STATS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN (filled later)
        agg = np.concatenate([np.nanmean(stats, 0), np.nanstd(stats, 0), np.nanmin(stats, 0), np.nanmax(stats, 0)])
    qa, qb = max(_element(a)[1]), max(_element(b)[1])
    qx = [min(_element(x)[1]) for x in xs]
    ra, rb = _shannon(a, qa), _shannon(b, qb)
    rx = float(np.nanmean([_shannon(x, q) for x, q in zip(xs, qx)])) if any(
        math.isfinite(_shannon(x, q)) for x, q in zip(xs, qx)) else math.nan
    tolerance = (ra + rx) / (math.sqrt(2.0) * (rb + rx))
    octahedral = rb / rx if rx else math.nan
    en = {s: _element(s)[0][ELEMENT_STATS.index("X")] for s in atoms}
    en_x = float(np.nanmean([en[x] for x in xs])) if any(math.isfinite(en[x]) for x in xs) else math.nan
    chem = [qa + qb + sum(qx), abs(qa + qb + sum(qx)), tolerance, octahedral, en_x - en[a], en_x - en[b]]
    return tuple(float(v) for v in np.concatenate([agg, chem]))


@dataclass
class ElementStatsFeaturizer:
    """ABX3 sites -> ``(N, F)`` float64 features (see the module doc); NaNs filled with the fitted means."""

    fill: np.ndarray | None = None

    def fit(self, sites: Sequence[Sites]) -> ElementStatsFeaturizer:
        """Learn the NaN fill values (column means, 0 where a column is all NaN) from training sites."""
        self.fill = None
        raw = self(sites)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(raw, 0)
        self.fill = np.where(np.isfinite(mean), mean, 0.0)
        return self

    def __call__(self, sites: Sequence[Sites]) -> np.ndarray:
        """Sites ``(N)`` -> features ``(N, F)``."""
        raw = np.array([_site_features(tuple(s)) for s in sites], dtype=np.float64).reshape(len(sites), -1)
        if self.fill is not None:
            bad = ~np.isfinite(raw)
            raw[bad] = np.take(self.fill, np.nonzero(bad)[1])
        return raw


@dataclass
class ElementJudge:
    """A fitted judge ``predict(items) -> (N,)`` (Structures, ``(A, B, anions)`` tuples or 5-symbol lists).

    Attributes:
        kind: the model family (:data:`JUDGE_KINDS`).
        featurizer: the fitted :class:`ElementStatsFeaturizer`.
        model: the fitted scikit-learn regressor (on standardised features).
        x_mean, x_std: ``(F,)`` feature standardisation.
        y_mean, y_std: target standardisation (the model predicts ``(y - y_mean) / y_std``).
        rows: the number of rows it was fitted on.
    """

    kind: str
    featurizer: ElementStatsFeaturizer
    model: Any
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    rows: int

    def predict(self, items: Sequence[Any], formulas: Sequence[str] | None = None) -> np.ndarray:
        """Predicted property ``(N,)`` float64 (an empty input gives an empty array)."""
        if len(items) == 0:
            return np.zeros(0)
        z = (self.featurizer(abx_sites(items, formulas)) - self.x_mean) / self.x_std
        return np.asarray(self.model.predict(z), dtype=np.float64) * self.y_std + self.y_mean


def fit_element_judge(items: Sequence[Any], y: Sequence[float] | np.ndarray, kind: JudgeKind = "kernel_ridge",
                      seed: int = 0, formulas: Sequence[str] | None = None, **kwargs: Any) -> ElementJudge:
    """Fit an :class:`ElementJudge` of ``y (N,)`` on ABX3 ``items`` (see :func:`~.predictors.abx_sites`).

    Args:
        items: the training crystals (give rows the surrogate never saw).
        y: their property values.
        kind: ``"kernel_ridge"`` (``KernelRidge``, RBF, ``alpha`` 0.03, ``gamma`` 1 / F on standardised features
            and targets), ``"forest"`` (``RandomForestRegressor``, 300 trees, ``min_samples_leaf`` 2,
            ``max_features`` 0.5) or ``"knn"`` (``KNeighborsRegressor``, 8 neighbours, distance-weighted).
        seed: the forest's random state.
        formulas: CDVAE formulas naming A and B when ``items`` are Structures in file order.
        kwargs: override the model's settings.

    Raises:
        ValueError: an unknown ``kind``, or ``items`` and ``y`` of different lengths.
    """
    if kind not in JUDGE_KINDS:
        raise ValueError(f"unknown judge kind {kind!r}; use one of {list(JUDGE_KINDS)}")
    sites = abx_sites(items, formulas)
    y = np.asarray(y, dtype=np.float64)
    if len(sites) != len(y) or len(y) < 2:
        raise ValueError(f"fit_element_judge needs one value per item and at least 2 items, got {len(sites)} and "
                         f"{len(y)}")
    feat = ElementStatsFeaturizer().fit(sites)
    x = feat(sites)
    x_mean, x_std = x.mean(0), np.maximum(x.std(0), 1e-8)
    z = (x - x_mean) / x_std
    y_mean, y_std = float(y.mean()), float(max(y.std(), 1e-8))
    if kind == "forest":
        from sklearn.ensemble import RandomForestRegressor

        model = RandomForestRegressor(**{"n_estimators": 300, "min_samples_leaf": 2, "max_features": 0.5,
                                         "random_state": seed, "n_jobs": 1, **kwargs})
    elif kind == "kernel_ridge":
        from sklearn.kernel_ridge import KernelRidge

        model = KernelRidge(**{"kernel": "rbf", "alpha": 0.03, "gamma": 1.0 / z.shape[1], **kwargs})
    else:
        from sklearn.neighbors import KNeighborsRegressor

        model = KNeighborsRegressor(**{"n_neighbors": min(8, len(y)), "weights": "distance", **kwargs})
    model.fit(z, (y - y_mean) / y_std)
    return ElementJudge(kind, feat, model, x_mean, x_std, y_mean, y_std, len(y))


def judge_trust(predicted: Mapping[str, Sequence[float] | np.ndarray], truth: Sequence[float] | np.ndarray,
                threshold: float) -> list[dict[str, Any]]:
    """How far each judge agrees with labelled truth (e.g. DFT) on crystals none of the judges trained on.

    Args:
        predicted: judge name -> its predictions ``(N,)`` on the labelled crystals (NaN: not judged, left out).
        truth: ``(N,)`` the labels.
        threshold: the success threshold (e.g. the SR10 percentile): a crystal "succeeds" below it.

    Returns:
        one row per judge, in ``predicted``'s order: ``judge``, ``n``, ``spearman``, ``mae``,
        ``precision_below`` (of the crystals the judge puts below the threshold, the share truly below; NaN
        when it puts none there), ``recall_below`` (of the truly-below crystals, the share it puts below),
        ``predicted_below`` and ``true_below`` (counts).
    """
    from scipy.stats import spearmanr

    t_all = np.asarray(truth, dtype=np.float64)
    rows = []
    for name, p in predicted.items():
        p_all = np.asarray(p, dtype=np.float64)
        if p_all.shape != t_all.shape:
            raise ValueError(f"judge {name!r}: {p_all.shape} predictions for {t_all.shape} labels")
        ok = np.isfinite(p_all) & np.isfinite(t_all)
        pv, tv = p_all[ok], t_all[ok]
        pb, tb = pv < threshold, tv < threshold
        constant = len(pv) < 3 or np.ptp(pv) == 0 or np.ptp(tv) == 0
        rows.append({
            "judge": name, "n": int(ok.sum()),
            "spearman": math.nan if constant else float(spearmanr(pv, tv)[0]),
            "mae": float(np.mean(np.abs(pv - tv))) if len(pv) else math.nan,
            "precision_below": float(np.mean(tb[pb])) if pb.any() else math.nan,
            "recall_below": float(np.mean(pb[tb])) if tb.any() else math.nan,
            "predicted_below": int(pb.sum()), "true_below": int(tb.sum()),
        })
    return rows
