"""EditResult: best, kept at a threshold and Pareto sets per row, for any method's kept candidates."""

import math

import pytest
import torch

from flowevo.baselines import Archive
from flowevo.evolve import EditResult, Population, Variation, VariationStrategy
from flowevo.flow import Codec, MLPVelocity, ResidualCodec


def _result(values, violation, row, senses=("min", "max")) -> EditResult:
    n = len(row)
    row = torch.tensor(row)
    pop = Population(residuals=torch.arange(n, dtype=torch.float32)[:, None], row=row, origin=torch.zeros_like(row),
                     donor_row=torch.full_like(row, -1), values=torch.tensor(values, dtype=torch.float64),
                     violation=torch.tensor(violation, dtype=torch.float64), decoded=torch.arange(n)[:, None].float(),
                     born=torch.zeros_like(row))
    return EditResult("test", pop, ["distance", "p"], list(senses), int(row.max()) + 1, torch.ones(int(row.max()) + 1))


def test_best_is_feasible_first_then_first_objective():
    # row 0: the lowest distance is infeasible; row 1: nothing feasible, least violation wins
    r = _result([[0.1, 0.9], [0.5, 0.2], [0.3, 0.95], [0.0, 1.0], [0.2, 0.5]], [1.0, 0, 0, 3.0, 2.0], [0, 0, 0, 1, 1])
    assert r.best.decoded.flatten().tolist() == [2.0, 4.0]


def test_kept_at_a_threshold_and_its_fallback():
    r = _result([[0.1, 0.95], [0.5, 0.99], [0.05, 0.6], [0.2, 0.7], [0.3, 0.8], [math.nan, math.nan]],
                [0, 0, 0, 0, 0, math.inf], [0, 0, 0, 1, 1, 1])
    # row 0: least distance with p >= 0.9 is candidate 0; row 1: none reaches 0.9, the nearest (p 0.8) is kept
    assert r.kept(0.9, objective="p", rank_by="distance").decoded.flatten().tolist() == [0.0, 4.0]
    assert r.kept(None, rank_by=0).decoded.flatten().tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="unknown objective"):
        r.kept(0.9, objective="nope")


def test_pareto_set_with_threshold_and_mask():
    r = _result([[0.1, 0.95], [0.5, 0.99], [0.6, 0.9], [0.05, 0.6]], [0, 0, 0, 0], [0, 0, 0, 0])
    assert sorted(r.pareto_set(0).decoded.flatten().tolist()) == [0.0, 1.0, 3.0]  # 2 is dominated by 1
    assert sorted(r.pareto_set(0, 0.9, "p").decoded.flatten().tolist()) == [0.0, 1.0]
    assert r.pareto_mask().tolist() == [True, True, False, True]


def test_archive_keeps_the_best_and_the_feasible_front_per_row():
    archive = Archive(2, torch.tensor([1.0, -1.0], dtype=torch.float64))
    first = _result([[0.3, 0.5], [0.2, 0.9], [0.1, 0.1]], [0, 0, 1.0], [0, 0, 1]).population
    archive.add(first)
    second = _result([[0.4, 0.4], [0.25, 0.95], [0.2, 0.2]], [0, 0, 0], [0, 0, 1]).population
    archive.add(second)
    kept = archive.population
    assert sorted(kept.values[kept.row == 0].tolist()) == [[0.2, 0.9], [0.25, 0.95]]  # (0.3, 0.5), (0.4, 0.4) dominated
    assert kept.values[kept.row == 1].tolist() == [[0.2, 0.2]]  # the feasible one replaces the infeasible best


def test_the_default_variation_and_codec_implement_the_protocols():
    assert isinstance(Variation(), VariationStrategy)
    codec = ResidualCodec(MLPVelocity((3,), num_classes=2, hidden=8, depth=1))
    assert isinstance(codec, Codec) and codec.device == torch.device("cpu")
    assert codec.residual_shape(torch.zeros(5, 3)) == (3,)
    variants = Variation().initial(torch.randn(4, 3), 5, torch.Generator().manual_seed(0))
    assert variants.shape == (4, 5, 3)
