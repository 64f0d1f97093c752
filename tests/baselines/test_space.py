"""SearchSpace: which genome coordinates a per-source baseline varies; the others stay the row's own."""

import math

import pytest
import torch

from flowevo.baselines import SearchSpace, cma_search, nsga2_search
from flowevo.baselines.per_source import start_genomes


def test_vectors_and_genomes_round_trip_with_start_overrides():
    space = SearchSpace(index=[3, 0], start=[math.nan, -1.0], scale=[1.0, 2.0])
    g = torch.arange(10.0).reshape(2, 5)
    y = space.vectors(g)
    assert y.tolist() == [[3.0, -1.0], [8.0, -1.0]] and y.dtype == torch.float64
    out = space.genomes(torch.tensor([[7.0, 9.0], [6.0, 4.0]]), g)
    assert out.tolist() == [[9.0, 1.0, 2.0, 7.0, 4.0], [4.0, 6.0, 7.0, 6.0, 9.0]]
    assert space.scales(5).tolist() == [1.0, 2.0] and space.dim(5) == 2
    assert SearchSpace().vectors(g).tolist() == g.double().tolist()


@pytest.mark.parametrize("kwargs", [dict(index=[0, 0]), dict(index=[]), dict(index=[-1]),
                                    dict(index=[0, 1], start=[0.0]), dict(scale=[0.0, 1.0], index=[0, 1])])
def test_bad_spaces_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match="SearchSpace"):
        SearchSpace(**kwargs)


def test_a_coordinate_out_of_the_genome_is_a_clear_error():
    with pytest.raises(ValueError, match="reaches coordinate 7"):
        SearchSpace(index=[7]).vectors(torch.zeros(1, 5))


@pytest.mark.parametrize("search", [cma_search, nsga2_search])
def test_unsearched_coordinates_keep_the_rows_own_genome(toy_task, search):
    codec, task, one, _, _ = toy_task
    space = SearchSpace(index=list(range(8)))
    res = search(codec, task, one, budget_per_row=16, popsize=8, seed=0, space=space)
    r0 = start_genomes(codec, task)
    pop = res.population
    assert torch.equal(pop.residuals[:, 8:].cpu(), r0[pop.row.cpu(), 8:])
    assert not torch.equal(pop.residuals[:, :8].cpu(), r0[pop.row.cpu(), :8])
