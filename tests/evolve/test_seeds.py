"""Generation-0 seeds: the slerp ladder, the seed pool and its ranking by the flow's own reading."""

import pytest
import torch

from flowevo.evolve import EditTask, rank_seeds, seed_pool, slerp_ladder
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import target_margin


def make(toy16, rows=6):
    toy, model = toy16
    src, lab = toy.sample(rows, torch.Generator().manual_seed(5), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.full((rows,), 2, dtype=torch.long)))
    return ResidualCodec(model, FixedGrid("rk4", 4)), task


def test_slerp_ladder_starts_at_start_and_interpolates_norms():
    a, b = torch.randn(3, 5), 2 * torch.randn(3, 5)
    ladder = slerp_ladder(a, b, [0.5, 1.0])
    assert ladder.shape == (3, 3, 5)
    assert torch.allclose(ladder[:, 0], a) and torch.allclose(ladder[:, 2], b, atol=1e-5)
    assert torch.allclose(ladder[:, 1].norm(dim=1), 0.5 * (a.norm(dim=1) + b.norm(dim=1)), atol=1e-5)


def test_seed_pool_holds_the_own_residual_the_anchor_the_ladder_and_the_lifts(toy16):
    codec, task = make(toy16)
    pool = seed_pool(codec, task, rungs=3, depths=(0.5, 0.9))
    assert pool.shape == (6, 1 + 1 + 3 + 2, 16)
    assert torch.allclose(pool[:, 0], codec.invert(task.sources, task.source_condition))
    assert torch.allclose(pool[:, 1], codec.invert(task.sources, task.target_condition))
    lift = codec.with_strength(0.5)
    landed = lift.decode(lift.invert(task.sources, task.source_condition), task.target_condition)
    assert torch.allclose(codec.decode(pool[:, 5], task.target_condition), landed, atol=0.05)  # decodes to the edit (round trip)
    with pytest.raises(ValueError, match="depths"):
        seed_pool(codec, task, depths=(0.0,))


def test_rank_seeds_puts_what_the_flow_reads_as_the_target_first_nearest_first(toy16):
    codec, task = make(toy16)
    pool = seed_pool(codec, task, rungs=6, depths=(0.4, 0.7))
    seeds = rank_seeds(codec, task, pool, 5, classes=3, margin=0.0)
    assert seeds.shape == (6, 5, 16)
    rows = torch.arange(6).repeat_interleave(5)
    targets = task.target_condition.labels[rows]
    decoded = codec.decode(seeds.flatten(0, 1), Condition.from_labels(targets))
    read = (target_margin(codec, decoded, targets, 3) > 0).reshape(6, 5)
    dist = (decoded - task.sources[rows]).norm(dim=1).reshape(6, 5)
    assert read.any()  # the toy flow reads some pool members as the target
    for b in range(6):
        k = int(read[b].sum())
        assert read[b, :k].all() and not read[b, k:].any()
        assert (dist[b, :k].diff() >= -1e-5).all()
    by_distance = rank_seeds(codec, task, pool, 5, classes=3, margin=None,
                             distance=lambda x, r: -(x - task.sources[r]).norm(dim=1))  # farthest first
    d = (codec.decode(by_distance.flatten(0, 1), Condition.from_labels(targets)) - task.sources[rows]).norm(dim=1)
    assert (d.reshape(6, 5).diff(dim=1) <= 1e-5).all()
    assert torch.equal(rank_seeds(codec, task, pool, 5, classes=3, margin=0.0), seeds)  # no randomness


def test_rank_seeds_refuses_bad_requests(toy16):
    codec, task = make(toy16)
    pool = seed_pool(codec, task, rungs=1, depths=(0.5,))
    with pytest.raises(ValueError, match="pool of 4"):
        rank_seeds(codec, task, pool, 5, classes=3)
    with pytest.raises(ValueError, match="rows"):
        rank_seeds(codec, task, pool[:3], 2, classes=3)
    values = EditTask(task.sources, task.source_condition, Condition(values=torch.zeros(6, 1)))
    with pytest.raises(ValueError, match="class labels"):
        rank_seeds(codec, values, pool, 2, classes=3)
