"""Crystal constraints with a bound: strict SMACT validity and a formation-energy ceiling.

Both read decoded Structures from ``Candidates.extra["structures"]`` (the Evolver's / CFO's
``payload`` hook, :func:`~flowevo.domains.crystals.objectives.structures_payload`); a missing
structure (undecodable row) makes the candidate fail, i.e. infeasible.

* :func:`smact_strict_constraint`: SMACT charge neutrality + Pauling test with
  ``oxidation_states_set="pymatgen_sp"`` (O only -2; about two thirds of Perov-5 passes; smact's
  defaults pass 99% and constrain nothing). ``g`` is 1 where SMACT rejects, 0 where it accepts;
  bound 0. Results are cached by composition.
* :func:`energy_ceiling_constraint`: a formation-energy estimate per atom (e.g. CHGNet minus
  fitted element references, :class:`~flowevo.domains.crystals.energy.FormationEnergy`) with the
  ceiling as the bound: ``g = E_form``, satisfied where ``E_form <= ceiling``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from flowevo.objectives import Candidates, Constraint

from .objectives import _structures, formation_energy_objective
from .representation import CrystalRepresentation
from .validity import composition_valid

__all__ = ["STRICT_SMACT_SET", "CompositionCheck", "smact_strict_constraint", "energy_ceiling_constraint",
           "CRYSTAL_CONSTRAINTS"]

STRICT_SMACT_SET = "pymatgen_sp"
#: the named constraints the CLI offers (``--constraint NAME``).
CRYSTAL_CONSTRAINTS = ("smact_strict",)


class CompositionCheck:
    """SMACT validity of a structure's composition under one oxidation-state set, cached by composition."""

    def __init__(self, oxidation_states_set: str = STRICT_SMACT_SET) -> None:
        self.oxidation_states_set = oxidation_states_set
        self.cache: dict[tuple[str, ...], bool] = {}

    def __call__(self, structure: Any) -> bool:
        key = tuple(sorted(sp.symbol for sp in structure.species))
        if key not in self.cache:
            self.cache[key] = composition_valid(structure, self.oxidation_states_set)
        return self.cache[key]


def smact_strict_constraint(representation: CrystalRepresentation | None = None,
                            oxidation_states_set: str = STRICT_SMACT_SET) -> Constraint:
    """``smact_strict``: ``g = 1`` where SMACT (``oxidation_states_set``) rejects the composition, else 0; bound 0.

    Example::

        >>> c = smact_strict_constraint()
        >>> c.name, c.bound
        ('smact_strict', 0.0)
    """
    check = CompositionCheck(oxidation_states_set)

    def fn(c: Candidates) -> Tensor:
        return torch.tensor([math.nan if s is None else 1.0 - float(check(s)) for s in _structures(c, representation)],
                            dtype=torch.float64)

    return Constraint("smact_strict", fn, bound=0.0)


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
