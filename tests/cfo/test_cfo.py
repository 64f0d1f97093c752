"""Constrained flow optimisation on a small 2-D task: reward and satisfaction rise, checkpoints load and sample."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from flowevo.cfo import CFOConfig, ConstrainedFlowOptimiser, FinetuneConfig, sample_flow, softmax_weights
from flowevo.cli import app
from flowevo.flow import Condition, load_checkpoint
from flowevo.objectives import Constraint, FunctionObjective, LocalEvaluator


@pytest.fixture(scope="module")
def task(toy2):
    """Class 0 of the 2-D toy; reward: closeness to a point beyond a half-plane that cuts class 0 in two."""
    toy, model = toy2
    x, _ = toy.sample(4000, torch.Generator().manual_seed(0), labels=torch.zeros(4000, dtype=torch.long))
    u = toy.centres[0, 0] - toy.centres[0, 1]
    u = u / u.norm()
    proj = x @ u
    bound = float(proj.quantile(0.7))               # 30% of the class violates the constraint
    target = toy.centres[0, 0] + 1.5 * u            # the reward pulls across the boundary
    reward = FunctionObjective("reward", "max", lambda b: -(b.x - target).norm(dim=1))
    cons = Constraint("halfplane", lambda b: b.x @ u, bound=bound)
    return model, LocalEvaluator([reward], [cons])


def config(**kw):
    base = dict(rounds=3, samples=256, lam0=3.0, rho=4.0, finetune=FinetuneConfig(steps=60, batch_size=128, lr=2e-3, anchor=0.1),
                kl_samples=64, seed=1)
    base.update(kw)
    return CFOConfig(**base)


def test_cfo_raises_reward_and_satisfaction(task, tmp_path):
    model, ev = task
    res = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(), out_dir=tmp_path).run()
    first, last = res.records[0], res.final
    assert 0.6 < first.satisfaction < 0.8
    assert last.reward_mean > first.reward_mean + 0.05
    assert last.satisfaction > first.satisfaction + 0.1
    assert res.records[0].multipliers["halfplane"] > 0  # violated at round 0: the multiplier it trained with is > 0
    assert last.kl > 0 and res.records[0].kl == 0
    unconstrained = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(fixed_multiplier=0.0)).run()
    assert unconstrained.final.satisfaction < last.satisfaction - 0.2
    assert unconstrained.final.reward_mean > first.reward_mean
    # model was not modified in place; same seed, same result
    again = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config()).run()
    assert [r.reward_mean for r in again.records] == [r.reward_mean for r in res.records]

    # round checkpoints: round_000 is the pretrained flow, the last one the final model
    names = sorted(p.name for p in tmp_path.glob("round_*.pt"))
    assert names == [f"round_{k:03d}.pt" for k in range(4)]
    m0, _ = load_checkpoint(tmp_path / "round_000.pt")
    m3, meta3 = load_checkpoint(tmp_path / "round_003.pt")
    assert meta3["cfo"]["round"] == 3 and len(meta3["cfo"]["trace"]) == 3
    g = lambda: torch.Generator().manual_seed(5)
    c = Condition.from_labels([0])
    assert torch.allclose(sample_flow(m3, 50, c, g())[1], sample_flow(res.model, 50, c, g())[1], atol=1e-5)
    assert torch.allclose(sample_flow(m0, 50, c, g())[1], sample_flow(model, 50, c, g())[1], atol=1e-5)
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert [r["round"] for r in trace["rounds"]] == [0, 1, 2, 3]

    # flowevo sample reads any round; default condition is the CFO run's
    out = CliRunner().invoke(app, ["sample", "--model", str(tmp_path / "round_003.pt"), "--n", "50", "--seed", "5",
                                   "--out", str(tmp_path / "s.npz"), "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (50, 2) and np.allclose(x, sample_flow(res.model, 50, c, g())[1].numpy(), atol=1e-5)
    bad = CliRunner().invoke(app, ["sample", "--model", str(tmp_path / "round_003.pt"), "--n", "5",
                                   "--out", str(tmp_path / "s.npz"), "--condition", "7"])
    assert bad.exit_code == 2 and "classes 0..2" in bad.output


def test_failures_are_infeasible_not_crashes(task):
    model, ev = task
    good = ev.objectives[0]
    x, _ = sample_flow(model, 2000, Condition.from_labels([0]), torch.Generator().manual_seed(3))
    cut = float(x[:, 1].quantile(0.9))

    def flaky(b):
        if (b.x[:, 1] > cut).any():
            raise RuntimeError("simulated crash")
        return good(b)

    ev2 = LocalEvaluator([FunctionObjective("reward", "max", flaky)], ev.constraints)
    res = ConstrainedFlowOptimiser(model, ev2, Condition.from_labels([0]), config(rounds=1)).run()
    r0 = res.records[0]
    assert 0 < r0.failed < 0.3 * 256
    assert {f.name for f in res.failures} == {"reward"} and all("simulated crash" in f.error for f in res.failures)
    assert r0.satisfaction <= 1 - r0.failed / 256  # a failure counts as a violation
    assert np.isfinite(r0.reward_mean)


def test_softmax_weights_zero_for_failures():
    w = softmax_weights(torch.tensor([0.0, float("nan"), 1.0], dtype=torch.float64), 1.0)
    assert w[1] == 0 and w.sum() == pytest.approx(1.0) and w[2] > w[0]
    with pytest.raises(ValueError, match="every evaluation failed"):
        softmax_weights(torch.tensor([float("nan")]), 1.0)


def test_one_reward_only(task):
    model, ev = task
    two = LocalEvaluator([ev.objectives[0], FunctionObjective("other", "min", lambda b: b.x[:, 0])])
    with pytest.raises(ValueError, match="one reward"):
        ConstrainedFlowOptimiser(model, two, Condition.from_labels([0]))


def test_seeds_are_scored_and_trained_on_but_not_reported(task):
    model, ev = task
    seeds = sample_flow(model, 16, Condition.from_labels([0]), torch.Generator().manual_seed(9))[1]
    cfg = config(rounds=1, samples=64, kl_samples=0)
    res = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg, seeds=seeds).run()
    plain = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg).run()
    assert res.final.evaluations == 2 * (64 + 16) and plain.final.evaluations == 2 * 64
    assert res.records[0].reward_mean == plain.records[0].reward_mean  # figures are the flow's own samples
    assert res.records[1].reward_mean != plain.records[1].reward_mean  # the seeds entered the fine-tuning


def test_trust_region_keeps_a_quarter_of_the_samples_effective():
    from flowevo.cfo import effective_sample_size, trust_region_weights

    pseudo = torch.zeros(100, dtype=torch.float64)
    pseudo[0] = 50.0                                        # one outlier would take all the weight at temperature 1
    assert effective_sample_size(softmax_weights(pseudo, 1.0)) < 1.01
    w, t = trust_region_weights(pseudo, 1.0, 0.25)
    assert effective_sample_size(w) == pytest.approx(25.0, rel=1e-3) and t > 1.0 and w[0] == w.max()
    w2, t2 = trust_region_weights(torch.linspace(0, 1, 100, dtype=torch.float64), 1.0, 0.25)
    assert t2 == 1.0 and torch.allclose(w2, softmax_weights(torch.linspace(0, 1, 100, dtype=torch.float64), 1.0))


def test_monitor_reports_and_never_steers(task):
    model, ev = task
    cfg = config(rounds=1, samples=64, kl_samples=0)
    seen = []

    def monitor(cands, feasible):
        seen.append((len(cands), feasible.dtype))
        return {"x0_mean": float(cands.x[:, 0].mean()), "feasible": float(feasible.double().mean())}

    res = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg, monitor=monitor).run()
    plain = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg).run()
    assert seen == [(64, torch.bool), (64, torch.bool)]
    assert [r.monitored["feasible"] for r in res.records] == pytest.approx([r.satisfaction for r in res.records])
    assert [r.reward_mean for r in res.records] == [r.reward_mean for r in plain.records]
    assert plain.records[0].monitored == {}


def test_diversity_term_spreads_the_weight_over_keys(task):
    """A key that lumps the best half of the samples together: with diversity 1 that half's total weight falls."""
    model, ev = task
    cfg = config(rounds=1, samples=128, kl_samples=0)
    with pytest.raises(ValueError, match="diversity_key"):
        ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(diversity=1.0))
    with pytest.raises(ValueError, match="neighbours"):
        config(neighbours=-1)

    def key(cands):
        r = ev.objectives[0](cands)
        return ["top" if v >= r.median() else f"other{i}" for i, v in enumerate(r.tolist())]

    from flowevo.cfo.finetune import softmax_weights
    r = torch.linspace(0, 1, 10, dtype=torch.float64)
    counts = torch.tensor([5.0] * 5 + [1.0] * 5, dtype=torch.float64)  # the 5 best share one key
    w = softmax_weights(r, 0.1, offset=-torch.log(counts[torch.arange(10).flip(0)]))
    assert w[5:].sum() < softmax_weights(r, 0.1)[5:].sum()
    # end to end: with the diversity term the run differs and still trains
    res = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), replace(cfg, diversity=1.0),
                                   diversity_key=key).run()
    plain = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg).run()
    assert res.records[1].reward_mean != plain.records[1].reward_mean
    assert plain.records[0].ess_keys is None and res.records[0].ess_keys <= res.records[0].ess


