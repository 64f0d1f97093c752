"""Fixed-size tensor representation of 5-site ABX3 crystals (Perov-5).

Layout of one row (D = 6 + 5 * (6 + F) = 56 with the default F = 4 species
features), before standardisation:

* ``[0:3]``  log lattice lengths ln(a), ln(b), ln(c) (Angstrom)
* ``[3:6]``  lattice angles alpha, beta, gamma in radians
* per site s in canonical order [A, B, X_a, X_b, X_c], 6 + F values:
  sin(2 pi f) (3), cos(2 pi f) (3) of the fractional coordinates, then the
  :class:`SpeciesCode` of its element (F).

Every column is standardised with the training mean and std (std floored at
``min_std`` raw units, so constant columns such as the cubic angles map to 0).
Coordinates are translated so that the A site sits at the origin.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .species import ELEMENT_FEATURES, SpeciesCode

__all__ = ["SpeciesCode", "CrystalRepresentation", "canonical_order", "N_SITES"]

# --------------------------------------------------------------------------
# Canonical site order for ABX3 (5-site) cells
# --------------------------------------------------------------------------

N_SITES = 5
_FORMULA_TOKEN = re.compile(r"([A-Z][a-z]?)")


def _nearest_anion_distance(structure: Any, site: int, anions: Sequence[int]) -> float:
    """Shortest periodic distance (Angstrom) from ``site`` to any of ``anions``."""
    return min(structure.get_distance(site, j) for j in anions)


def canonical_order(structure: Any, formula: str | None = None) -> list[int]:
    """Site indices ordered as [A, B, X_a, X_b, X_c] for a 5-site ABX3 cell.

    Cations: with ``formula`` (CDVAE Perov-5 convention, e.g. ``"CuCdN3"``)
    the first element is A and the second B; the other three sites are the
    anions.  Without it, the two sites of lowest Pauling electronegativity
    (ties: lower Z, then lower index) are the cations, and B is the one closer
    to its nearest anion (octahedral B-X ~ a/2 vs 12-fold A-X ~ a/sqrt(2)).
    The same geometric rule picks A among equal elements (e.g. ``TiTiO3``).
    Anions: X_a/X_b/X_c are assigned one-to-one to the faces normal to a/b/c
    (ideal offsets from A (0,1/2,1/2), (1/2,0,1/2), (1/2,1/2,0)) by the
    permutation with the least total squared deviation of the minimum-image
    offsets (first in ``itertools.permutations`` order on ties).
    """
    from pymatgen.core import Element

    n = len(structure)
    if n != N_SITES:
        raise ValueError(f"expected a {N_SITES}-site ABX3 cell, got {n} sites ({structure.formula})")
    symbols = [site.specie.symbol for site in structure]

    def geometric_ab(pair: list[int], anions: list[int]) -> tuple[int, int]:
        da = [_nearest_anion_distance(structure, i, anions) for i in pair]
        return (pair[0], pair[1]) if da[0] >= da[1] else (pair[1], pair[0])

    if formula:
        tokens = _FORMULA_TOKEN.findall(formula)
        if len(tokens) < 2:
            raise ValueError(f"formula {formula!r} names fewer than two elements")
        a_el, b_el = tokens[0], tokens[1]
        cands_a = [i for i, s in enumerate(symbols) if s == a_el]
        cands_b = [i for i, s in enumerate(symbols) if s == b_el]
        if not cands_a or not cands_b or (a_el == b_el and len(cands_a) < 2):
            raise ValueError(f"formula {formula!r} does not match the structure's sites {symbols}")
        if a_el == b_el:
            pair = cands_a[:2]
        else:
            pair = [cands_a[0], cands_b[0]]
        anions = [i for i in range(n) if i not in pair]
        a, b = geometric_ab(pair, anions) if a_el == b_el else (pair[0], pair[1])
    else:
        key = sorted(range(n), key=lambda i: (Element(symbols[i]).X, Element(symbols[i]).Z, i))
        pair = sorted(key[:2])
        anions = [i for i in range(n) if i not in pair]
        a, b = geometric_ab(pair, anions)
    frac = structure.frac_coords
    err = np.stack([_face_errors(frac[i] - frac[a]) for i in anions])  # (3 anions, 3 axes)
    best = min(itertools.permutations(range(3)), key=lambda p: sum(err[j, p[j]] for j in range(3)))
    anions = [anions[best.index(k)] for k in range(3)]
    return [a, b, *anions]


# Ideal face-centre offsets of the anions from an A site at the origin.
_FACE = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])


def _face_errors(offset: np.ndarray) -> np.ndarray:
    """Squared distance (frac units) of an A->anion offset to the ideal face of each axis, (3,)."""
    d = np.abs((np.asarray(offset) + 0.5) % 1.0 - 0.5)  # minimum-image |offset|, in [0, 1/2]
    return ((d - _FACE) ** 2).sum(1)


# --------------------------------------------------------------------------
# Tensor codec
# --------------------------------------------------------------------------

_ANGLE_RANGE = (61.0, 119.0)  # degrees; any triple inside is a valid lattice


class CrystalRepresentation:
    """Encode ABX3 structures to float32 arrays (N, D) and decode them back.

    ``fit(structures, formulas=None)`` learns the species vocabulary (with
    per-role decode restriction: A, B, and the pooled anion sites) and the
    column means/stds.  ``formulas`` (CDVAE's A-then-B convention) fixes the
    A/B assignment; without it the rule of :func:`canonical_order` is used.
    """

    def __init__(self, min_std: float = 0.01, restrict_sites: bool = True) -> None:
        self.min_std = float(min_std)
        self.restrict_sites = bool(restrict_sites)
        self.species = SpeciesCode()
        self.mean: np.ndarray | None = None  # (D,)
        self.std: np.ndarray | None = None  # (D,)

    # ---- layout -------------------------------------------------------
    @property
    def site_dim(self) -> int:
        """Values per site: 6 periodic coordinates + species code."""
        return 6 + len(ELEMENT_FEATURES)

    @property
    def dim(self) -> int:
        """Row length D."""
        return 6 + N_SITES * self.site_dim

    def site_slice(self, site: int) -> slice:
        """Columns of site ``site`` (0=A, 1=B, 2-4=anions)."""
        start = 6 + site * self.site_dim
        return slice(start, start + self.site_dim)

    def species_slice(self, site: int) -> slice:
        """Columns holding the species code of ``site``."""
        s = self.site_slice(site)
        return slice(s.start + 6, s.stop)

    def feature_names(self) -> list[str]:
        """Human-readable name of each of the D columns."""
        names = [f"ln_{k}" for k in "abc"] + ["alpha", "beta", "gamma"]
        for role in ["A", "B", "Xa", "Xb", "Xc"]:
            names += [f"{role}_sin_{k}" for k in "xyz"] + [f"{role}_cos_{k}" for k in "xyz"]
            names += [f"{role}_{p}" for p in ELEMENT_FEATURES]
        return names

    # ---- canonicalisation -------------------------------------------------
    def canonicalize(self, structures: Sequence[Any], formulas: Sequence[str] | None = None) -> list[Any]:
        """Reorder sites to [A, B, X_a, X_b, X_c] and translate A to the origin."""
        from pymatgen.core import Structure

        if formulas is not None and len(formulas) != len(structures):
            raise ValueError(f"{len(formulas)} formulas for {len(structures)} structures")
        out = []
        for i, s in enumerate(structures):
            order = canonical_order(s, None if formulas is None else formulas[i])
            frac = s.frac_coords[order]
            frac = (frac - frac[0]) % 1.0
            out.append(Structure(s.lattice, [s[j].specie for j in order], frac))
        return out

    # ---- raw features -----------------------------------------------------
    def _raw(self, structures: Sequence[Any]) -> tuple[np.ndarray, list[list[str]]]:
        """Canonical structures -> geometric raw columns (N, D) and symbols (N, 5)."""
        n = len(structures)
        raw = np.zeros((n, self.dim), dtype=np.float64)
        symbols = []
        for i, s in enumerate(structures):
            if len(s) != N_SITES:
                raise ValueError(f"structure {i} has {len(s)} sites, expected {N_SITES}")
            if not s.is_ordered:
                raise ValueError(f"structure {i} is disordered (partial occupancies)")
            lat = s.lattice
            raw[i, 0:3] = np.log(lat.abc)
            raw[i, 3:6] = np.radians(lat.angles)
            ang = 2.0 * math.pi * s.frac_coords  # (5, 3)
            for site in range(N_SITES):
                start = self.site_slice(site).start
                raw[i, start : start + 3] = np.sin(ang[site])
                raw[i, start + 3 : start + 6] = np.cos(ang[site])
            symbols.append([site.specie.symbol for site in s])
        return raw, symbols

    def _fill_species(self, raw: np.ndarray, symbols: list[list[str]]) -> np.ndarray:
        codes = self.species.encode(symbols)  # (N, 5, F)
        for site in range(N_SITES):
            raw[:, self.species_slice(site)] = codes[:, site]
        return raw

    # ---- public API ---------------------------------------------------------
    def fit(self, structures: Sequence[Any], formulas: Sequence[str] | None = None) -> CrystalRepresentation:
        """Learn vocabulary and column statistics from training structures."""
        if len(structures) == 0:
            raise ValueError("CrystalRepresentation.fit needs at least one structure")
        canon = self.canonicalize(structures, formulas)
        raw, symbols = self._raw(canon)
        groups = [[0], [1], [2, 3, 4]] if self.restrict_sites else None
        self.species.fit(symbols, site_groups=groups)
        raw = self._fill_species(raw, symbols)
        self.mean = raw.mean(0)
        self.std = np.maximum(raw.std(0), self.min_std)
        return self

    def _check_fitted(self) -> None:
        if self.mean is None or self.std is None:
            raise RuntimeError("CrystalRepresentation is not fitted")

    def encode(
        self,
        structures: Sequence[Any],
        formulas: Sequence[str] | None = None,
        ordered: bool = False,
    ) -> np.ndarray:
        """Structures -> standardised float32 array (N, D).

        ``ordered=True`` takes the site order as already canonical (e.g. the
        output of :meth:`decode`) and only translates A to the origin.
        """
        self._check_fitted()
        if ordered:
            canon = []
            for s in structures:
                if len(s) != N_SITES:
                    raise ValueError(f"structure has {len(s)} sites, expected {N_SITES}")
                canon.append(s.copy())
                canon[-1].translate_sites(list(range(N_SITES)), -s.frac_coords[0], frac_coords=True)
        else:
            canon = self.canonicalize(structures, formulas)
        raw, symbols = self._raw(canon)
        raw = self._fill_species(raw, symbols)
        return ((raw - self.mean) / self.std).astype(np.float32)

    def decode(self, array: np.ndarray) -> list[Any]:
        """Array (N, D) (or (D,)) -> Structures with sites [A, B, X_a, X_b, X_c].

        Angles are clipped to [61, 119] degrees so every row gives a valid
        lattice; elements are the nearest allowed vocabulary entries.
        """
        from pymatgen.core import Lattice, Structure

        self._check_fitted()
        x = np.asarray(array, dtype=np.float64)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"array must have shape (N, {self.dim}), got {np.shape(array)}")
        if not np.all(np.isfinite(x)):
            bad = np.where(~np.isfinite(x).all(1))[0]
            raise ValueError(f"array has NaN/inf in rows {bad[:10].tolist()}")
        raw = x * self.std + self.mean
        lengths = np.exp(np.clip(raw[:, 0:3], -5.0, 5.0))
        angles = np.clip(np.degrees(raw[:, 3:6]), *_ANGLE_RANGE)
        codes = np.stack([raw[:, self.species_slice(s)] for s in range(N_SITES)], axis=1)
        symbols = self.species.decode(codes)
        out = []
        for i in range(len(x)):
            frac = np.zeros((N_SITES, 3))
            for s in range(N_SITES):
                start = self.site_slice(s).start
                frac[s] = np.arctan2(raw[i, start : start + 3], raw[i, start + 3 : start + 6])
            frac = (frac / (2.0 * math.pi)) % 1.0
            lat = Lattice.from_parameters(*lengths[i], *angles[i])
            out.append(Structure(lat, symbols[i], frac))
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: plain lists, floats, strings and bools."""
        self._check_fitted()
        return {
            "kind": "CrystalRepresentation",
            "version": 1,
            "n_sites": N_SITES,
            "min_std": self.min_std,
            "restrict_sites": self.restrict_sites,
            "mean": [float(v) for v in self.mean],  # type: ignore[union-attr]
            "std": [float(v) for v in self.std],  # type: ignore[union-attr]
            "species": self.species.state_dict(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> CrystalRepresentation:
        """Inverse of :meth:`state_dict`."""
        if state.get("kind") != "CrystalRepresentation" or state.get("n_sites") != N_SITES:
            raise ValueError("state is not a 5-site CrystalRepresentation state")
        obj = cls(min_std=state["min_std"], restrict_sites=state["restrict_sites"])
        obj.species = SpeciesCode.from_state_dict(state["species"])
        obj.mean = np.asarray(state["mean"], dtype=np.float64)
        obj.std = np.asarray(state["std"], dtype=np.float64)
        if obj.mean.shape != (obj.dim,) or obj.std.shape != (obj.dim,):
            raise ValueError(f"state mean/std have shape {obj.mean.shape}, expected ({obj.dim},)")
        return obj
