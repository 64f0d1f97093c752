"""Attribute edits: a Morpho-MNIST measurement moved in one run for every digit, class kept; the banded form."""

import pytest
import torch

from flowevo.domains.digits.attributes import morphometric_edit, morphometric_gap
from flowevo.domains.digits.data import load_source_digits
from flowevo.domains.digits.models import load_digit_models
from flowevo.domains.digits.morphometrics import METRICS, measure_batch
from flowevo.objectives import Candidates


@pytest.mark.parametrize("penalty", [False, True])
def test_thickness_band_is_a_constraint(penalty):
    x, labels = load_source_digits(None, 2)
    res, targets = morphometric_edit(load_digit_models(), x, labels, "thickness", 1.6, band=0.4, penalty=penalty,
                                     population=6, generations=2)
    rec = res.history[-1]
    assert set(rec.satisfaction) == {"thickness_band", "keeps_class"}
    assert set(rec.multipliers) == ({"thickness_band", "keeps_class"} if penalty else set())
    best = res.best
    got = measure_batch(best.decoded.cpu().numpy())[:, METRICS.index("thickness")]
    for b in range(2):
        if best.violation[b] == 0:  # a kept feasible edit is within the band (re-measured) and keeps the class
            assert abs(got[b] - targets[b]) <= 0.4 + 1e-6


def test_gap_is_per_row_and_names_unknown_metrics():
    x, _ = load_source_digits(None, 3)
    m = measure_batch(x.numpy())[:, METRICS.index("area")]
    gap = morphometric_gap("area", torch.as_tensor(m) + torch.tensor([0.0, 1.0, 2.0]))
    out = gap(Candidates(x=x[[2, 0]], source_index=torch.tensor([2, 0])))
    assert out.tolist() == pytest.approx([2.0, 0.0])
    with pytest.raises(ValueError, match="unknown morphometric"):
        morphometric_gap("curvature", torch.zeros(1))
