"""Crystal constraints with a bound: strict SMACT validity and a formation-energy ceiling.

Both read decoded Structures from ``Candidates.extra["structures"]`` (the Evolver's / CFO's
``payload`` hook, :func:`~flowevo.domains.crystals.objectives.structures_payload`); a missing
structure (undecodable row) makes the candidate infeasible (SMACT: ``g = 1``; energy: NaN, a failure).

* :func:`smact_strict_constraint`: SMACT charge neutrality + Pauling test with
  ``oxidation_states_set="pymatgen_sp"`` (O only -2; about two thirds of Perov-5 passes; smact's
  defaults pass 99% and constrain nothing). ``g`` is 1 where SMACT rejects (or the structure is
  missing), 0 where it accepts; bound 0. The check is the domain's one cached
  :class:`~flowevo.domains.crystals.validity.CompositionCheck`.
* :func:`energy_ceiling_constraint`: a formation-energy estimate per atom (e.g. CHGNet minus
  fitted element references, :class:`~flowevo.domains.crystals.energy.FormationEnergy`) with the
  ceiling as the bound: ``g = E_form``, satisfied where ``E_form <= ceiling``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flowevo.objectives import Constraint

from .objectives import composition_validity_constraint, formation_energy_objective
from .representation import CrystalRepresentation
from .validity import CompositionCheck

__all__ = ["STRICT_SMACT_SET", "CompositionCheck", "smact_strict_constraint", "energy_ceiling_constraint",
           "CRYSTAL_CONSTRAINTS", "extra_constraints"]

STRICT_SMACT_SET = "pymatgen_sp"
#: the named constraints the CLI offers (``--constraint NAME``).
CRYSTAL_CONSTRAINTS = ("smact_strict",)


def smact_strict_constraint(representation: CrystalRepresentation | None = None,
                            oxidation_states_set: str = STRICT_SMACT_SET) -> Constraint:
    """``smact_strict``: ``g = 1`` where SMACT (``oxidation_states_set``) rejects the composition or the
    structure is missing, else 0; bound 0 (:func:`~.objectives.composition_validity_constraint` under another
    setting and name).

    Example::

        >>> c = smact_strict_constraint()
        >>> c.name, c.bound
        ('smact_strict', 0.0)
    """
    return composition_validity_constraint(oxidation_states_set, representation, name="smact_strict")


def energy_ceiling_constraint(formation: Callable[[Sequence[Any]], np.ndarray], ceiling: float,
                              representation: CrystalRepresentation | None = None,
                              name: str = "formation_energy") -> Constraint:
    """``g = formation(structure)`` (eV/atom), satisfied where ``g <= ceiling``.

    ``formation`` maps a list of Structures to ``(N,)`` energies, e.g. a fitted
    :class:`~flowevo.domains.crystals.energy.FormationEnergy` (CHGNet, batched and cached).
    """
    if not math.isfinite(ceiling):
        raise ValueError(f"energy ceiling must be a finite number of eV/atom, got {ceiling}")
    return Constraint(name, formation_energy_objective(formation, name, representation).fn, bound=float(ceiling))


def extra_constraints(names: Sequence[str] = (), formation: Callable[[Sequence[Any]], np.ndarray] | None = None,
                      energy_ceiling: float | None = None) -> list[Constraint]:
    """The constraints a user adds by name (:data:`CRYSTAL_CONSTRAINTS`; repeats count once) and, with
    ``energy_ceiling``, :func:`energy_ceiling_constraint` of ``formation`` at that ceiling (eV/atom).

    Raises:
        ValueError: an unknown name, or a ceiling without a ``formation`` estimate.
    """
    unknown = [c for c in names if c not in CRYSTAL_CONSTRAINTS]
    if unknown:
        raise ValueError(f"unknown crystal constraint(s) {unknown}; use {list(CRYSTAL_CONSTRAINTS)}")
    out = [smact_strict_constraint() for n in dict.fromkeys(names) if n == "smact_strict"]
    if energy_ceiling is not None:
        if formation is None:
            raise ValueError("an energy ceiling needs a formation-energy estimate (e.g. CrystalModels.formation)")
        out.append(energy_ceiling_constraint(formation, energy_ceiling))
    return out