def test_local_mean_over_nearest_samples():
    from flowevo.cfo.optimiser import local_mean

    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    v = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    assert local_mean(z, v, 2)[:, 0].tolist() == [0.5, 0.5, 1.0, 1.0]
    assert local_mean(z, v, 1)[:, 0].tolist() == v[:, 0].tolist()


def test_ascent_dual_still_available(task):
    model, ev = task
    res = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(rounds=1, dual="ascent", kl_samples=0)).run()
    assert res.records[0].multipliers["halfplane"] == pytest.approx(3.0 + 4.0 * (1 - res.records[0].satisfaction - 0.02))
    with pytest.raises(ValueError, match="dual"):
        config(dual="newton")


def test_target_feedback_follows_the_measured_rate(task):
    model, ev = task
    cfo = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]),
                                   config(max_violation=0.02, target_feedback=1.0, target_floor=0.1))
    rate = lambda r: torch.tensor([r], dtype=torch.float64)  # noqa: E731
    assert cfo._update_target(rate(0.5)).item() == pytest.approx(0.02)      # first round: max_violation
    assert cfo._update_target(rate(0.04)).item() == pytest.approx(0.01)     # the flow violated twice the bound
    assert cfo._update_target(rate(0.5)).item() == pytest.approx(0.002)     # floor: 0.1 x max_violation
    assert cfo._update_target(rate(0.0)).item() == pytest.approx(0.02)      # no violations: back up, capped
    fixed = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(target_share=0.5))
    assert [fixed._update_target(rate(r)).item() for r in (0.5, 0.04)] == pytest.approx([0.01, 0.01])


