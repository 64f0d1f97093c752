"""Continuous per-site species code: element <-> small vector of element properties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SpeciesCode", "ELEMENT_FEATURES", "element_features"]

#: Properties (pymatgen ``Element`` attributes) making up the code, in order.
#: (row, group) alone identify every element outside the f-block; X and the
#: atomic radius place chemically similar elements close together.
ELEMENT_FEATURES: tuple[str, ...] = ("X", "atomic_radius", "row", "group")


def element_features(symbol: str) -> list[float]:
    """Raw (unscaled) property vector of one element, shape (F,)."""
    import warnings

    from pymatgen.core import Element

    try:
        el = Element(symbol)
    except ValueError as exc:
        raise ValueError(f"unknown element symbol {symbol!r}") from exc
    out = []
    for name in ELEMENT_FEATURES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns before returning NaN
            v = getattr(el, name)
        v = float(v) if v is not None else float("nan")
        if not np.isfinite(v):
            raise ValueError(f"element {symbol} has no {name!r} value; it cannot be encoded")
        out.append(v)
    return out


class SpeciesCode:
    """Map element symbols to standardised property vectors and back.

    ``fit`` builds the vocabulary from the data; decoding picks the nearest
    vocabulary element (Euclidean, in the standardised code space),
    optionally restricted per site to the elements seen at that site (or
    site group) in the data.  Round trips are exact for the vocabulary.
    """

    def __init__(self) -> None:
        self.elements: list[str] = []
        self.table = np.zeros((0, len(ELEMENT_FEATURES)))  # (V, F) raw properties
        self.mean = np.zeros(len(ELEMENT_FEATURES))
        self.std = np.ones(len(ELEMENT_FEATURES))
        self.allowed: list[list[str]] | None = None  # per site, or None = any

    @property
    def dim(self) -> int:
        """Code length F per site."""
        return len(ELEMENT_FEATURES)

    def fit(
        self,
        site_elements: Sequence[Sequence[str]],
        site_groups: Sequence[Sequence[int]] | None = None,
    ) -> SpeciesCode:
        """Build the vocabulary from per-structure element lists, shape (N, S).

        ``site_groups`` (e.g. ``[[0], [1], [2, 3, 4]]``) pools sites that share
        one allowed set at decode time; ``None`` allows every element anywhere.
        """
        rows = [[str(e) for e in r] for r in site_elements]
        if not rows:
            raise ValueError("SpeciesCode.fit needs at least one structure")
        n_sites = len(rows[0])
        if any(len(r) != n_sites for r in rows):
            raise ValueError("SpeciesCode.fit: all structures need the same number of sites")
        from pymatgen.core import Element

        self.elements = sorted({e for r in rows for e in r}, key=lambda s: Element(s).Z)
        self.table = np.array([element_features(e) for e in self.elements], dtype=np.float64)
        self.mean = self.table.mean(0)
        self.std = np.maximum(self.table.std(0), 1e-6)
        codes = self._scaled_table()
        d = np.linalg.norm(codes[:, None] - codes[None], axis=-1) + np.eye(len(codes))
        if len(codes) > 1 and d.min() < 1e-6:
            i, j = np.unravel_index(np.argmin(d), d.shape)
            raise ValueError(f"elements {self.elements[i]} and {self.elements[j]} share one code")
        if site_groups is None:
            self.allowed = None
        else:
            allowed: list[list[str] | None] = [None] * n_sites
            for group in site_groups:
                seen = {r[s] for r in rows for s in group}
                for s in group:
                    allowed[s] = [e for e in self.elements if e in seen]
            if any(a is None for a in allowed):
                raise ValueError(f"site_groups {site_groups} do not cover all {n_sites} sites")
            self.allowed = allowed  # type: ignore[assignment]
        return self

    def _scaled_table(self) -> np.ndarray:
        return (self.table - self.mean) / self.std

    def _check_fitted(self) -> None:
        if not self.elements:
            raise RuntimeError("SpeciesCode is not fitted")

    def encode(self, site_elements: Sequence[Sequence[str]]) -> np.ndarray:
        """Element symbols (N, S) -> codes (N, S, F) float64.

        Raises ``ValueError`` for an element outside the vocabulary or not
        allowed at its site (it could not be decoded back).
        """
        self._check_fitted()
        index = {e: i for i, e in enumerate(self.elements)}
        codes = self._scaled_table()
        out = []
        for r in site_elements:
            row = []
            for s, e in enumerate(r):
                e = str(e)
                if e not in index:
                    raise ValueError(f"element {e} is not in the fitted vocabulary {self.elements}")
                if self.allowed is not None and e not in self.allowed[s]:
                    raise ValueError(f"element {e} is not allowed at site {s} (allowed: {self.allowed[s]})")
                row.append(codes[index[e]])
            out.append(row)
        return np.asarray(out, dtype=np.float64)

    def decode(self, codes: np.ndarray) -> list[list[str]]:
        """Codes (N, S, F) -> nearest allowed element symbols (N, S)."""
        self._check_fitted()
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 3 or codes.shape[-1] != self.dim:
            raise ValueError(f"codes must have shape (N, S, {self.dim}), got {codes.shape}")
        if not np.all(np.isfinite(codes)):
            raise ValueError("codes contain NaN or inf")
        table = self._scaled_table()
        n_sites = codes.shape[1]
        if self.allowed is not None and n_sites != len(self.allowed):
            raise ValueError(f"codes have {n_sites} sites, the code was fitted on {len(self.allowed)}")
        out: list[list[str]] = [[""] * n_sites for _ in range(len(codes))]
        for s in range(n_sites):
            names = self.elements if self.allowed is None else self.allowed[s]
            sub = table[[self.elements.index(e) for e in names]]
            d = ((codes[:, s, None, :] - sub[None]) ** 2).sum(-1)  # (N, V_s)
            for n, j in enumerate(d.argmin(1)):
                out[n][s] = names[j]
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (lists, floats, strings only)."""
        return {
            "features": list(ELEMENT_FEATURES),
            "elements": list(self.elements),
            "table": self.table.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "allowed": None if self.allowed is None else [list(a) for a in self.allowed],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SpeciesCode:
        """Inverse of :meth:`state_dict`."""
        if list(state["features"]) != list(ELEMENT_FEATURES):
            raise ValueError(f"state uses features {state['features']}, this code uses {ELEMENT_FEATURES}")
        obj = cls()
        obj.elements = list(state["elements"])
        obj.table = np.asarray(state["table"], dtype=np.float64).reshape(len(obj.elements), -1)
        obj.mean = np.asarray(state["mean"], dtype=np.float64)
        obj.std = np.asarray(state["std"], dtype=np.float64)
        obj.allowed = None if state["allowed"] is None else [list(a) for a in state["allowed"]]
        return obj
