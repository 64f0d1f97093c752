"""Crystal objectives and constraints over :class:`~flowevo.objectives.Candidates`.

Candidates' ``x`` is the ``(N, D)`` representation tensor; decoded pymatgen Structures
(canonical site order [A, B, X, X, X]) travel in ``extra["structures"]``, filled once per
batch by the Evolver's ``payload`` hook (:func:`structures_payload`).  A row that could not
be decoded holds ``None``: objectives return NaN for it (the evaluator marks it failed)
and validity constraints return 1.

Preservation and edit budgets compare each candidate with its **source**: pass the
canonical source structures of the task rows (``sources[candidates.source_index]``, e.g.
from :func:`canonical_sources`), or a representation to decode ``candidates.sources``.

Edit budgets (``budget_constraint``): ``"any"`` (none), ``"k1"``/``"k2"`` (at most 1/2 sites
changed, :func:`~flowevo.domains.crystals.validity.sites_changed`: A and B count 0/1 each,
the anions 3 minus the overlap of the two anion multisets) and ``"k1_bkept"``/``"k2_bkept"``
(the same, and the B-site element unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowevo.objectives import Candidates, Constraint, FunctionObjective, Sense

from .representation import CrystalRepresentation
from .species import element_features
from .validity import SMACT_SET, CompositionCheck, sites_changed, space_group, structure_valid

__all__ = [
    "BUDGETS", "structures_payload", "structure_projection", "canonical_sources", "property_objective",
    "formation_energy_objective",
    "structure_validity_constraint", "composition_validity_constraint", "space_group_objective",
    "sites_changed_objective", "fingerprint", "fingerprint_distance_objective", "budget_violation",
    "budget_constraint",
]

BUDGETS: dict[str, tuple[int, bool]] = {
    "any": (5, False), "k1": (1, False), "k2": (2, False), "k1_bkept": (1, True), "k2_bkept": (2, True),
}


# ------------------------------------------------------------------ payload and inputs
def structures_payload(representation: CrystalRepresentation) -> Callable[[Tensor], dict[str, list]]:
    """Evolver ``payload`` hook: ``x (N, D) -> {"structures": list of N Structures (None if undecodable)}``."""

    def payload(x: Tensor) -> dict[str, list]:
        arr = x.detach().cpu().double().numpy()
        try:
            return {"structures": representation.decode(arr)}
        except ValueError:  # e.g. NaN rows: decode one at a time, None where it fails
            out: list[Any] = []
            for row in arr:
                try:
                    out.append(representation.decode(row[None])[0])
                except ValueError:
                    out.append(None)
            return {"structures": out}

    return payload


def structure_projection(representation: CrystalRepresentation) -> Callable[[Tensor], Tensor]:
    """CFO ``project`` hook: ``x (N, D) -> (N, D)``, each row replaced by its decoded structure re-encoded (exact
    species codes in data space, A at the origin; an encoder in front of the flow then keeps what its subspace holds);
    a row that cannot be decoded becomes NaN (the caller keeps the original)."""
    decode = structures_payload(representation)

    def project(x: Tensor) -> Tensor:
        structures = decode(x)["structures"]
        out = torch.full(x.shape, math.nan, dtype=torch.float32)
        ok = [i for i, s in enumerate(structures) if s is not None]
        if ok:
            out[ok] = torch.from_numpy(representation.encode([structures[i] for i in ok], ordered=True))
        return out.to(x.device, x.dtype)

    return project


def canonical_sources(table: Any, representation: CrystalRepresentation) -> list[Any]:
    """A :class:`CrystalTable`'s structures in canonical [A, B, X, X, X] order (formulas fix A and B)."""
    return representation.canonicalize(table.structures, table.formulas)


def _structures(c: Candidates, representation: CrystalRepresentation | None) -> list[Any]:
    if "structures" in c.extra:
        return list(c.extra["structures"])
    if representation is None:
        raise KeyError("candidates carry no extra['structures']; pass a representation or use structures_payload")
    return structures_payload(representation)(c.x)["structures"]