def test_annealed_targets_start_loose_and_reach_the_bound(task):
    model, ev = task
    rate = lambda r: torch.tensor([r], dtype=torch.float64)  # noqa: E731
    cfo = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]),
                                   config(rounds=6, max_violation=0.02, target_feedback=1.0, target_floor=0.1,
                                          anneal_from=0.32, anneal_rounds=4))
    # geometric from 0.32 to 0.02 over 4 rounds (x 1/2 per round), then held
    assert [cfo.allowed_violation(k) for k in range(7)] == pytest.approx([0.32, 0.16, 0.08, 0.04, 0.02, 0.02, 0.02])
    assert cfo._update_target(rate(0.5), k=0).item() == pytest.approx(0.32)          # round 0: the loose bound
    # the flow fitted for 0.32 violated 0.32: on target, so round 1 aims at its own bound, 0.16
    assert cfo._update_target(rate(0.32), k=1).item() == pytest.approx(0.16)
    # fitted for 0.16, violated 0.64 (4x): the share drops to a quarter, carried to round 2's bound 0.08
    assert cfo._update_target(rate(0.64), k=2).item() == pytest.approx(0.02)
    assert cfo._update_target(rate(0.08), k=3).item() == pytest.approx(0.01)         # 1x: the share holds
    assert cfo._update_target(rate(0.04), k=4).item() == pytest.approx(0.005)
    assert cfo._update_target(rate(0.0), k=5).item() == pytest.approx(0.02)          # never above the bound
    plain = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(max_violation=0.02))
    assert [plain.allowed_violation(k) for k in (0, 3)] == [0.02, 0.02]
    for bad in (dict(anneal_from=0.01), dict(anneal_from=0.3, anneal_rounds=9), dict(anneal_from=0.3, dual="ascent"),
                dict(anneal_from=0.3, fixed_multiplier=1.0), dict(anneal_from=0.3, max_violation=0.0)):
        with pytest.raises(ValueError, match="anneal_from"):
            config(**{"max_violation": 0.02, **bad})


