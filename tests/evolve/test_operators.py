"""Operator properties: shapes, norms, repair band, determinism under a seed, lineage."""

import pytest
import torch
from scipy.stats import chi

from flowevo.evolve import (
    CROSS,
    SELF,
    BlockMask,
    CrossPollination,
    Population,
    SelfPollination,
    ShellRepair,
    Slerp,
    UniformMask,
    Variation,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_self_pollination_keeps_shape_and_norm_and_moves_locally():
    r = torch.randn(64, 4, 4, generator=gen(1))
    out = SelfPollination(angle=0.1)(r, gen())
    assert out.shape == r.shape
    assert torch.allclose(out.flatten(1).norm(dim=1), r.flatten(1).norm(dim=1), rtol=1e-5)
    cos = torch.nn.functional.cosine_similarity(out.flatten(1), r.flatten(1))
    assert (cos > 0.5).all() and (cos < 1).all()
    big = SelfPollination(angle=1.0)(r, gen())
    assert torch.nn.functional.cosine_similarity(big.flatten(1), r.flatten(1)).mean() < cos.mean()


def test_self_pollination_scale_and_determinism():
    r = torch.randn(16, 8, generator=gen(2))
    op = SelfPollination(0.3)
    assert torch.equal(op(r, gen(5)), op(r, gen(5)))
    assert not torch.equal(op(r, gen(5)), op(r, gen(6)))
    tiny = op(r, gen(5), scale=torch.full((16,), 1e-3))
    assert (tiny - r).norm() < 1e-2 * r.norm()


@pytest.mark.parametrize("mix", [Slerp(0.5), UniformMask(0.3), BlockMask(0.25)], ids=str)
def test_cross_pollination_mixes_with_donor(mix):
    r, d = torch.randn(32, 16, generator=gen(3)), torch.randn(32, 16, generator=gen(4))
    out = CrossPollination(mix)(r, d, gen())
    assert out.shape == r.shape
    # each child lies between its parent and its donor: closer to the parent than the donor is
    assert ((out - r).norm(dim=1) <= (d - r).norm(dim=1) + 1e-5).all()
    assert torch.equal(out, CrossPollination(mix)(r, d, gen()))


def test_masks_take_coordinates_from_donor_only():
    r, d = torch.zeros(8, 20), torch.ones(8, 20)
    out = CrossPollination(BlockMask(0.25))(r, d, gen())
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert (out.sum(dim=1) == 5).all()  # one block of 25% of 20 coordinates
    frac = CrossPollination(UniformMask(0.3))(torch.zeros(200, 50), torch.ones(200, 50), gen()).mean()
    assert abs(frac - 0.3) < 0.02


def test_slerp_of_shell_points_stays_on_shell():
    r, d = torch.randn(100, 64, generator=gen(5)), torch.randn(100, 64, generator=gen(6))
    r, d = r / r.norm(dim=1, keepdim=True) * 8, d / d.norm(dim=1, keepdim=True) * 8
    out = CrossPollination(Slerp(1.0))(r, d, gen())
    assert torch.allclose(out.norm(dim=1), torch.full((100,), 8.0), rtol=1e-4)


def test_repair_clamps_norms_into_the_chi_band():
    d = 32
    lo, hi = ShellRepair(0.01).band(d)
    assert lo == pytest.approx(chi.ppf(0.01, d)) and hi == pytest.approx(chi.ppf(0.99, d))
    r = torch.randn(50, d, generator=gen(7)) * torch.linspace(0.01, 5, 50)[:, None]
    out = ShellRepair(0.01)(r)
    n = out.norm(dim=1)
    assert (n >= lo - 1e-4).all() and (n <= hi + 1e-4).all()
    inside = (r.norm(dim=1) >= lo) & (r.norm(dim=1) <= hi)
    assert torch.allclose(out[inside], r[inside])
    assert torch.allclose(torch.nn.functional.cosine_similarity(out, r), torch.ones(50), atol=1e-5)


def _pop(rows=3, k=4, d=8):
    res = torch.randn(rows * k, d, generator=gen(8))
    row = torch.arange(rows).repeat_interleave(k)
    return Population.new(res, row, torch.zeros_like(row), torch.full_like(row, -1), 1, 0)


def test_variation_lineage_and_rates():
    pop = _pop()
    off = Variation(cross_rate=0.0).offspring(pop, 3, 5, gen())
    assert len(off) == 15 and off.row.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert (off.origin == SELF).all() and (off.donor_row == -1).all() and off.generation == 1
    off = Variation(cross_rate=1.0).offspring(pop, 3, 50, gen())
    assert (off.origin == CROSS).all()
    assert (off.donor_row != off.row).all() and (off.donor_row >= 0).all()
    assert torch.equal(Variation().offspring(pop, 3, 5, gen(1)).residuals, Variation().offspring(pop, 3, 5, gen(1)).residuals)


def test_variation_with_one_row_falls_back_to_self():
    off = Variation(cross_rate=1.0).offspring(_pop(rows=1), 1, 6, gen())
    assert (off.origin == SELF).all()


def test_donors_come_from_rows_of_the_same_group():
    pop = _pop(rows=6, k=4, d=8)
    groups = torch.tensor([0, 1, 0, 1, 2, 0])
    off = Variation(cross_rate=1.0, donor_groups=groups).offspring(pop, 6, 50, gen())
    assert (off.origin == CROSS).all()
    assert torch.equal(groups[off.donor_row], groups[off.row])  # same group
    lonely = off.row == 4
    assert (off.donor_row[lonely] == 4).all()  # alone in its group: its own row
    others = ~lonely
    assert (off.donor_row[others] != off.row[others]).all()
    assert set(off.donor_row[off.row == 0].tolist()) == {2, 5}  # every other member is drawn
    with pytest.raises(ValueError, match="one group id per row"):
        Variation(donor_groups=torch.zeros(5, dtype=torch.long)).offspring(pop, 6, 2, gen())
