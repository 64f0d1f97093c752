"""EvaluationCache / CachedEvaluator: the same candidate is never scored twice."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from flowevo.objectives import CachedEvaluator, Candidates, Constraint, EvaluationCache, LocalEvaluator, candidate_keys


@dataclass
class Counting:
    """Sum of x; counts how many candidates it scored; NaN where x[:, 1] < 0."""

    name: str = "count"
    sense: str = "min"
    scored: list[int] = field(default_factory=list)

    def __call__(self, b: Candidates) -> Tensor:
        self.scored.append(len(b))
        out = b.x.double().sum(dim=1)
        return torch.where(b.x[:, 1] < 0, torch.full_like(out, float("nan")), out)


def _batch(unique: int = 4, repeats: int = 3) -> Candidates:
    x = torch.arange(unique * 2, dtype=torch.float32).reshape(unique, 2).repeat(repeats, 1)
    return Candidates(x=x, source_index=torch.zeros(len(x), dtype=torch.long), sources=torch.zeros_like(x))


def test_each_distinct_candidate_is_scored_once():
    obj = Counting()
    ev = CachedEvaluator(LocalEvaluator([obj], [Constraint("c", lambda b: b.x[:, 0].double(), bound=3.0)]))
    batch = _batch()
    first = ev(batch)
    assert sum(obj.scored) == 4
    assert ev.cache.hits == 8 and ev.cache.misses == 4 and ev.cache.hit_rate == 8 / 12
    second = ev(batch)
    assert sum(obj.scored) == 4 and ev.cache.hits == 20
    ref = LocalEvaluator([Counting()], [Constraint("c", lambda b: b.x[:, 0].double(), bound=3.0)])(batch)
    for got in (first, second):
        torch.testing.assert_close(got.values, ref.values)
        torch.testing.assert_close(got.violation, ref.violation)


def test_failures_are_reported_for_every_copy_and_not_cached():
    obj = Counting()
    ev = CachedEvaluator(LocalEvaluator([obj]))
    batch = _batch(unique=2, repeats=2)
    batch.x[[1, 3], 1] = -1.0  # the second distinct candidate fails (both copies)
    out = ev(batch)
    assert out.failed.tolist() == [False, True, False, True]
    assert sorted(f.index for f in out.failures) == [1, 3]
    ev(batch)
    assert obj.scored == [2, 1]  # the failed one is scored again, the good one is not


def test_persisted_cache_is_reloaded(tmp_path):
    obj = Counting()
    CachedEvaluator(LocalEvaluator([obj]), EvaluationCache(tmp_path))(_batch())
    again = Counting()
    cache = EvaluationCache(tmp_path)
    assert len(cache) == 4
    out = CachedEvaluator(LocalEvaluator([again]), cache)(_batch())
    assert again.scored == [] and cache.hit_rate == 1.0
    torch.testing.assert_close(out.values[:, 0], _batch().x.double().sum(dim=1))


def test_keys_cover_everything_an_objective_sees():
    b = _batch(unique=2, repeats=2)
    keys = candidate_keys(b)
    assert keys[0] == keys[2] and keys[0] != keys[1]
    moved = Candidates(x=b.x, source_index=b.source_index, sources=b.sources + torch.tensor([[0.0, 0.0]] * 3 + [[1.0, 0.0]]))
    assert candidate_keys(moved)[3] != keys[3] and candidate_keys(moved)[:3] == keys[:3]
    other_row = Candidates(x=b.x, source_index=torch.tensor([0, 0, 1, 0]), sources=b.sources)
    assert candidate_keys(other_row)[2] != keys[2]
    tagged = Candidates(x=b.x, source_index=b.source_index, sources=b.sources, extra={"tag": ["a", "a", "b", "a"]})
    k = candidate_keys(tagged)
    assert k[0] != k[2] and k[1] == k[3]
