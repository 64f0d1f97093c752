"""DigitCounterfactuals: every method returns an EditResult; the kept edit at tau is the least-changed one."""

import pytest
import torch

from flowevo.domains.digits.counterfactuals import P_TARGET, REO_POPULATION, DigitCounterfactuals
from flowevo.domains.digits.data import load_source_digits
from flowevo.domains.digits.models import load_digit_models
from flowevo.objectives import LogOdds, QueryCounter, log_odds


@pytest.fixture(scope="module")
def task():
    x, labels = load_source_digits(None, 4)
    return DigitCounterfactuals(load_digit_models(), x, labels, (labels + 1) % 10, seed=0, population=6, generations=2)


def test_kept_is_the_least_changed_edit_above_each_tau(task):
    res = task.reo(0.5, population=6)
    pop = res.population
    assert res.method == "reo" and res.evaluations_per_row.tolist() == [18] * 4
    default = task.reo(0.5, prescreen=1)  # REO's own population (REO_POPULATION) within the task's budget
    assert default.evaluations_per_row.tolist() == [16] * 4
    assert len(default.population) >= REO_POPULATION * 4  # survivors, then the archive's other members
    for tau in (0.5, 0.9):
        edits, kept = task.kept(res, tau, flow_margin=None)
        for b in range(4):
            ok = (pop.row == b) & pop.feasible & (pop.values[:, 1] >= tau)
            assert 1 <= len(kept[b]) <= int(ok.sum()) or not ok.any()
            if ok.any():
                i = torch.nonzero(ok).flatten()[torch.argmin(pop.values[ok, 0])]
                assert torch.equal(edits[b], pop.decoded[i])
                assert any(torch.equal(edits[b], k) for k in kept[b])  # the least-changed is on the front


def test_every_method_returns_one_edit_per_digit_and_counts_its_queries(task):
    counters = []
    counted = DigitCounterfactuals(task.models, task.x, task.labels, task.targets, population=4, generations=1,
                                   wrap_evaluator=lambda ev: counters.append(QueryCounter(ev, 4, {})) or counters[-1])
    for res in (counted.search("cma"), counted.search("random"), task.leap(0.5, rounds=2), task.gradient(steps=3),
                task.swap()):
        assert res.best.decoded.shape == (4, 28, 28)
    assert [c.spent.tolist() for c in counters] == [[8] * 4, [8] * 4]  # both searches: the REO budget, 4 x 2
    metrics = task.score(task.swap().best.decoded)
    assert 0 <= metrics["acc"] <= 1 and set(metrics["morph_rel_change"]) >= {"area", "thickness"}
    with pytest.raises(ValueError, match="unknown search method"):
        task.search("tabu")


def test_nsga2_searches_both_objectives_with_the_same_budget(task):
    counters = []
    counted = DigitCounterfactuals(task.models, task.x, task.labels, task.targets, population=4, generations=1,
                                   wrap_evaluator=lambda ev: counters.append(QueryCounter(ev, 4, {})) or counters[-1])
    res = counted.search("nsga2", sigma0=0.3)
    assert res.method == "nsga2" and counters[-1].spent.tolist() == [8] * 4
    assert res.objective_names == ["shape_distance", "p_target"] and res.best.decoded.shape == (4, 28, 28)


def test_prescreened_reo_spends_the_same_evaluations_and_screens_with_the_exact_shape_distance(task):
    counters = []
    counted = DigitCounterfactuals(task.models, task.x, task.labels, task.targets, population=4, generations=2,
                                   wrap_evaluator=lambda ev: counters.append(QueryCounter(ev, 4, {})) or counters[-1])
    assert counted.evaluator(0.9).objectives[0].cheap  # the shape distance needs no black-box call
    res = counted.reo(0.9, population=4, prescreen=4)
    assert counters[-1].spent.tolist() == [12] * 4 and res.evaluations_per_row.tolist() == [12] * 4
    assert res.info["variation"]["screened"] == 4 * res.info["variation"]["sent"] == 4 * 4 * 4 * 2
    plain = counted.reo(0.9, population=4, prescreen=1)
    assert "variation" not in plain.info and not torch.equal(plain.population.residuals, res.population.residuals)
    windowed = counted.reo(0.9, population=4, prescreen=4, screen={"capacity": 4})  # the surrogate's window
    assert not torch.equal(windowed.population.residuals, res.population.residuals)
    with pytest.raises(TypeError):
        counted.reo(0.9, population=4, prescreen=4, screen={"not_an_option": 1})


