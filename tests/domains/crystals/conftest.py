"""Shared fixtures for the crystal model/objective tests (Perov-5 val.csv read by path, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

VAL_CSV = Path(__file__).resolve().parents[3] / "../shared/data/perov_5/val.csv"


def make_perovskite(a: str = "Sr", b: str = "Ti", x=("O", "O", "O"), length: float = 3.9):
    """Ideal cubic ABX3 in canonical site order [A, B, X_a, X_b, X_c]."""
    from pymatgen.core import Lattice, Structure

    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    return Structure(Lattice.cubic(length), [a, b, *x], frac)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models run fastest on one thread (two were 10-50x slower on a busy 2-core machine)."""
    from flowevo.domains.crystals._threads import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def perov():
    """Perov-5 val.csv as a CrystalTable (skips when the data is absent)."""
    pytest.importorskip("pymatgen")
    if not VAL_CSV.is_file():
        pytest.skip(f"Perov-5 data not found at {VAL_CSV}")
    from flowevo.domains.crystals.data import load_cdvae_csv

    return load_cdvae_csv(VAL_CSV)


@pytest.fixture(scope="session")
def perov_split(perov):
    """(train, test) tables: a deterministic 80/10/10 split, validation part unused."""
    from flowevo.domains.crystals.data import split_indices

    tr, _, te = split_indices(len(perov), (0.8, 0.1, 0.1), seed=0)
    return perov.subset(tr), perov.subset(te)


@pytest.fixture(scope="session")
def perovskite():
    """The :func:`make_perovskite` factory."""
    return make_perovskite


@pytest.fixture(scope="session")
def spearman():
    """Spearman rank correlation of two 1-D arrays."""
    from scipy.stats import spearmanr

    return lambda a, b: float(spearmanr(a, b)[0])


SITE_A, SITE_B, SITE_X = ["Sr", "Ba", "Ca", "K", "La"], ["Ti", "Zr", "Nb", "Ta"], ["O", "N", "F"]


@pytest.fixture(scope="session")
def site_table():
    """64 synthetic cubic perovskites over small A / B / X vocabularies; heat_ref grows with each site's index."""
    pytest.importorskip("pymatgen")
    import numpy as np

    from flowevo.domains.crystals.data import CrystalTable

    rng = np.random.default_rng(0)
    structures, formulas, heat = [], [], []
    for _ in range(64):
        a, b = str(rng.choice(SITE_A)), str(rng.choice(SITE_B))
        x = tuple(str(e) for e in rng.choice(SITE_X, 3))
        structures.append(make_perovskite(a, b, x, float(rng.uniform(3.7, 4.3))))
        formulas.append(a + b + "".join(x))
        heat.append(0.3 * SITE_A.index(a) + 0.2 * SITE_B.index(b) + 0.1 * sum(SITE_X.index(e) for e in x)
                    + rng.normal(0, 0.05))
    return CrystalTable(structures, [f"m{i}" for i in range(64)], formulas, {"heat_ref": np.array(heat)})


@pytest.fixture(scope="session")
def site_model(site_table):
    """A tiny whitened CFM on :func:`site_table`."""
    from flowevo.domains.crystals.model import train_crystal_flow

    return train_crystal_flow(site_table, steps=300, batch_size=64, hidden=64, depth=2, seed=0)


@pytest.fixture(scope="session")
def site_surrogate(site_table):
    """A tiny MLP surrogate of heat_ref on :func:`site_table`."""
    from flowevo.domains.crystals.predictors import fit_surrogate

    return fit_surrogate(site_table, seed=0, steps=150, hidden=32)