def _sources(c: Candidates, sources: Sequence[Any] | None, representation: CrystalRepresentation | None) -> list[Any]:
    if sources is not None:
        return [sources[int(i)] for i in c.source_index.tolist()]
    if c.sources is None or representation is None:
        raise ValueError("source structures needed: pass `sources` (per task row) or a representation")
    return structures_payload(representation)(c.sources)["structures"]


def _symbols(s: Any) -> list[str]:
    return [sp.symbol for sp in s.species]


def _per_structure(fn: Callable[[Any], float], structures: Sequence[Any], missing: float = math.nan) -> Tensor:
    return torch.tensor([missing if s is None else float(fn(s)) for s in structures], dtype=torch.float64)


# ------------------------------------------------------------------ objectives
def property_objective(
    predictor: Any,
    name: str = "surrogate",
    sense: Sense = "min",
    representation: CrystalRepresentation | None = None,
) -> FunctionObjective:
    """``predictor.predict(structures) -> (N,)`` as an objective (surrogate or independent judge)."""

    def fn(c: Candidates) -> Tensor:
        structures = _structures(c, representation)
        ok = [i for i, s in enumerate(structures) if s is not None]
        out = torch.full((len(structures),), math.nan, dtype=torch.float64)
        if ok:
            out[ok] = torch.as_tensor(predictor.predict([structures[i] for i in ok]), dtype=torch.float64)
        return out

    return FunctionObjective(name, sense, fn)


def formation_energy_objective(
    formation: Callable[[Sequence[Any]], np.ndarray],
    name: str = "chgnet_formation",
    representation: CrystalRepresentation | None = None,
) -> FunctionObjective:
    """CHGNet formation-energy estimate (e.g. :class:`~.energy.FormationEnergy`), minimised."""
    return property_objective(_PredictAdapter(formation), name, "min", representation)


class _PredictAdapter:
    def __init__(self, fn: Callable[[Sequence[Any]], np.ndarray]) -> None:
        self.fn = fn

    def predict(self, structures: Sequence[Any]) -> np.ndarray:
        return np.asarray(self.fn(structures), dtype=np.float64)


def structure_validity_constraint(
    min_dist: float = 0.5, min_volume: float = 0.1, representation: CrystalRepresentation | None = None
) -> Constraint:
    """Violation 1 where a structure fails :func:`structure_valid` (or is missing), else 0."""
    return Constraint(
        "structure_valid",
        lambda c: _per_structure(lambda s: 1.0 - structure_valid(s, min_dist, min_volume), _structures(c, representation), 1.0),
        cheap=True,
    )


def composition_validity_constraint(
    oxidation_states_set: str = SMACT_SET, representation: CrystalRepresentation | None = None,
    name: str = "composition_valid", check: CompositionCheck | None = None,
) -> Constraint:
    """``g = 1`` where SMACT (``oxidation_states_set``) rejects the composition or the structure is missing
    (could not be built), else 0; bound 0.

    ``check``: a :class:`~.validity.CompositionCheck` to share (its cache and setting; it then overrides
    ``oxidation_states_set``); default a new one, cached by composition for the constraint's lifetime.
    """
    check = check or CompositionCheck(oxidation_states_set)
    return Constraint(name, lambda c: _per_structure(lambda s: 1.0 - float(check(s)), _structures(c, representation), 1.0),
                      cheap=True)


def space_group_objective(
    symprec: float = 0.1,
    sources: Sequence[Any] | None = None,
    compare_to_source: bool = False,
    representation: CrystalRepresentation | None = None,
) -> FunctionObjective:
    """Space group by spglib (discrete).

    Default: the international number (1-230, sense ``"max"``: higher is more symmetric
    within a crystal family).  ``compare_to_source=True``: 1 where it differs from the
    source's, else 0 (sense ``"min"``).
    """

    def sg(s: Any) -> float:
        try:
            return float(space_group(s, symprec))
        except Exception:  # spglib fails on degenerate cells
            return math.nan

    if not compare_to_source:
        return FunctionObjective("space_group", "max", lambda c: _per_structure(sg, _structures(c, representation)))

    def changed(c: Candidates) -> Tensor:
        new = _per_structure(sg, _structures(c, representation))
        old = _per_structure(sg, _sources(c, sources, representation))
        return torch.where(torch.isnan(new) | torch.isnan(old), torch.nan, (new != old).double())

    return FunctionObjective("space_group_changed", "min", changed)


