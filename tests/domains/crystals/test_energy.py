"""CHGNet energies, caching, and fitted elemental reference energies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.energy import CHGNetEnergy, FormationEnergy, ReferenceEnergies, element_fractions, structure_key  # noqa: E402


def test_structure_key_and_fractions(perovskite):
    a, b = perovskite("Sr", "Ti"), perovskite("Sr", "Ti")
    assert structure_key(a) == structure_key(b)
    assert structure_key(a) != structure_key(perovskite("Sr", "Ti", length=3.95))
    assert structure_key(a) != structure_key(perovskite("Ba", "Ti"))
    x, other = element_fractions([perovskite("Sr", "Ti", ("O", "O", "N"))], ["O", "Sr"])
    assert np.allclose(x, [[0.4, 0.2]]) and np.allclose(other, [0.4])


def test_reference_fit_recovers_known_references(tmp_path, perovskite):
    rng = np.random.default_rng(0)
    a_els, b_els, x_els = ["Sr", "Ba", "Ca"], ["Ti", "Zr", "Hf"], ["O", "N", "F"]
    mu = {e: float(v) for e, v in zip(a_els + b_els + x_els, rng.normal(-5, 2, 9))}
    structures = [
        perovskite(rng.choice(a_els), rng.choice(b_els), tuple(rng.choice(x_els, 3))) for _ in range(80)
    ]
    heat = rng.normal(size=80)
    x, _ = element_fractions(structures, list(mu))
    energies = heat + x @ np.array(list(mu.values()))
    refs = ReferenceEnergies.fit(structures, energies, heat, alpha=1e-9)
    assert np.allclose(refs.formation(structures, energies), heat, atol=1e-4)
    clone = ReferenceEnergies.load(refs.save(tmp_path / "refs.json"))
    assert np.allclose(clone.reference(structures), refs.reference(structures))
    unseen = perovskite("K", "Nb", ("O", "O", "O"))  # K, Nb unseen: they get the common offset
    assert np.isfinite(refs.reference([unseen])).all()


@pytest.fixture(scope="module")
def chgnet():
    pytest.importorskip("chgnet")
    return CHGNetEnergy(batch_size=64)


def test_chgnet_batched_cached_and_quiet(chgnet, capsys, perovskite):
    s = [perovskite("Sr", "Ti"), perovskite("Ba", "Zr", length=4.2), perovskite("Sr", "Ti")]
    e = chgnet(s)
    assert e.shape == (3,) and np.isfinite(e).all() and e[0] == e[2]
    assert chgnet.computed == 2  # the duplicate was cached within the batch
    assert np.array_equal(chgnet(s[:1]), e[:1]) and chgnet.computed == 2
    assert -12 < e[0] < -4  # SrTiO3: about -8 eV/atom
    assert capsys.readouterr().out == ""


def test_fitted_references_track_heat_ref_on_held_out(perov_split, chgnet, spearman):
    train, test = perov_split
    tr = list(range(300))
    te = list(range(100))
    model = FormationEnergy.fit([train.structures[i] for i in tr], train.properties["heat_ref"][tr], energy=chgnet)
    pred = model([test.structures[i] for i in te])
    rho = spearman(pred, test.properties["heat_ref"][te])
    assert rho > 0.8, rho
