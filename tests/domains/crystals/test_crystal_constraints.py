"""Crystal constraints with a bound: strict SMACT validity and a formation-energy ceiling."""

import math

import numpy as np
import pytest
import torch

from flowevo.domains.crystals.constraints import energy_ceiling_constraint, smact_strict_constraint
from flowevo.objectives import Candidates, LocalEvaluator


def _batch(structures):
    n = len(structures)
    return Candidates(x=torch.zeros(n, 3), source_index=torch.arange(n), extra={"structures": structures})


def test_strict_smact_rejects_what_icsd24_accepts(perovskite):
    structs = [perovskite("Sr", "Ti", ("O", "O", "O")), perovskite("Sr", "Ti", ("O", "O", "N")),
               perovskite("Cd", "Cu", ("N", "N", "N")), None]
    c = smact_strict_constraint()
    g = c(_batch(structs))
    assert g.tolist() == [0.0, 1.0, 1.0, 1.0]  # a structure that could not be built is infeasible
    assert c.bound == 0.0 and c.violation(g).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_extra_constraints_by_name(perovskite):
    from flowevo.domains.crystals.constraints import extra_constraints

    assert [c.name for c in extra_constraints(("smact_strict", "smact_strict"))] == ["smact_strict"]
    cons = extra_constraints(("smact_strict",), lambda s: np.zeros(len(s)), energy_ceiling=0.5)
    assert [(c.name, c.bound) for c in cons] == [("smact_strict", 0.0), ("formation_energy", 0.5)]
    with pytest.raises(ValueError, match="bogus"):
        extra_constraints(("bogus",))
    with pytest.raises(ValueError, match="formation"):
        extra_constraints((), None, energy_ceiling=1.0)


def test_energy_ceiling_is_a_bound_and_missing_structures_fail(perovskite):
    calls = []

    def formation(structures):
        calls.append(len(structures))
        return np.array([0.5 if s.species[0].symbol == "Sr" else 1.5 for s in structures])

    c = energy_ceiling_constraint(formation, ceiling=1.0)
    structs = [perovskite("Sr", "Ti"), perovskite("Ba", "Ti"), None]
    g = c(_batch(structs))
    assert g[:2].tolist() == [0.5, 1.5] and math.isnan(g[2]) and calls == [2]
    from flowevo.objectives import FunctionObjective

    ev = LocalEvaluator([FunctionObjective("zero", "max", lambda b: torch.zeros(len(b)))], [c, smact_strict_constraint()])
    out = ev(_batch(structs))
    assert out.violation[0] == 0 and out.violation[1] == 0.5 and math.isinf(out.violation[2])


def test_crystals_demo_with_extra_constraints(tmp_path, perov):
    from pymatgen.core import Structure
    from typer.testing import CliRunner

    from flowevo.cli import app
    from flowevo.demos.crystals import run_crystals_demo
    from flowevo.domains.crystals.validity import composition_valid

    m = run_crystals_demo(tmp_path, perov.path, n=3, population=4, generations=2, cfm_steps=150, surrogate_steps=200,
                          gbr_estimators=30, chgnet_rows=40, max_rows=500, constraints=("smact_strict",),
                          energy_ceiling=1.0)
    assert m["extra_constraints"] == {"smact_strict": 0.0, "formation_energy": 1.0}
    kept = [e for e in m["edits"] if e["edit_cif"]]
    for e in kept:  # every kept edit met the extra constraints
        assert composition_valid(Structure.from_file(str(tmp_path / e["edit_cif"])), "pymatgen_sp")
        assert e["chgnet_formation_after"] <= 1.0 + 1e-6
    out = CliRunner().invoke(app, ["demo", "crystals", "--data", perov.path, "--run-dir", str(tmp_path / "x"),
                                   "--constraint", "bogus", "--quiet"])
    assert out.exit_code == 2 and "bogus" in out.output
