"""Surrogate pre-screening: the surrogate's best children are sent, screening costs no evaluation, same seed
same result, and a checkpointed run resumes exactly."""

import pytest
import torch

from flowevo.evolve import (
    Checkpointer,
    EditTask,
    Evolver,
    MaxGenerations,
    Population,
    PreScreen,
    RowGP,
    Transfer,
    Variation,
    load_run_state,
)
from flowevo.evolve.operators import hypervolume_improvement_2d
from flowevo.evolve.population import SELF
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import Constraint, FunctionObjective, LocalEvaluator


def make(toy16, rows=4):
    toy, model = toy16
    src, lab = toy.sample(rows, torch.Generator().manual_seed(11), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(rows, dtype=torch.long)))
    return toy, ResidualCodec(model, FixedGrid("rk4", 4)), task


class Calls:
    """A black-box objective that counts the candidates it is asked to score."""

    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def __call__(self, batch):
        self.n += len(batch.x)
        return self.fn(batch)


def evaluator(toy, black_box: Calls | None = None, cheap_calls: Calls | None = None):
    """Two objectives: the black box's distance to a class-1 centre (min) and a cheap preservation distance (min),
    under a cheap constraint."""
    centre = toy.centres[1, 0]
    goal = black_box or Calls(lambda b: (b.x - centre).norm(dim=1))
    moved = cheap_calls or Calls(lambda b: (b.x - b.sources).norm(dim=1))
    objectives = [FunctionObjective("to_goal", "min", goal), FunctionObjective("moved", "min", moved, cheap=True)]
    budget = Constraint("budget", lambda b: (b.x - b.sources).norm(dim=1), bound=50.0, cheap=True)
    return LocalEvaluator(objectives, [budget])


class Fixed:
    """An inner strategy whose children are known: row b's child j has residual value ``j`` everywhere
    (so feature 0 ranks them), shuffled by a fixed permutation."""

    def __init__(self):
        self.seen = 0

    def initial(self, residuals, count, generator):
        return residuals[:, None].expand(-1, count, *residuals.shape[1:]).clone()

    def offspring(self, population, rows, per_row, generator, step=None):
        perm = torch.randperm(per_row, generator=torch.Generator().manual_seed(5)).double()
        d = population.residuals.shape[1:]
        res = perm.repeat(rows)[:, None].expand(rows * per_row, *d).to(population.residuals)
        row = torch.arange(rows).repeat_interleave(per_row)
        return Population.new(res, row, torch.full_like(row, SELF), torch.full_like(row, -1),
                              population.values.shape[1], population.generation + 1)

    def observe(self, evaluated):
        self.seen += len(evaluated)

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state.get("seen", 0)


class MeanOfFirstFeature:
    """A stand-in surrogate: predicts every output as the first feature, nearly certain."""

    def fit(self, x, y, valid, lengthscale=None):
        self.t = y.shape[-1]

    def predict(self, xs):
        mean = xs[..., :1].expand(*xs.shape[:2], self.t).double()
        return mean, torch.full_like(mean, 1e-6)


def test_prescreen_sends_the_surrogates_best_children_best_first(toy16):
    toy, codec, task = make(toy16, rows=3)
    centre = toy.centres[1, 0]
    ev = LocalEvaluator([FunctionObjective("to_goal", "min", lambda b: (b.x - centre).norm(dim=1))])
    screen = PreScreen(Fixed(), factor=4, surrogate=MeanOfFirstFeature())
    evo = Evolver(codec, task, ev, population_size=2, variation=screen, termination=[MaxGenerations(1)])
    evo.step()  # generation 0 (unscreened: nothing scored yet)
    evo.ask()
    sent = evo.pending
    # 8 proposals per row valued 0..7 by the surrogate (min): the two lowest, lowest first
    assert sent.residuals[:, 0].tolist() == [0.0, 1.0] * 3
    assert sent.row.tolist() == [0, 0, 1, 1, 2, 2]
    with torch.inference_mode():
        again = codec.decode(sent.residuals, task.target_condition[sent.row])
    assert torch.allclose(sent.decoded, again)  # handed over decoded, under each row's target
    assert screen.stats["screened"] == 3 * 8 and screen.stats["sent"] == 6 and screen.stats["screen_s"] > 0