def test_annealed_run_starts_with_a_smaller_multiplier_and_resumes_identically(task, tmp_path):
    model, ev = task
    plain = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(kl_samples=0)).run()
    cfg = config(kl_samples=0, anneal_from=0.25, anneal_rounds=2)
    full = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg, out_dir=tmp_path / "a").run()
    assert full.records[0].targets["halfplane"] == pytest.approx(0.25)
    assert full.records[0].multipliers["halfplane"] < plain.records[0].multipliers["halfplane"]
    assert full.records[2].targets["halfplane"] <= 0.02 + 1e-12
    other = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), replace(cfg, anneal_rounds=1))
    with pytest.raises(ValueError, match="another config"):
        other.resume(tmp_path / "a" / "round_002.pt")
    resumed = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg, out_dir=tmp_path / "c")
    start = resumed.resume(tmp_path / "a" / "round_002.pt")
    rest = resumed.run(start=start)
    assert [r.reward_mean for r in rest.records] == [r.reward_mean for r in full.records]
    assert [r.targets for r in rest.records] == [r.targets for r in full.records]


def test_half_target_feedback_moves_by_the_square_root(task):
    model, ev = task
    rate = lambda r: torch.tensor([r], dtype=torch.float64)  # noqa: E731
    half = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]),
                                    config(max_violation=0.02, target_feedback=0.5, target_floor=0.1))
    full = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]),
                                    config(max_violation=0.02, target_feedback=1.0, target_floor=0.1))
    for cfo in (half, full):
        cfo._update_target(rate(0.3))
    # the flow violated 4x the bound: kappa = 1 quarters the target, kappa = 0.5 halves it
    assert half._update_target(rate(0.08)).item() == pytest.approx(0.01)
    assert full._update_target(rate(0.08)).item() == pytest.approx(0.005)
    # 25x the bound: down by sqrt(25) = 5 to the floor (0.1 x max_violation), and no lower
    assert half._update_target(rate(0.5)).item() == pytest.approx(0.002)
    assert half._update_target(rate(0.5)).item() == pytest.approx(0.002)
    # no violations: back up by at most sqrt(1 / floor) per round
    assert half._update_target(rate(0.0)).item() == pytest.approx(0.002 * math.sqrt(10))
    # 1.5x the bound lowers it by 1 / sqrt(1.5) only (kappa = 1: by 1 / 1.5)
    half.target = rate(0.01)
    assert half._update_target(rate(0.03)).item() == pytest.approx(0.01 / math.sqrt(1.5))


def test_target_tolerance_ignores_rates_within_sampling_noise(task):
    model, ev = task
    rate = lambda r: torch.tensor([r], dtype=torch.float64)  # noqa: E731
    se = math.sqrt(0.02 * 0.98 / 400)  # 0.007
    cfo = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]),
                                   config(max_violation=0.02, target_feedback=1.0, target_floor=0.1, target_tolerance=1.0))
    assert cfo._update_target(rate(0.5), 400).item() == pytest.approx(0.02)
    # 0.04 measured reads as 0.04 - se: the target falls by 0.02 / (0.04 - se), less than the raw rule's half
    assert cfo._update_target(rate(0.04), 400).item() == pytest.approx(0.02 * 0.02 / (0.04 - se))
    low = cfo.target.item()
    # a rate one standard error above the bound counts as met: the target climbs back by b / (rate - se) = 1 -> same
    assert cfo._update_target(rate(0.02 + se), 400).item() == pytest.approx(low)
    # within the noise below the bound it climbs back toward max_violation (capped there)
    assert cfo._update_target(rate(0.02), 400).item() > low
    assert cfo._update_target(rate(0.0), 400).item() == pytest.approx(0.02)
    with pytest.raises(ValueError, match="number of samples"):
        cfo._update_target(rate(0.04))
    with pytest.raises(ValueError, match="target_tolerance"):
        config(target_tolerance=-1.0)


def test_out_of_reach_feasible_weights_only_satisfying_samples(task):
    """No violation allowed and a wide trust region: the target is out of reach in round 0. With the penalty the
    weights keep some violating samples; with out_of_reach="feasible" only satisfying ones."""
    model, ev = task
    cfg = config(rounds=1, samples=128, kl_samples=0, max_violation=0.0, min_ess=0.9)
    runs = {m: ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), replace(cfg, out_of_reach=m)).run()
            for m in ("penalty", "feasible")}
    pen, feas = runs["penalty"].records[0], runs["feasible"].records[0]
    assert pen.multipliers["halfplane"] == feas.multipliers["halfplane"] == cfg.lam_max
    assert pen.weighted_satisfaction < 0.99 and feas.weighted_satisfaction == pytest.approx(1.0)
    assert feas.temperature < pen.temperature
    with pytest.raises(ValueError, match="out_of_reach"):
        config(out_of_reach="hard")
    with pytest.raises(ValueError, match="out_of_reach"):
        config(out_of_reach="feasible_local")