def test_kept_prefers_edits_the_flow_reads_as_the_target_and_else_the_one_it_reads_best(task):
    from flowevo.objectives import target_margin

    res = task.reo(0.5, population=6)
    pop = res.population
    ok = pop.feasible & (pop.values[:, 1] >= 0.5)
    margin = target_margin(task.codec, pop.decoded, task.targets[pop.row], 10)
    fell = 0
    for m in (-1e9, 0.0, 2.0, 1e9):
        edits, _ = task.kept(res, 0.5, flow_margin=m)
        for b in range(4):
            mine = ok & (pop.row == b)
            read = mine & (margin > m)
            if read.any():  # the least-changed among those the flow reads as the target
                i = torch.nonzero(read).flatten()[torch.argmin(pop.values[read, 0])]
            elif mine.any():  # none: the one the flow reads best, not the least-changed
                i = torch.nonzero(mine).flatten()[torch.argmax(margin[mine])]
                fell += 1
            else:
                continue
            assert torch.equal(edits[b], pop.decoded[i])
    assert fell >= 4  # at margin 1e9 every digit with a qualifying edit fell back
    assert torch.equal(task.kept(res, 0.5, flow_margin=-1e9)[0], task.kept(res, 0.5, flow_margin=None)[0])


def test_ranked_seeds_put_edits_the_flow_reads_as_the_target_first_least_changed_first(task):
    from flowevo.domains.digits.objectives import shape_distance
    from flowevo.flow import Condition
    from flowevo.objectives import target_margin

    pool = task.seed_pool(rungs=4, depths=(0.5, 0.8))
    assert pool.shape[:2] == (4, 1 + 1 + 4 + 2)  # own, anchor, 4 rungs, 2 lifts
    seeds = task.ranked_seeds(5, margin=2.0, pool=pool)
    assert seeds.shape == (4, 5, *pool.shape[2:])
    rows = torch.arange(4).repeat_interleave(5)
    decoded = task.codec.decode(seeds.flatten(0, 1), Condition.from_labels(task.targets[rows]))
    dist = shape_distance(decoded, task.recon[rows]).reshape(4, 5)
    read = (target_margin(task.codec, decoded, task.targets[rows], 10) > 2.0).reshape(4, 5)
    for b in range(4):
        k = int(read[b].sum())
        assert read[b, :k].all() and not read[b, k:].any()  # read ones lead
        assert (dist[b, :k].diff() >= -1e-5).all()  # least-changed first among them
    assert torch.equal(task.ranked_seeds(5, margin=2.0, pool=pool), seeds)  # no randomness
    with pytest.raises(ValueError, match="pool of 8"):
        task.ranked_seeds(9, pool=pool)
    res = task.reo(0.9, population=4)  # the default generation 0: ranked seeds, no own residual forced first
    assert res.evaluations_per_row.tolist() == [16] * 4  # 4 x (18 // 4), within the budget of 18


def test_transfer_moves_children_by_other_digits_successful_moves(task):
    from flowevo.evolve.population import CROSS

    same = DigitCounterfactuals(task.models, task.x, task.labels, torch.full((4,), 3), seed=0, population=4,
                                generations=3)  # one target: every digit may borrow another's move
    plain = same.reo(0.5, population=4, prescreen=1, cross_rate=0.0)  # self-pollination only
    moved = same.reo(0.5, population=4, prescreen=1, cross_rate=0.0, transfer=1.0)
    assert moved.evaluations_per_row.tolist() == plain.evaluations_per_row.tolist() == [16] * 4
    assert not (plain.population.origin == CROSS).any() and (moved.population.origin == CROSS).any()  # transfers