def test_screening_calls_only_the_cheap_functions_and_costs_no_evaluation(toy16):
    toy, codec, task = make(toy16)
    centre = toy.centres[1, 0]
    black_box, cheap = Calls(lambda b: (b.x - centre).norm(dim=1)), Calls(lambda b: (b.x - b.sources).norm(dim=1))
    screen = PreScreen(Variation(cross_rate=0.3), factor=8)
    res = Evolver(codec, task, evaluator(toy, black_box, cheap), population_size=4, variation=screen,
                  termination=[MaxGenerations(3)]).run()
    assert res.evaluations == 4 * 4 * 4  # rows x population x (generations + 1)
    assert black_box.n == res.evaluations  # the black box saw exactly the evaluated candidates
    assert cheap.n == res.evaluations + 4 * 4 * 8 * 3  # the cheap objective also ranked every screened child
    assert screen.stats["screened"] == 4 * 4 * 8 * 3 and screen.stats["sent"] == 4 * 4 * 3
    assert res.info["variation"]["screened"] == screen.stats["screened"]
    assert 0 < res.info["variation"]["screen_s"] <= res.wall_s


def test_factor_one_is_the_inner_strategy(toy16):
    toy, codec, task = make(toy16)
    run = lambda v: Evolver(codec, task, evaluator(toy), population_size=4, variation=v,
                            termination=[MaxGenerations(3)], seed=3).run()
    a, b = run(Variation()), run(PreScreen(Variation(), factor=1))
    assert torch.equal(a.population.residuals, b.population.residuals)


def test_same_seed_same_result_other_seed_differs(toy16):
    toy, codec, task = make(toy16)
    run = lambda s: Evolver(codec, task, evaluator(toy), population_size=4,
                            variation=PreScreen(Transfer(Variation(), rate=0.3), factor=4),
                            termination=[MaxGenerations(3)], seed=s).run()
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a.population.residuals, b.population.residuals)
    assert torch.equal(a.population.values, b.population.values)
    assert not torch.equal(a.population.residuals, c.population.residuals)


@pytest.mark.parametrize("pool", [False, True])
def test_checkpoint_resume_equals_the_uninterrupted_run(toy16, tmp_path, pool):
    toy, codec, task = make(toy16)
    make_run = lambda gens: Evolver(codec, task, evaluator(toy), population_size=4,
                                    variation=PreScreen(Transfer(Variation(), rate=0.3), factor=4, pool=pool, seed=2),
                                    termination=[MaxGenerations(gens)], seed=7)
    full = make_run(5).run()
    first = make_run(2)
    first.run(callbacks=[Checkpointer(tmp_path / "state.pt")])
    resumed = make_run(5)
    load_run_state(resumed, tmp_path / "state.pt")
    assert resumed.variation.stats["sent"] == first.variation.stats["sent"] > 0
    res = resumed.run()
    for f in ("residuals", "values", "violation", "decoded", "row", "origin", "born"):
        assert torch.equal(getattr(res.population, f), getattr(full.population, f)), f
    assert res.evaluations == full.evaluations
    assert res.info["variation"]["screened"] == full.info["variation"]["screened"]


def test_bad_settings_and_unbound_use_are_clear_errors(toy16):
    with pytest.raises(ValueError, match="factor"):
        PreScreen(factor=0)
    with pytest.raises(ValueError, match="rate"):
        Transfer(rate=1.5)
    toy, codec, task = make(toy16)
    evo = Evolver(codec, task, evaluator(toy), population_size=2, termination=[MaxGenerations(1)])
    evo.step()
    with pytest.raises(RuntimeError, match="not bound"):
        PreScreen(factor=2).offspring(evo.population, 4, 2, torch.Generator())


