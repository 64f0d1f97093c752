"""Digit counterfactuals: every method on the same models, the same task and the same black box.

:class:`DigitCounterfactuals` holds one counterfactual task (held-out digits, a target class per
digit, the shipped or user models) and runs each method on it, returning an
:class:`~flowevo.evolve.EditResult`:

- :meth:`~DigitCounterfactuals.reo`: REO with two objectives (:func:`shape_distance` to the
  source's VAE reconstruction, min; the black box's target probability, max, or its log-odds with
  ``confidence="log_odds"``) under the confidence constraint: 4 residuals per digit; generation 0
  ranked without a black-box call from a pool of candidates (the swap edit, a ladder toward the
  target anchor, i.e. the source inverted under the *target* class, and lift/land edits at several
  depths): those the flow itself reads as the target first, least-changed first; offspring
  pre-screened by a surrogate (several decoded per one scored); cross-pollination donors from digits
  with the same target.
  The edit kept at confidence tau (:meth:`~DigitCounterfactuals.kept`) is the least-changed one with
  target probability >= tau among those the flow itself reads as the target (or, where none is, the one
  the flow reads best).
- :meth:`~DigitCounterfactuals.search`: CMA-ES or random search on the same evaluator (they rank by
  the first objective, the shape distance, under the same constraint), NSGA-II or Bayesian
  optimisation (both objectives).
- :meth:`~DigitCounterfactuals.leap` (LeapFactual-style lift/land), :meth:`~DigitCounterfactuals.gradient`
  (white-box latent optimisation through the classifier) and :meth:`~DigitCounterfactuals.swap`
  (the source residual decoded under the target once).

:meth:`~DigitCounterfactuals.score` measures kept edits by the LeapFactual protocol: black-box and
independent-classifier accuracy, target probability, relative morphology change against the
reconstruction, diversity of the kept sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from flowevo.baselines import bo_search, cma_search, final_edits, gradient_search, leap, nsga2_search, random_search
from flowevo.domains.digits.metrics import diversity, morph_mean, morph_rel_change, slant_abs_change
from flowevo.domains.digits.models import DigitModels
from flowevo.domains.digits.morphometrics import measure_batch
from flowevo.domains.digits.objectives import (
    ClassifierOracle,
    counterfactual_objectives,
    shape_distance,
    target_confidence_constraint,
)
from flowevo.domains.digits.robustness import ShiftCheck
from flowevo.evolve import (
    LIFT_DEPTHS,
    EditResult,
    EditTask,
    Evolver,
    MaxGenerations,
    Population,
    PreScreen,
    Survival,
    Transfer,
    Variation,
    rank_seeds,
    seed_pool,
    slerp_ladder,
)
from flowevo.flow import Condition, FixedGrid
from flowevo.objectives import Evaluator, LocalEvaluator, LogOdds, target_margin

__all__ = ["CHECKED_MARGIN", "CROSS_RATE", "DigitCounterfactuals", "FLOW_MARGIN", "KEPT_CHECK", "KEPT_MARGIN", "P_TARGET",
           "REO_POPULATION", "REO_PRESCREEN", "SEARCH_METHODS", "STEPS"]

STEPS = 5  # rk4 steps of every method's codec (round-trip relative latent error ~6e-4 on the test digits)
CROSS_RATE = 0.1  # share of children cross-pollinated (issue 15, fifth pass: 0.3 before)
# REO's defaults, chosen on the development split (training digits 1000-1099, targets from seeds 100 and 101;
# docs/benchmarks.md, "Query efficiency"): residuals per digit, children decoded and ranked per child scored,
# the energy margin by which the flow must read a generation-0 seed as its target to rank first, and the one
# by which it must read a kept edit as its target (None: no flow reading). Since REO's result holds every
# digit's front of everything scored (not only its survivors), the kept edit is chosen among more borderline
# candidates: the margin 6 keeps the independent agreement (issue 15, fourth pass).
REO_POPULATION = 4
REO_PRESCREEN = 8
FLOW_MARGIN: float | None = 4.0
KEPT_MARGIN: float | None = 6.0
# The kept edit's shift check and the flow margin it runs with (issue 15, tenth pass: on three development splits x two
# seeds, margin 4 with the check kept edits the independent classifier confirmed as often as margin 6 alone, +0.005,
# with 2.8% less morphology change; `flowevo benchmark digits` and `demo digits` use them).
KEPT_CHECK = ShiftCheck()
CHECKED_MARGIN = 4.0
P_TARGET = "p_target_log_odds"  # REO's second objective with confidence="log_odds"
SEARCH_METHODS = {"cma": cma_search, "random": random_search, "nsga2": nsga2_search, "bo": bo_search}


class DigitCounterfactuals:
    """One digit counterfactual task and every method on it.

    Args:
        models: the digit models (:func:`~flowevo.domains.digits.models.load_digit_models`).
        x: ``(N, 28, 28)`` source digits in [0, 1]; labels: ``(N,)`` their classes; targets: ``(N,)`` target classes.
        seed: the methods' seed.
        population / generations: REO's individuals per digit and generations; the budget per digit of
            every search method is ``population * (generations + 1)``.
        steps: rk4 steps of the shared codec.
        wrap_evaluator: optional ``fn(evaluator) -> evaluator`` applied to every evaluator the methods
            build (e.g. a :class:`~flowevo.objectives.QueryCounter` to count queries).
    """

    def __init__(self, models: DigitModels, x: Tensor, labels: Tensor, targets: Tensor, seed: int = 0,
                 population: int = 24, generations: int = 15, steps: int = STEPS,
                 wrap_evaluator: Callable[[Evaluator], Evaluator] | None = None) -> None:
        if not (len(x) == len(labels) == len(targets)):
            raise ValueError(f"{len(x)} digits, {len(labels)} labels and {len(targets)} targets: give one of each per digit")
        self.models, self.seed = models, seed
        self.device = models.codec().device
        self.x, self.labels, self.targets = x.to(self.device), labels.to(self.device), targets.to(self.device)
        self.population, self.generations = population, generations
        self.wrap_evaluator = wrap_evaluator
        self.codec = models.codec(FixedGrid("rk4", steps))
        self.oracle = ClassifierOracle(models.classifier)
        self.judge = ClassifierOracle(models.independent)
        self.src_c, self.tgt_c = Condition.from_labels(self.labels), Condition.from_labels(self.targets)
        with torch.inference_mode():
            self.recon = models.vae(self.x)
            self.target_seeds = self.codec.invert(self.x, self.tgt_c)[:, None]  # decodes to ~the source under the target
        self.m_ref = measure_batch(self.recon.cpu().numpy())
        self.task = EditTask(self.x, self.src_c, self.tgt_c)
        self.check_queries = 0  # black-box queries spent by kept-edit checks (ShiftCheck) so far

    @property
    def budget(self) -> int:
        """Black-box evaluations per digit of every search method."""
        return self.population * (self.generations + 1)

    def fitted_check(self, check: ShiftCheck = KEPT_CHECK) -> ShiftCheck:
        """``check`` with its budget capped at a quarter of :attr:`budget` (a small task keeps most of its evaluations
        for the search): pass its ``budget`` to :meth:`reo` as ``reserve`` and the check to :meth:`kept`."""
        return replace(check, budget=min(check.budget, self.budget // 4))

    def evaluator(self, tau: float) -> Evaluator:
        """Shape distance to the source reconstruction (min; the first objective, the only one CMA-ES and
        random search rank by) and the black box's target probability (max), under the confidence
        constraint at ``tau`` (through ``wrap_evaluator`` if given)."""
        ev: Evaluator = LocalEvaluator(counterfactual_objectives(self.recon, self.oracle),
                                       [target_confidence_constraint(self.oracle, tau)])
        return ev if self.wrap_evaluator is None else self.wrap_evaluator(ev)

    # -- methods ------------------------------------------------------------------------------------
    def anchor_ladder(self) -> Tensor:
        """``(N, 7, *S)`` generation-0 seeds: slerps from the source's own residual toward the target anchor (the
        source inverted under the *target*: it decodes to ~the source, wrong class), nearest the own residual
        first: a ladder from the swap edit toward the source that crosses the decision boundary near it."""
        with torch.inference_mode():
            return slerp_ladder(self.target_seeds[:, 0], self.codec.invert(self.x, self.src_c)).flip(1)

    def seed_pool(self, rungs: int = 20, depths: tuple[float, ...] = LIFT_DEPTHS) -> Tensor:
        """``(N, 2 + rungs + len(depths), *S)`` candidate generation-0 residuals found without a black-box call
        (:func:`~flowevo.evolve.seed_pool`: the own residual, the target anchor, a ladder of ``rungs`` slerps toward
        the own residual, lift/land edits at ``depths``)."""
        return seed_pool(self.codec, self.task, rungs, depths)

    def ranked_seeds(self, count: int, margin: float | None = FLOW_MARGIN, pool: Tensor | None = None) -> Tensor:
        """``(N, count, *S)`` generation-0 seeds from :meth:`seed_pool` (or ``pool (N, P, *S)``), best first, ranked
        with no black-box call (:func:`~flowevo.evolve.rank_seeds`): those the flow reads as the target by more than
        ``margin``, least-changed first (:func:`shape_distance` to the source's reconstruction), then the rest by
        the flow's margin (``margin`` None: every candidate least-changed first)."""
        pool = self.seed_pool() if pool is None else pool
        return rank_seeds(self.codec, self.task, pool, count, 10, margin=margin,
                          distance=lambda decoded, rows: shape_distance(decoded, self.recon[rows.to(self.device)]))

    def reo(self, tau: float = 0.9, cross_rate: float = CROSS_RATE, seed: int | None = None,
            same_target_donors: bool = True, population: int = REO_POPULATION, generations: int | None = None,
            extra_seeds: Tensor | None = None, prescreen: int = REO_PRESCREEN, pool: bool = False,
            transfer: float = 0.0, survival: Survival | None = None, screen: dict | None = None,
            confidence: Literal["probability", "log_odds"] = "probability", reserve: int = 0,
            show_progress: bool = False) -> EditResult:
        """One REO run: per digit a Pareto set of (shape distance, target probability) among edits the black
        box labels as the target with probability >= ``tau``, with the task's budget per digit
        (:attr:`budget`: ``generations`` defaults to ``(budget - reserve) // population - 1``; ``reserve``: evaluations
        per digit left for a later check of the kept edit, e.g. ``KEPT_CHECK.budget``). Generation 0: by default
        :meth:`ranked_seeds` (``population`` of them, best first; the own residual only if ranked among them);
        given ``extra_seeds (N, P, *S)``, the own residual then those. ``prescreen > 1``: offspring through
        :class:`~flowevo.evolve.PreScreen` (that many children decoded and ranked per child scored; a per-digit
        GP of the black box's columns, the shape distance exact); 1: off. ``pool``: the GP of each target class
        is fitted on the pooled evaluations of every digit with that target (the black box reads the decoded
        candidate alone, and digits with one target share the decoder). ``survival``: the Evolver's (default
        :class:`~flowevo.evolve.HypervolumeContribution`; :class:`~flowevo.evolve.RankAndCrowding` was the
        default before issue 15's fifth pass). ``screen``: further keyword arguments of
        :class:`~flowevo.evolve.PreScreen` (e.g. ``capacity``, the surrogate's window, or ``surrogate``).
        ``confidence="log_odds"``: REO ranks the probability as its log-odds (:class:`~flowevo.objectives.LogOdds`;
        p saturates near 1, where the kept edits lie) and the result's second objective is ``p_target_log_odds``
        (:data:`P_TARGET`; the evaluator, and a ``wrap_evaluator`` counter, still record the probability). On the
        development splits its kept edits were confirmed more often by the independent classifier at the same
        morphology, but its front covers less hypervolume in (shape distance, p) from 128 evaluations on
        (docs/benchmarks.md, issue 15's eighth pass), so the default is ``"probability"``."""
        if confidence not in ("probability", "log_odds"):
            raise ValueError(f"confidence must be 'probability' or 'log_odds', got {confidence!r}")
        variation = Variation(cross_rate=cross_rate, donor_groups=self.targets if same_target_donors else None)
        if transfer > 0:
            variation = Transfer(variation, rate=transfer)
        if prescreen > 1:
            variation = PreScreen(variation, factor=prescreen, pool=pool, seed=self.seed if seed is None else seed,
                                  **(screen or {}))
        if not 0 <= reserve < self.budget:
            raise ValueError(f"reserve must be in [0, {self.budget}) evaluations per digit, got {reserve}")
        generations = (self.budget - reserve) // population - 1 if generations is None else generations
        ranked = extra_seeds is None
        evaluator = self.evaluator(tau)
        if confidence == "log_odds":
            evaluator = LogOdds(evaluator, "p_target")  # the wrapped evaluator still records p_target
        evolver = Evolver(self.codec, self.task, evaluator, population_size=population, variation=variation,
                          survival=survival, termination=[MaxGenerations(generations)],
                          seed=self.seed if seed is None else seed,
                          extra_seeds=self.ranked_seeds(population) if ranked else extra_seeds, include_source=not ranked)
        return evolver.run(show_progress=show_progress)

    def search(self, method: str, tau: float = 0.9, sigma0: float = 0.3, **settings) -> EditResult:
        """A per-digit baseline with the REO budget per digit on the same evaluator: ``"cma"`` (CMA-ES, step
        ``sigma0``, population ``population``), ``"random"`` (batches of ``population``), ``"nsga2"``
        (pymoo's NSGA-II on both objectives, population ``population``, initial spread ``sigma0``) or ``"bo"``
        (TuRBO-style Bayesian optimisation, botorch; ParEGO-style Thompson sampling on both objectives).
        ``settings``: further keyword arguments of that method's function in :mod:`flowevo.baselines`
        (e.g. ``popsize`` or, for ``"bo"``, ``batch`` and ``length_init``)."""
        if method not in SEARCH_METHODS:
            raise ValueError(f"unknown search method {method!r}; use one of {sorted(SEARCH_METHODS)}")
        ev = self.evaluator(tau)
        if method == "random":
            return random_search(self.codec, self.task, ev, self.budget, **{"batch": self.population, "seed": self.seed,
                                                                           **settings})
        if method == "bo":
            return bo_search(self.codec, self.task, ev, self.budget, **{"seed": self.seed, **settings})
        return SEARCH_METHODS[method](self.codec, self.task, ev, self.budget,
                                      **{"popsize": self.population, "sigma0": sigma0, "seed": self.seed, **settings})

    def leap(self, gamma: float = 0.5, rounds: int = 15) -> EditResult:
        """LeapFactual-style lift/land rounds under the black box's hard labels."""
        return leap(self.codec, self.x, self.labels, self.targets, self.oracle.labels, gamma=gamma, rounds=rounds)

    def gradient(self, tau: float = 0.9, steps: int = 1000, lr: float = 0.05, weight: float = 0.01) -> EditResult:
        """White box: AdamW on the VAE latent through the classifier's cross-entropy, each digit frozen once
        its target probability reaches ``tau``."""
        vae, clf, tgt = self.models.vae, self.models.classifier, self.targets
        with torch.inference_mode():
            z0 = vae.encode(self.x)
        probs = lambda x: torch.softmax(clf(x), dim=1).gather(1, tgt[:, None]).squeeze(1)
        return gradient_search(z0.clone(), vae.decode, lambda x: F.cross_entropy(clf(x), tgt, reduction="none"),
                               lambda x: probs(x) >= tau, steps=steps, lr=lr, weight=weight)

    def swap(self) -> EditResult:
        """The source residual decoded under the target class, once (no black-box query)."""
        start = time.perf_counter()
        with torch.inference_mode():
            r = self.codec.invert(self.x, self.src_c)
            edits = self.codec.decode(r, self.tgt_c)
        return final_edits("swap", r, edits, torch.zeros(len(self.x)), time.perf_counter() - start)

    def _shift_checked(self, pop: Population, prefer: Tensor, check: ShiftCheck) -> Tensor:
        """``prefer`` narrowed, per digit, to its first edit (least shape distance first) that passes ``check``; a
        digit where none of the checked ones passes keeps its whole ``prefer``. Round j checks the j-th candidate of
        every digit still without a pass, in one black-box call, while the pooled budget lasts."""
        rows, dist = pop.row.cpu(), pop.values[:, 0].cpu()
        queue = []
        for b in range(len(self.x)):
            mine = torch.nonzero(prefer & (rows == b)).flatten()
            queue.append(mine[dist[mine].argsort()][:check.candidates])
        left, chosen = check.budget * len(self.x), {}
        for j in range(check.candidates):
            due = [b for b, q in enumerate(queue) if b not in chosen and j < len(q)][:left // check.cost]
            if not due:
                break
            idx = torch.stack([queue[b][j] for b in due])
            worst = check.worst(self.oracle, pop.decoded[idx].cpu().float(), self.targets.cpu()[rows[idx]])
            left -= len(due) * check.cost
            self.check_queries += len(due) * check.cost
            chosen.update({b: int(i) for b, i, w in zip(due, idx, worst.tolist()) if w >= check.level})
        out = prefer.clone()
        for b, i in chosen.items():
            out[rows == b] = False
            out[i] = True
        return out

    # -- measuring ----------------------------------------------------------------------------------
    def score(self, edits: Tensor, kept: list[Tensor] | None = None) -> dict:
        """LeapFactual metrics of one edit per digit ``(N, 28, 28)``; ``kept`` = every solution kept per digit
        (for diversity)."""
        edits = edits.cpu()
        targets = self.targets.cpu()
        p = self.oracle.probs(edits)
        p_ind = self.judge.probs(edits)
        m = measure_batch(edits.numpy())
        rel = morph_rel_change(m, self.m_ref)
        return {
            "acc": float((p.argmax(1) == targets).double().mean()),
            "acc_independent": float((p_ind.argmax(1) == targets).double().mean()),
            "mean_p_target": float(p.gather(1, targets[:, None]).mean()),
            "morph_rel_change": rel, "morph_mean": morph_mean(rel),
            "slant_abs_change": slant_abs_change(m, self.m_ref),
            "shape_distance": float(shape_distance(edits, self.recon.cpu()).mean()),
            "diversity": diversity(kept) if kept is not None else {"pixel": None, "morpho": None, "sources_with_several": 0},
        }

    def kept(self, result: EditResult, tau: float, flow_margin: float | None = KEPT_MARGIN,
             check: ShiftCheck | None = None) -> tuple[Tensor, list[Tensor]]:
        """A result's edits at confidence ``tau`` (REO's or a baseline's): per digit the least-changed edit with target
        probability >= ``tau`` ``(N, 28, 28)``, and each digit's Pareto set among those, ``(K_b, 28, 28)`` per digit.
        ``flow_margin``: prefer edits the flow also reads as the target by more than that energy margin
        (:func:`~flowevo.objectives.target_margin`; the flow only, no black-box call); a digit with none keeps
        the one the flow reads best (its largest margin: the least ambiguous, not the least changed).
        None: the black box alone decides. ``check``: among the edits past the margin, least-changed first, keep the
        first the black box still reads as the target once shifted (:class:`ShiftCheck`; a digit where none of the
        checked edits passes keeps the least-changed one). The check's black-box queries (at most ``check.budget``
        per digit, pooled) are added to :attr:`check_queries`: run REO with ``reserve=check.budget`` to stay within
        the task's budget (:data:`KEPT_CHECK`, :data:`CHECKED_MARGIN`)."""
        # p_target, or its log-odds (P_TARGET) where REO ran with confidence="log_odds"
        name = P_TARGET if P_TARGET in result.objective_names else "p_target"
        prefer, level = None, LogOdds.threshold(tau) if name == P_TARGET else tau
        if check is not None and flow_margin is None:
            raise ValueError("check needs a flow_margin: it orders the edits past the margin")
        if flow_margin is not None:
            pop = result.population
            ok = pop.feasible.cpu() & (pop.values[:, 1].cpu() >= level)
            prefer = torch.zeros(len(pop), dtype=torch.bool)
            idx = torch.nonzero(ok).flatten()
            if len(idx):
                rows = pop.row.cpu()[idx]
                margin = target_margin(self.codec, pop.decoded[idx].to(self.device), self.targets.cpu()[rows], 10)
                prefer[idx] = margin > flow_margin
                if check is not None:
                    prefer = self._shift_checked(pop, prefer, check)
                for r in set(rows.tolist()) - set(rows[prefer[idx]].tolist()):  # no edit past the margin
                    mine = torch.nonzero(rows == r).flatten()
                    prefer[idx[mine[margin[mine].argmax()]]] = True
        edits = result.kept(level, objective=name, rank_by="shape_distance", prefer=prefer).decoded.cpu()
        sets = [result.pareto_set(b, level, objective=name).decoded.cpu() for b in range(result.rows)]
        return edits, sets
