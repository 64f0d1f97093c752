"""Shared fixtures: small trained toy flows (session-scoped, trained once)."""

from __future__ import annotations

import os

# One thread per process (and per CLI subprocess, which inherits the variable): the tests use small tensors, where
# a second OpenMP thread only adds synchronisation, and it spins against the other test worker (pytest -n 2) or any
# other load on the machine (measured: a 4 s test took 29 s with two threads under a load of 2).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from flowevo.domains.toy import ToyMixture, train_toy_flow  # noqa: E402
from flowevo.flow import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEROV_VAL = ROOT.parent / "shared" / "data" / "perov_5" / "val.csv"


@pytest.fixture(scope="session")
def toy16():
    """A 16-D, 3-class toy mixture and a flow trained on it (800 steps)."""
    toy = ToyMixture(dim=16, num_classes=3, modes=2, seed=0)
    return toy, train_toy_flow(toy, config=TrainConfig(steps=800, seed=0))


@pytest.fixture(scope="session")
def toy2():
    """A 2-D, 3-class toy mixture and a flow trained on it (800 steps)."""
    toy = ToyMixture(dim=2, num_classes=3, modes=2, seed=0)
    return toy, train_toy_flow(toy, config=TrainConfig(steps=800, seed=0))


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if item.get_closest_marker("gpu") is not None:  # the marker, not a keyword (a folder named gpu)
                item.add_marker(skip)