def sites_changed_objective(
    sources: Sequence[Any] | None = None, representation: CrystalRepresentation | None = None
) -> FunctionObjective:
    """Preservation: number of changed sites vs the source, 0..5 (minimised)."""

    def fn(c: Candidates) -> Tensor:
        new, old = _structures(c, representation), _sources(c, sources, representation)
        return torch.tensor(
            [math.nan if a is None or b is None else sites_changed(_symbols(b), _symbols(a)) for a, b in zip(new, old)],
            dtype=torch.float64,
        )

    return FunctionObjective("sites_changed", "min", fn)


@cache
def _features(symbol: str) -> tuple[float, ...]:
    return tuple(element_features(symbol))


def fingerprint(structures: Sequence[Any], representation: CrystalRepresentation) -> np.ndarray:
    """Continuous fingerprint ``(N, 3 + 5F)`` of canonical ABX3 structures.

    Standardised log lattice lengths, then the species codes of A, B and the three
    anions sorted by atomic number (so reordering the anion sites changes nothing).
    """
    from pymatgen.core import Element

    sp = representation.species
    mean, std = representation.mean, representation.std
    if mean is None or std is None:
        raise RuntimeError("representation is not fitted")
    rows = []
    for s in structures:
        sym = _symbols(s)
        if len(sym) != 5:
            raise ValueError(f"fingerprint needs 5-site ABX3 structures, got {len(sym)} sites")
        order = sym[:2] + sorted(sym[2:], key=lambda e: Element(e).Z)
        codes = (np.array([_features(e) for e in order]) - sp.mean) / sp.std
        lat = (np.log(s.lattice.abc) - mean[0:3]) / std[0:3]
        rows.append(np.concatenate([lat, codes.reshape(-1)]))
    return np.asarray(rows, dtype=np.float64)


def fingerprint_distance_objective(
    representation: CrystalRepresentation, sources: Sequence[Any] | None = None
) -> FunctionObjective:
    """Preservation (continuous): Euclidean :func:`fingerprint` distance to the source (minimised)."""

    def fn(c: Candidates) -> Tensor:
        new, old = _structures(c, representation), _sources(c, sources, representation)
        ok = [i for i, (a, b) in enumerate(zip(new, old)) if a is not None and b is not None]
        out = torch.full((len(new),), math.nan, dtype=torch.float64)
        if ok:
            d = fingerprint([new[i] for i in ok], representation) - fingerprint([old[i] for i in ok], representation)
            out[ok] = torch.as_tensor(np.linalg.norm(d, axis=1))
        return out

    return FunctionObjective("fingerprint_distance", "min", fn)


# ------------------------------------------------------------------ edit budgets
def budget_violation(source: Sequence[Any], candidate: Sequence[Any], budget: str) -> int:
    """Edit-budget violation >= 0 between two [A, B, X, X, X] site lists (or canonical Structures).

    ``max(0, sites_changed - k) + (1 if B changed and the budget keeps B)``; 0 means allowed.
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {sorted(BUDGETS)}")
    k, keep_b = BUDGETS[budget]
    src = _symbols(source) if hasattr(source, "species") else [str(e) for e in source]
    new = _symbols(candidate) if hasattr(candidate, "species") else [str(e) for e in candidate]
    return max(0, sites_changed(src, new) - k) + int(keep_b and src[1] != new[1])


def budget_constraint(
    budget: str, sources: Sequence[Any] | None = None, representation: CrystalRepresentation | None = None
) -> list[Constraint]:
    """The edit-budget constraint as a list (empty for ``"any"``); violation = :func:`budget_violation`."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {sorted(BUDGETS)}")
    if budget == "any":
        return []

    def fn(c: Candidates) -> Tensor:
        new, old = _structures(c, representation), _sources(c, sources, representation)
        return torch.tensor(
            [math.nan if a is None or b is None else budget_violation(b, a, budget) for a, b in zip(new, old)],
            dtype=torch.float64,
        )

    return [Constraint(f"budget_{budget}", fn, cheap=True)]
