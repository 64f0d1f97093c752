"""Validity checks for generated crystals (CDVAE protocol) and ABX3 edit distance.

* :func:`structure_valid`: every periodic interatomic distance (periodic
  images of the same atom included) >= ``min_dist`` and volume >= ``min_volume``.
* :func:`composition_valid`: SMACT charge neutrality + Pauling electronegativity
  test via ``smact.screening.smact_validity`` (smact >= 3).  Metal-only
  compositions count as valid (``include_alloys=True``, as in CDVAE) except under ``"icsd24_common"``.
  ``oxidation_states_set`` picks the oxidation-state table:

  - ``"icsd24_common"`` (what the crystal benchmark and demo use): SMACT's default ICSD 2024 table
    (oxidation states reported by >= 3 sources) further restricted to states that make up
    >= 1% of an element's ICSD 2024 occurrences (``ICSD24FilterConfig(commonality=1)``), and
    all-metal compositions are *not* exempt (``include_alloys=False``). It accepts a strict
    subset of what the defaults accept on the whole 52 x 52 x 7 Perov-5 composition grid
    (87.5% vs 98.7% of it; 87.2% of val.csv) and rejects SrTiO5, SrTiO7, BaTiO4 and alloys;
  - ``"icsd24"``: every oxidation state SMACT lists from ICSD 2024;
  - ``"default"``: smact's own default, the ICSD24 table filtered to states seen
    in at least 3 sources (``ICSD24FilterConfig()``);
  - ``"pymatgen_sp"``, ``"icsd16"``, ``"smact14"``, ``"wiki"``: smact's other tables.

  Acceptance on Perov-5 val.csv (3,787 rows, smact 4.0): 98.97% (default), 87.2% (icsd24_common),
  98.52% (icsd24), 67.28% (pymatgen_sp), 98.73% (smact14), 98.92% (icsd16).
  The ICSD-based tables are permissive: they list O(-1) and Sr(+4), so e.g.
  SrTiO5 ... SrTiO7 pass "icsd24" and "default"; "pymatgen_sp" (O: -2 only)
  rejects them but also a third of Perov-5.  Always report the setting.
* :class:`CompositionCheck`: :func:`composition_valid` under one setting, cached by composition; the one
  composition check behind the composition constraints (:func:`~.objectives.composition_validity_constraint`,
  :func:`~.constraints.smact_strict_constraint`) and :func:`crystal_valid`. A missing structure (a
  candidate whose structure could not be built) is invalid.
* :func:`crystal_valid`: structure valid and composition valid under :data:`SMACT_SET` (the one validity
  setting of the crystal benchmark, demo and output rows).
* :func:`space_group`: international space-group number by spglib.
* :func:`sites_changed`: edit distance between two [A, B, X, X, X] site lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SMACT_SET", "CompositionCheck", "crystal_valid", "structure_valid", "composition_valid", "space_group",
           "sites_changed"]

#: the SMACT setting of crystal validity in the benchmark, the demo and the output rows (see the module doc).
SMACT_SET = "icsd24_common"


def structure_valid(structure: Any, min_dist: float = 0.5, min_volume: float = 0.1) -> bool:
    """True if all periodic distances >= ``min_dist`` (A) and volume >= ``min_volume`` (A^3).

    Distances include every periodic image, so a cell edge shorter than
    ``min_dist`` also fails.  Non-finite lattices or coordinates fail.
    """
    lat = structure.lattice.matrix
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(structure.frac_coords))):
        return False
    volume = float(structure.volume)
    if not np.isfinite(volume) or volume < min_volume:
        return False
    if len(structure) == 0:
        return False
    # pairs (i, j, image) with distance <= min_dist; i == j at zero offset is excluded
    _, _, _, dist = structure.get_neighbor_list(r=float(min_dist), exclude_self=True)
    return not bool(np.any(dist < min_dist))


_SMACT_NAMED = ("icsd24", "pymatgen_sp", "icsd16", "smact14", "wiki")


def composition_valid(structure_or_composition: Any, oxidation_states_set: str = "icsd24") -> bool:
    """SMACT validity (charge neutrality + Pauling test) of a composition.

    Accepts a pymatgen ``Structure``, ``Composition`` or formula string.
    ``oxidation_states_set``: ``"default"`` (smact's filtered ICSD24 default),
    ``"icsd24_common"`` (the default table without oxidation states below 1% of an element's
    occurrences, and no exemption for alloys), ``"icsd24"``, ``"pymatgen_sp"``, ``"icsd16"``, ``"smact14"``, ``"wiki"``
    or a path to a smact oxidation-state file.
    """
    import warnings

    from pymatgen.core import Composition
    from smact.screening import ICSD24FilterConfig, smact_validity

    obj = structure_or_composition
    comp = obj.composition if hasattr(obj, "composition") else Composition(obj)
    comp = Composition({el.symbol: amt for el, amt in comp.element_composition.items()})
    if any(abs(v - round(v)) > 1e-6 for v in comp.values()):
        raise ValueError(f"composition {comp} has non-integer amounts")
    ox = None if oxidation_states_set in ("default", "icsd24_common") else oxidation_states_set
    if ox is not None and ox not in _SMACT_NAMED:
        from pathlib import Path

        if not Path(ox).is_file():
            raise ValueError(f"unknown oxidation_states_set {oxidation_states_set!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # smact warns for the "wiki" set
        if oxidation_states_set == "icsd24_common":
            return bool(smact_validity(comp, use_pauling_test=True, include_alloys=False,
                                       icsd_filter=ICSD24FilterConfig(consensus=3, commonality=1)))
        return bool(smact_validity(comp, use_pauling_test=True, include_alloys=True, oxidation_states_set=ox))


class CompositionCheck:
    """SMACT validity of a structure's composition under one oxidation-state set, cached by composition.

    ``check(structure) -> bool``; ``None`` (a structure that could not be built) is invalid.

    Example::

        >>> from pymatgen.core import Lattice, Structure
        >>> check = CompositionCheck("icsd24_common")
        >>> frac = [[0, 0, 0], [.5, .5, .5], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]]
        >>> s = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"], frac)
        >>> check(s), check(None)
        (True, False)
    """

    def __init__(self, oxidation_states_set: str = SMACT_SET) -> None:
        self.oxidation_states_set = oxidation_states_set
        self.cache: dict[tuple[str, ...], bool] = {}

    def __call__(self, structure: Any) -> bool:
        if structure is None:
            return False
        key = tuple(sorted(sp.symbol for sp in structure.species))
        if key not in self.cache:
            self.cache[key] = composition_valid(structure, self.oxidation_states_set)
        return self.cache[key]


def crystal_valid(structure: Any, composition: CompositionCheck | None = None, min_dist: float = 0.5,
                  min_volume: float = 0.1) -> bool:
    """Valid crystal: built (not ``None``), :func:`structure_valid` and composition valid by ``composition``
    (default: a fresh :class:`CompositionCheck` under :data:`SMACT_SET`; pass one to share its cache)."""
    if structure is None or not structure_valid(structure, min_dist, min_volume):
        return False
    return (composition or CompositionCheck())(structure)


def space_group(structure: Any, symprec: float = 0.1) -> int:
    """International space-group number (1-230) found by spglib at ``symprec`` (A)."""
    import warnings

    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's error-handling notice
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())


def _symbols(sites: Any) -> list[str]:
    if hasattr(sites, "species") and hasattr(sites, "lattice"):  # a Structure
        return [sp.symbol for sp in sites.species]
    return [getattr(s, "symbol", str(s)) for s in sites]


def sites_changed(a_elements: Sequence[Any], b_elements: Sequence[Any]) -> int:
    """Changed sites between two ABX3 site lists [A, B, X1, X2, X3], in 0..5.

    A changed (0/1) + B changed (0/1) + (3 - overlap of the two anion
    multisets), so reordering the anions costs nothing.  Accepts symbols,
    pymatgen elements or canonically ordered Structures.
    """
    a, b = _symbols(a_elements), _symbols(b_elements)
    if len(a) != 5 or len(b) != 5:
        raise ValueError(f"sites_changed needs two 5-site ABX3 lists, got {len(a)} and {len(b)}")
    overlap = sum((Counter(a[2:]) & Counter(b[2:])).values())
    return int(a[0] != b[0]) + int(a[1] != b[1]) + (3 - overlap)
