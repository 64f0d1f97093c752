"""Composition-only property predictors for ABX3 crystals.

Descriptors (:class:`ABXFeaturizer`) are element properties of the A site, the
B site, and the anion multiset (mean / min / max over the three anions plus the
count of each anion of the training vocabulary), and a Goldschmidt-style
tolerance factor.  Two model families:

* ``"mlp"``: a small torch MLP (the default **surrogate**, queried by the optimiser);
* ``"gbr"``: sklearn gradient boosting (the default **independent** predictor,
  evaluation only).  Its trees are exported to plain arrays, so prediction and
  saving need neither sklearn nor pickle.

Every predictor saves to JSON (:meth:`PropertyPredictor.save` / :func:`load_predictor`).
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ._threads import torch_threads

__all__ = [
    "ABXFeaturizer", "PropertyPredictor", "abx_sites", "fit_predictor", "load_predictor",
    "fit_surrogate", "fit_independent", "DESCRIPTOR_PROPERTIES",
]

#: pymatgen ``Element`` attributes used per element.
DESCRIPTOR_PROPERTIES: tuple[str, ...] = (
    "Z", "X", "atomic_radius", "row", "group", "atomic_mass", "average_ionic_radius",
    "mendeleev_no", "ionization_energy", "electron_affinity", "molar_volume",
    "max_oxidation_state", "min_oxidation_state",
)
_TOKEN = re.compile(r"([A-Z][a-z]?)")
Sites = tuple[str, str, tuple[str, str, str]]  # (A, B, anions)


@cache
def _element_vector(symbol: str) -> tuple[float, ...]:
    from pymatgen.core import Element

    el = Element(symbol)
    out = []
    for p in DESCRIPTOR_PROPERTIES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = getattr(el, p)
        v = float(v) if v is not None else float("nan")
        out.append(v if np.isfinite(v) else float("nan"))
    return tuple(out)


def abx_sites(items: Sequence[Any], formulas: Sequence[str] | None = None) -> list[Sites]:
    """Normalise inputs to ``(A, B, (X1, X2, X3))`` tuples.

    ``items`` are ``(A, B, anions)`` tuples, 5-symbol lists ``[A, B, X, X, X]``, or
    pymatgen Structures.  Structures are read in canonical site order
    ([A, B, X, X, X], as :meth:`CrystalRepresentation.decode` returns them) unless
    ``formulas`` are given (CDVAE convention: the first two formula elements are A
    and B; the anions are the remaining three sites).
    """
    out: list[Sites] = []
    for i, it in enumerate(items):
        if hasattr(it, "lattice"):
            symbols = [sp.symbol for sp in it.species]
            if formulas is not None:
                toks = _TOKEN.findall(formulas[i])
                rest = list(symbols)
                rest.remove(toks[0])
                rest.remove(toks[1])
                symbols = [toks[0], toks[1], *rest]
        elif len(it) == 3 and not isinstance(it[2], str):
            symbols = [it[0], it[1], *it[2]]
        else:
            symbols = list(it)
        if len(symbols) != 5:
            raise ValueError(f"item {i}: expected 5 ABX3 sites, got {symbols}")
        out.append((str(symbols[0]), str(symbols[1]), tuple(sorted(map(str, symbols[2:])))))  # type: ignore[arg-type]
    return out


@dataclass
class ABXFeaturizer:
    """ABX3 sites -> descriptor matrix ``(N, F)`` (float64, NaNs filled with training means)."""

    anions: list[str] = field(default_factory=list)
    fill: list[float] = field(default_factory=list)

    def fit(self, sites: Sequence[Sites]) -> ABXFeaturizer:
        """Learn the anion vocabulary and NaN fill values from training sites."""
        self.anions = sorted({x for s in sites for x in s[2]})
        self.fill = []
        raw = self._raw(sites)
        self.fill = [float(v) if np.isfinite(v) else 0.0 for v in np.nanmean(raw, 0)]
        return self

    def _raw(self, sites: Sequence[Sites]) -> np.ndarray:
        rows = []
        ri = DESCRIPTOR_PROPERTIES.index("average_ionic_radius")
        for a, b, xs in sites:
            fa, fb = np.array(_element_vector(a)), np.array(_element_vector(b))
            fx = np.array([_element_vector(x) for x in xs])
            counts = Counter(xs)
            rx = fx[:, ri].mean()
            tol = (fa[ri] + rx) / (np.sqrt(2.0) * (fb[ri] + rx))
            rows.append(np.concatenate([
                fa, fb, fx.mean(0), fx.min(0), fx.max(0),
                [counts.get(x, 0) for x in self.anions], [tol],
            ]))
        return np.asarray(rows, dtype=np.float64)

    def __call__(self, sites: Sequence[Sites]) -> np.ndarray:
        """Sites (N) -> descriptors ``(N, F)``."""
        raw = self._raw(sites)
        if self.fill:
            bad = ~np.isfinite(raw)
            raw[bad] = np.take(np.asarray(self.fill), np.nonzero(bad)[1])
        return raw


# ------------------------------------------------------------------ models
def _mlp(n_in: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))


def _fit_mlp(z: np.ndarray, y: np.ndarray, seed: int, hidden: int = 128, steps: int = 3000,
             show_progress: bool = False) -> dict[str, Any]:
    """Fit an MLP on standardised inputs ``z (N, F)`` and targets ``y (N,)``; returns its weights as lists."""
    from flowevo.progress import progress_bar

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = _mlp(z.shape[1], hidden)
    xt, yt = torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=3e-5)
    with progress_bar("surrogate (MLP)", steps, show_progress) as advance:
        for step in range(steps):
            idx = torch.randint(0, len(xt), (min(256, len(xt)),), generator=gen)
            loss = nn.functional.smooth_l1_loss(net(xt[idx]).squeeze(1), yt[idx], beta=0.5)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 49 or step == steps - 1:
                advance(step % 50 + 1, loss=loss.item())
    return {"hidden": hidden, "weights": {k: v.tolist() for k, v in net.state_dict().items()}}


def _fit_gbr(
    z: np.ndarray, y: np.ndarray, seed: int, n_estimators: int = 1200, max_depth: int = 5, learning_rate: float = 0.03
) -> dict[str, Any]:
    """Fit sklearn gradient boosting; returns the trees as plain arrays (no pickle)."""
    from sklearn.ensemble import GradientBoostingRegressor

    gbr = GradientBoostingRegressor(
        n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, subsample=0.7,
        max_features=0.3, random_state=seed,
    ).fit(z, y)
    trees = []
    for est in gbr.estimators_[:, 0]:
        t = est.tree_
        trees.append({
            "left": t.children_left.tolist(), "right": t.children_right.tolist(),
            "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
            "value": t.value[:, 0, 0].tolist(),
        })
    init = float(np.asarray(gbr.init_.predict(z[:1])).reshape(-1)[0])
    return {"init": init, "learning_rate": gbr.learning_rate, "trees": trees}


def _tree_predict(tree: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    node = np.zeros(len(z), dtype=np.int64)
    rows = np.arange(len(z))
    left, right, feat, thr = tree["left"], tree["right"], tree["feature"], tree["threshold"]
    while True:
        inner = left[node] >= 0
        if not inner.any():
            return tree["value"][node]
        n, r = node[inner], rows[inner]
        go_left = z[r, feat[n]] <= thr[n]
        node[inner] = np.where(go_left, left[n], right[n])


@dataclass
class PropertyPredictor:
    """A fitted composition -> property model.  ``predict(items) -> (N,)`` float64."""

    kind: Literal["mlp", "gbr"]
    property: str
    featurizer: ABXFeaturizer
    x_mean: np.ndarray  # (F,)
    x_std: np.ndarray  # (F,)
    y_mean: float
    y_std: float
    params: dict[str, Any]
    seed: int = 0

    def __post_init__(self) -> None:
        self._net: nn.Module | None = None
        self._trees: list[dict[str, np.ndarray]] | None = None

    def features(self, items: Sequence[Any], formulas: Sequence[str] | None = None) -> np.ndarray:
        """Standardised descriptors ``(N, F)``."""
        return (self.featurizer(abx_sites(items, formulas)) - self.x_mean) / self.x_std

    def predict(self, items: Sequence[Any], formulas: Sequence[str] | None = None) -> np.ndarray:
        """Predicted property ``(N,)`` for Structures, ``(A, B, anions)`` tuples or 5-symbol lists."""
        if len(items) == 0:
            return np.zeros(0)
        z = self.features(items, formulas)
        if self.kind == "mlp":
            if self._net is None:
                net = _mlp(z.shape[1], int(self.params["hidden"]))
                net.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in self.params["weights"].items()})
                self._net = net.eval()
            with torch.no_grad(), torch_threads(1):
                out = self._net(torch.as_tensor(z, dtype=torch.float32)).squeeze(1).double().numpy()
        else:
            if self._trees is None:
                self._trees = [
                    {"left": np.asarray(t["left"]), "right": np.asarray(t["right"]), "feature": np.asarray(t["feature"]),
                     "threshold": np.asarray(t["threshold"]), "value": np.asarray(t["value"])}
                    for t in self.params["trees"]
                ]
            z32 = z.astype(np.float32).astype(np.float64)  # sklearn trees split on float32 inputs
            out = np.full(len(z), self.params["init"])
            for t in self._trees:
                out += self.params["learning_rate"] * _tree_predict(t, z32)
        return out * self.y_std + self.y_mean

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state."""
        return {
            "kind": self.kind, "property": self.property, "seed": self.seed,
            "featurizer": {"anions": self.featurizer.anions, "fill": self.featurizer.fill,
                           "properties": list(DESCRIPTOR_PROPERTIES)},
            "x_mean": self.x_mean.tolist(), "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean, "y_std": self.y_std, "params": self.params,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PropertyPredictor:
        """Inverse of :meth:`state_dict`."""
        f = state["featurizer"]
        if list(f["properties"]) != list(DESCRIPTOR_PROPERTIES):
            raise ValueError("predictor was saved with different descriptor properties")
        return cls(
            kind=state["kind"], property=state["property"], seed=int(state["seed"]),
            featurizer=ABXFeaturizer(anions=list(f["anions"]), fill=list(f["fill"])),
            x_mean=np.asarray(state["x_mean"]), x_std=np.asarray(state["x_std"]),
            y_mean=float(state["y_mean"]), y_std=float(state["y_std"]), params=state["params"],
        )

    def save(self, path: str | Path) -> Path:
        """Write the predictor as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state_dict()))
        return path


def load_predictor(path: str | Path) -> PropertyPredictor:
    """Read a predictor written by :meth:`PropertyPredictor.save`."""
    return PropertyPredictor.from_state_dict(json.loads(Path(path).read_text()))


def fit_predictor(
    items: Sequence[Any],
    y: np.ndarray,
    kind: Literal["mlp", "gbr"] = "gbr",
    seed: int = 0,
    formulas: Sequence[str] | None = None,
    property: str = "heat_ref",
    **kwargs: Any,
) -> PropertyPredictor:
    """Fit a predictor of ``y (N,)`` from ABX3 items (see :func:`abx_sites`).

    ``kwargs`` go to the model fit (``mlp``: ``hidden``, ``steps``; ``gbr``: ``n_estimators``,
    ``max_depth``, ``learning_rate``).
    """
    sites = abx_sites(items, formulas)
    y = np.asarray(y, dtype=np.float64)
    if len(sites) != len(y):
        raise ValueError(f"{len(sites)} items but {len(y)} targets")
    feat = ABXFeaturizer().fit(sites)
    x = feat(sites)
    x_mean, x_std = x.mean(0), np.maximum(x.std(0), 1e-8)
    y_mean, y_std = float(y.mean()), float(max(y.std(), 1e-8))
    z, t = (x - x_mean) / x_std, (y - y_mean) / y_std
    if kind == "mlp":
        with torch_threads(1):
            params = _fit_mlp(z, t, seed, **kwargs)
    elif kind == "gbr":
        params = _fit_gbr(z, t, seed, **kwargs)
    else:
        raise ValueError(f"unknown predictor kind {kind!r}; use 'mlp' or 'gbr'")
    return PropertyPredictor(kind, property, feat, x_mean, x_std, y_mean, y_std, params, seed)


def fit_surrogate(table: Any, property: str = "heat_ref", seed: int = 0, **kwargs: Any) -> PropertyPredictor:
    """The optimiser's surrogate: an MLP fitted on a :class:`CrystalTable`."""
    return fit_predictor(table.structures, table.properties[property], "mlp", seed, table.formulas, property, **kwargs)


def fit_independent(table: Any, property: str = "heat_ref", seed: int = 1, **kwargs: Any) -> PropertyPredictor:
    """The independent judge: gradient boosting (another family and seed), evaluation only."""
    return fit_predictor(table.structures, table.properties[property], "gbr", seed, table.formulas, property, **kwargs)