def test_hypervolume_improvement_2d_matches_hand_computed_areas():
    inf = float("inf")
    front = torch.tensor([[[1.0, 5], [2, 3], [4, 1], [inf, inf]]], dtype=torch.float64)
    ok = torch.tensor([[True, True, True, False]])
    ref = torch.tensor([[5.0, 6]], dtype=torch.float64)
    pts = torch.tensor([[[[0.5, 0.5]], [[2.5, 2.5]], [[6.0, 6.0]], [[2.0, 3.0]]]], dtype=torch.float64)
    hvi = hypervolume_improvement_2d(pts, front, ok, ref)[0, :, 0]
    # the front covers 12; a point adds its box minus the overlap with the front's region
    assert torch.allclose(hvi, torch.tensor([24.75 - 12, 8.75 - 8.0, 0.0, 0.0], dtype=torch.float64))


def test_row_gp_interpolates_each_row_separately():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 20, 2, generator=g, dtype=torch.float64)
    y = torch.stack([x[b, :, :1] * (b + 1) for b in range(3)])
    gp = RowGP(noise=1e-6)
    gp.fit(x, y, torch.ones(3, 20, dtype=torch.bool))
    mean, std = gp.predict(x[:, :5])
    assert torch.allclose(mean, y[:, :5], atol=1e-3)
    assert (std < 1e-2).all()
    _, far = gp.predict(x[:, :1] + 50.0)  # far from the data: the prior's spread
    assert (far[:, 0, 0] > 0.5 * y.std(1)[:, 0]).all()


class Recording:
    """A stand-in surrogate that records what each fit is conditioned on (and predicts nothing useful)."""

    def __init__(self):
        self.fits = []

    def fit(self, x, y, valid, lengthscale=None):
        self.fits.append((x.clone(), valid.clone()))
        self.t = y.shape[-1]

    def predict(self, xs):
        mean = torch.zeros(*xs.shape[:2], self.t, dtype=torch.float64)
        return mean, torch.ones_like(mean)


class Watch:
    """Forwards to an inner strategy and keeps every scored batch, in order."""

    def __init__(self, inner):
        self.inner, self.seen = inner, []

    def initial(self, residuals, count, generator):
        return self.inner.initial(residuals, count, generator)

    def offspring(self, population, rows, per_row, generator, step=None):
        return self.inner.offspring(population, rows, per_row, generator, step)

    def observe(self, evaluated):
        self.seen.append(evaluated)
        self.inner.observe(evaluated)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_the_surrogate_sees_its_recent_window_and_the_front_every_point(toy16):
    toy, codec, task = make(toy16)
    watch, gp = Watch(Variation()), Recording()
    screen = PreScreen(watch, factor=2, surrogate=gp, capacity=8)
    Evolver(codec, task, evaluator(toy), population_size=4, variation=screen, termination=[MaxGenerations(5)],
            seed=0).run()
    x, valid = gp.fits[-1]  # the last screening, before the last generation: 20 points per row scored
    assert valid.sum(1).tolist() == [8] * 4
    before, scored = Population.cat(watch.seen[:-1]), Population.cat(watch.seen)
    for b in range(4):
        mine = before.row == b
        recent = before.residuals[mine].reshape(int(mine.sum()), -1)[-8:].double()
        assert int(mine.sum()) == 20 and torch.equal(x[b][valid[b]], recent)  # the 8 most recent, nothing older
        mine = scored.row == b
        f = scored.values[mine].double()[scored.feasible[mine]]  # both objectives are minimised
        dominated = ((f[None] <= f[:, None]).all(-1) & (f[None] < f[:, None]).any(-1)).any(1)
        front = f[~dominated]
        got = screen.archive.front[b]
        assert len(got) == len(front) and torch.allclose(got.sort(0).values, front.sort(0).values)
    assert PreScreen().capacity == 32  # the default window (issue 15, sixth pass; 256 before)