def test_reo_can_rank_the_target_probability_as_log_odds_and_the_counter_still_records_p(task):
    counters = []
    counted = DigitCounterfactuals(task.models, task.x, task.labels, task.targets, population=4, generations=2,
                                   wrap_evaluator=lambda ev: counters.append(QueryCounter(ev, 4, {})) or counters[-1])
    res = counted.reo(0.5, population=4, confidence="log_odds")
    assert res.objective_names == ["shape_distance", P_TARGET] and counters[-1].spent.tolist() == [12] * 4
    recorded = counters[-1].scored().values
    assert ((recorded[:, 1] >= 0) & (recorded[:, 1] <= 1)).all()
    seen = log_odds(recorded[:, 1])  # every member of REO's population is a scored candidate, seen as log-odds
    assert ((res.population.values[:, 1].double()[:, None] - seen[None]).abs().min(1).values < 1e-6).all()
    pop = res.population
    edits, _ = counted.kept(res, 0.9, flow_margin=None)  # the kept rule reads the log-odds scale
    for b in range(4):
        ok = (pop.row == b) & pop.feasible & (pop.values[:, 1] >= LogOdds.threshold(0.9))
        if ok.any():
            i = torch.nonzero(ok).flatten()[torch.argmin(pop.values[ok, 0])]
            assert torch.equal(edits[b], pop.decoded[i])
    assert counted.reo(0.5, population=4).objective_names == ["shape_distance", "p_target"]  # the default
    with pytest.raises(ValueError, match="confidence must be"):
        counted.reo(0.5, confidence="logit")


def test_the_shift_check_keeps_the_first_edit_past_the_margin_that_survives_shifts_within_its_budget(task):
    from flowevo.domains.digits.robustness import ShiftCheck
    from flowevo.objectives import target_margin

    res = task.reo(0.5, population=6)
    pop = res.population
    ok = pop.feasible & (pop.values[:, 1] >= 0.5)
    margin = target_margin(task.codec, pop.decoded, task.targets[pop.row], 10)
    check = ShiftCheck(level=0.95, candidates=3, budget=8)
    worst = check.worst(task.oracle, pop.decoded, task.targets[pop.row])
    spent = task.check_queries
    edits, _ = task.kept(res, 0.5, flow_margin=0.0, check=check)
    spent = task.check_queries - spent
    assert 0 < spent <= check.budget * 4 and spent % check.cost == 0  # pooled budget: 8 per digit
    plain, _ = task.kept(res, 0.5, flow_margin=0.0)
    moved = 0
    for b in range(4):
        past = torch.nonzero(ok & (pop.row == b) & (margin > 0)).flatten()
        if not len(past):
            continue
        order = past[pop.values[past, 0].argsort()]
        i = next(int(j) for j in order if torch.equal(pop.decoded[j], edits[b]))
        rank = int((order == i).nonzero())
        assert rank < check.candidates
        if rank > 0:  # an edit further down was kept only because every closer one failed the check
            moved += 1
            assert (worst[order[:rank]] < check.level).all() and worst[i] >= check.level
        elif worst[i] < check.level:  # the first failed too: nothing checked passed, the least-changed stays
            assert torch.equal(edits[b], plain[b])
    assert moved >= 1  # at level 0.95 the check moves at least one digit's kept edit (seed 0)
    assert task.kept(res, 0.5, flow_margin=0.0, check=ShiftCheck(level=0.0))[0].equal(plain)  # all pass: no change
    with pytest.raises(ValueError, match="flow_margin"):
        task.kept(res, 0.5, flow_margin=None, check=check)


def test_reo_leaves_the_reserved_evaluations_out_of_its_search(task):
    full = task.reo(0.5, population=6)
    reserved = task.reo(0.5, population=6, reserve=6)
    assert full.evaluations_per_row.max() == task.budget
    assert reserved.evaluations_per_row.max() == task.budget - 6
    with pytest.raises(ValueError, match="reserve"):
        task.reo(0.5, population=6, reserve=task.budget)


def test_the_fitted_check_keeps_most_of_a_small_budget_for_the_search(task):
    from flowevo.domains.digits.counterfactuals import KEPT_CHECK

    assert task.budget == 18 and task.fitted_check().budget == 4 and task.fitted_check().offsets == KEPT_CHECK.offsets