def test_projection_moves_what_the_flow_is_fine_tuned_on(task):
    """``project`` replaces each sample by the data it stands for before fine-tuning: projecting every sample onto
    one point pulls the fine-tuned flow toward it; a projection of the wrong shape is an error, NaN rows keep theirs."""
    model, ev = task
    cfg = config(rounds=1, samples=128, kl_samples=0, fixed_multiplier=0.0)
    c = Condition.from_labels([0])
    point = torch.tensor([2.0, -2.0])
    plain = ConstrainedFlowOptimiser(model, ev, c, cfg).run()
    pulled = ConstrainedFlowOptimiser(model, ev, c, cfg, project=lambda x: point.expand_as(x).clone()).run()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    d_plain = (sample_flow(plain.model, 200, c, g())[1] - point).norm(dim=1).mean()
    d_pulled = (sample_flow(pulled.model, 200, c, g())[1] - point).norm(dim=1).mean()
    assert d_pulled < 0.8 * d_plain
    # the round's record is measured before fine-tuning: identical at round 0
    assert pulled.records[0].reward_mean == plain.records[0].reward_mean
    same = ConstrainedFlowOptimiser(model, ev, c, cfg, project=lambda x: torch.full_like(x, math.nan)).run()
    assert same.records[1].reward_mean == plain.records[1].reward_mean
    with pytest.raises(ValueError, match="project returned shape"):
        ConstrainedFlowOptimiser(model, ev, c, cfg, project=lambda x: x[:, :1]).run()


def test_resume_needs_the_same_projection(task, tmp_path):
    model, ev = task
    cfg = config(rounds=2, samples=64, kl_samples=0)
    c = Condition.from_labels([0])
    snap = lambda x: torch.round(x * 4) / 4  # noqa: E731
    full = ConstrainedFlowOptimiser(model, ev, c, cfg, out_dir=tmp_path, project=snap).run()
    with pytest.raises(ValueError, match="projection"):
        ConstrainedFlowOptimiser(model, ev, c, cfg).resume(tmp_path / "round_001.pt")
    again = ConstrainedFlowOptimiser(model, ev, c, cfg, project=snap)
    k = again.resume(tmp_path / "round_001.pt")
    assert [r.reward_mean for r in again.run(start=k).records] == [r.reward_mean for r in full.records]


def test_replay_archive_keeps_the_best_feasible_sample_per_key_without_new_evaluations(task, tmp_path):
    model, ev = task
    cfg = config(kl_samples=0, replay=8)
    with pytest.raises(ValueError, match="replay"):
        config(replay=-1)
    with pytest.raises(ValueError, match="feasible_floor"):
        config(feasible_floor=1.0)

    def key(cands):  # coarse cells of the plane: several samples share a key
        return [f"{int(a)}:{int(b)}" for a, b in (cands.x * 2).floor().tolist()]

    opt = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg, diversity_key=key, out_dir=tmp_path / "a")
    res = opt.run()
    plain = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), config(kl_samples=0)).run()
    assert res.final.evaluations == plain.final.evaluations  # replayed rows are never scored again
    assert res.records[1].reward_mean == plain.records[1].reward_mean  # round 0 has no archive yet
    assert res.records[2].reward_mean != plain.records[2].reward_mean  # from round 1 the archive enters the fine-tuning
    a = opt.archive
    assert 0 < len(a["keys"]) <= 8 and len(set(a["keys"])) == len(a["keys"])  # one row per key
    assert not a["violated"].any() and torch.isfinite(a["reward"]).all()
    assert torch.all(a["reward"][:-1] >= a["reward"][1:])  # best first
    # the archive is the best feasible row of each key among everything scored before the last round
    assert a["reward"][0] >= max(r.reward_mean for r in res.records[:-1])
    resumed = ConstrainedFlowOptimiser(model, ev, Condition.from_labels([0]), cfg, diversity_key=key,
                                       out_dir=tmp_path / "b")
    rest = resumed.run(start=resumed.resume(tmp_path / "a" / "round_002.pt"))
    assert [r.reward_mean for r in rest.records] == [r.reward_mean for r in res.records]
