"""Constrained flow optimisation (CFO): fine-tune a flow so its samples maximise a black-box reward
subject to black-box constraints, by rounds of ordinary fine-tuning whose weights meet the constraints.

Problem (the CFO formulation; method and measurements in docs/benchmarks.md): maximise ``E_p[r(x)]`` while staying close to
the pretrained flow, subject to ``E_p[g_j(x)] <= b_j`` for every constraint ``j``. Here ``g_j`` is
the **violation indicator** of the evaluator's per-sample black-box constraint
(``1`` where ``g(x) > bound`` or the evaluation failed) and ``b_j = max_violation``, so the
constraint reads "at most ``max_violation`` of the samples violate it"; the user sets bounds and a
tolerance, never a weight.

Round ``k`` (``k = 0 .. rounds``):

1. sample ``samples`` points from the current flow (one batched decode), plus optional seeds
   (e.g. evolution elites), and score reward and constraints with the Evaluator (failures are
   infeasible, never crashes); measure each constraint's violation rate on the flow's own samples;
2. weights ``softmax((r / s_r - sum_j lambda_j pen_j) / T)`` (``s_r``: the reward's std under the
   pretrained flow; ``pen_j``: the smoothed violation indicator, with ``neighbours`` averaged over
   each sample's nearest samples in flow space; ``T`` raised where needed so the weights keep an
   effective sample size of at least ``min_ess`` of the samples: a per-round trust region; optionally
   spread over a ``diversity_key``, :mod:`flowevo.cfo.diversity`). The multipliers: ``dual="exact"``
   (default) solves, each round, for the smallest ``lambda`` whose weights bring each constraint's
   (neighbour-averaged) violation down to a target (:func:`~flowevo.cfo.dual.constrained_weights`),
   the target starting at ``target_share * b_j`` and multiplied by ``(b_j / rate_j) ** target_feedback``
   after each round, so where the fitted flow violated more than its weights did the next weights aim
   lower (with ``anneal_from``, ``b_j`` itself starts at that loose rate and tightens geometrically to
   ``max_violation`` by round ``anneal_rounds``: continuation, the first rounds follow the reward);
   ``dual="ascent"``: the dual step ``lambda_j <- max(0, lambda_j + rho_j * (rate_j - b_j))``
   (:class:`~flowevo.evolve.constraints.Multipliers`); ``fixed_multiplier``: a constant (baselines);
3. fine-tune by reward-weighted flow matching on those weights, with a velocity regression toward
   the pretrained model (:mod:`flowevo.cfo.finetune`);
4. save the new model (``round_<k+1>.pt``, :func:`~flowevo.flow.save_checkpoint` format) and the
   trace (``trace.json``).

The last round only samples and scores. Each round's record holds the reward mean, satisfaction
(overall and per constraint), multipliers, targets, the weights' effective sample size, reward and
satisfaction, ``KL(p_k || p_pretrained)`` estimated by Monte Carlo with exact flow log-densities
(:mod:`flowevo.cfo.density`) and whatever the optional ``monitor`` reports (e.g. independent judges).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flowevo.cfo.density import kl_divergence
from flowevo.cfo.diversity import GroupCap, diversity_offset, feasible_floor, key_groups
from flowevo.cfo.dual import constrained_weights
from flowevo.cfo.finetune import (
    FinetuneConfig,
    effective_group_count,
    effective_sample_size,
    finetune_round,
    trust_region_weights,
)
from flowevo.cfo.sampling import batch_condition, condition_to_dict, finite_mean, null_condition, residual_shape, sample_flow
from flowevo.evolve.constraints import Multipliers, finite_std
from flowevo.flow import Condition, Encoder, FixedGrid, save_checkpoint
from flowevo.objectives import Candidates, Evaluator, Failure
from flowevo.progress import progress_bar


@dataclass(frozen=True)
class CFOConfig:
    """Settings of a constrained flow optimisation.

    Args:
        rounds: fine-tuning rounds (``rounds + 1`` sample-and-score rounds).
        samples: flow samples scored per round.
        temperature: softmax temperature on the pseudo-reward (reward in units of its pretrained std).
        min_ess: the weights' effective sample size is kept at or above this share of the samples by
            raising the temperature where needed (heavy-tailed rewards otherwise put all weight on a few).
        max_violation: allowed violation rate per constraint (the bound ``b`` of ``E[g] <= b``).
        lam0: initial multiplier.
        rho: initial dual step / penalty parameter.
        rho_growth: ``rho`` grows by this factor while a violation does not shrink.
        rho_max: cap on ``rho``.
        fixed_multiplier: a constant multiplier instead of the adaptive one (``0``: unconstrained
            fine-tuning; baselines); None = adaptive (CFO).
        finetune: per-round fine-tuning settings.
        discretisation: the solver grid used to sample.
        kl_samples: samples for the KL estimate per round (0: skip).
        kl_grid: solver grid of the KL estimate.
        softness: the penalty uses the smoothed violation indicator ``sigmoid((g - bound) / s)`` with
            ``s = softness * std(g)`` of the pretrained samples (a margin from the boundary); 0: the hard indicator.
        dual: how the adaptive multipliers are set each round: ``"exact"`` (default) solves for the smallest
            multipliers whose weights meet each constraint's target on the round's samples
            (:func:`~flowevo.cfo.dual.constrained_weights`; scale-free); ``"ascent"``: the dual step
            ``lambda += rho (rate - max_violation)`` on the flow's measured rate.
        target_share: the exact dual's first target is ``target_share * max_violation`` (reweighted violation rate).
        trust_region: the exact dual's trust region, ``"total"`` or ``"reward"`` (see
            :func:`~flowevo.cfo.dual.constrained_weights`).
        target_feedback: ``kappa``: after each round the target is multiplied by ``(max_violation / rate) ** kappa``
            (``rate``: the flow's measured violation rate), within ``[target_floor, 1] * max_violation``; 0: fixed.
        target_floor: the lowest target, as a share of ``max_violation``.
        target_tolerance: ``z``: the feedback reads the measured rate as ``max(0, rate - z * se)``,
            ``se = sqrt(b (1 - b) / n)`` the binomial standard error of a rate ``b = max_violation`` over the round's
            ``n`` own samples: a rate within ``z`` standard errors of the bound does not lower the target, and the
            target climbs back toward ``max_violation`` while the flow stays within that noise; 0: the raw rate.
        lam_max: cap on the exact dual's multipliers.
        out_of_reach: what the exact dual does in a round where some constraint's target is out of reach within the
            trust region even at ``lam_max``: ``"penalty"`` (default: the multiplier ``lam_max``, i.e. all the trust
            region's budget goes to the constraint and the reward stops counting that round) or ``"feasible"``:
            weights ``softmax(r / T)`` over the samples that violate no constraint only, ``T`` set by the trust region
            over those samples (feasibility first, then the reward; :func:`~flowevo.cfo.dual.constrained_weights`).
        diversity: ``gamma``: each sample's weight is divided by ``count^gamma``, ``count`` = how many of the round's
            samples share its ``diversity_key`` (1: a key's total weight no longer grows with its share of the
            samples, so the fine-tuning cannot pile onto a few keys); 0: off (then no key is needed).
        max_key_share: no ``diversity_key`` may carry more than this share of a round's weights
            (:class:`~flowevo.cfo.diversity.GroupCap`); 1: off.
        feasible_floor: a share of each round's weights spread evenly over the feasible ``diversity_key`` values the
            round's batch holds (each sample its own key without one), then over their feasible samples
            (:func:`~flowevo.cfo.diversity.feasible_floor`): the fine-tuning keeps mass on every feasible key instead of
            piling onto the best few; 0: off.
        neighbours: ``k > 1``: the penalty and the violation the exact dual constrains are each sample's mean over
            its ``k`` nearest samples in flow space (the fitted flow spreads mass around its training samples, so a
            sample among violators predicts violations); 0 or 1: per sample.
        anneal_from: continuation (exact dual only): the allowed violation rate per constraint at round 0, tightened
            geometrically to ``max_violation`` at round ``anneal_rounds`` and held there; the exact dual's targets are
            shares of each round's allowed rate. The first rounds then move toward reward where a loose penalty
            allows it instead of toward feasibility wherever it is cheapest. None: ``max_violation`` from round 0.
        anneal_rounds: the round from which the allowed rate is ``max_violation`` (``1 <= anneal_rounds <= rounds``).
        replay: ``M > 0``: an archive of the best feasible samples scored so far (highest reward, one per
            ``diversity_key`` where one is given), at most ``M``, joins every later round's weighted batch (scored
            once, never again: no extra evaluations), so a flow that drifted from good feasible regions it once
            sampled is pulled back toward them; 0: off.
        seed: seeds sampling, fine-tuning and the KL estimate (same seed, same result).
    """

    rounds: int = 8
    samples: int = 512
    temperature: float = 1.0
    min_ess: float = 0.25
    max_violation: float = 0.02
    lam0: float = 0.0
    rho: float = 1.0
    rho_growth: float = 2.0
    rho_max: float = 100.0
    fixed_multiplier: float | None = None
    finetune: FinetuneConfig = FinetuneConfig()
    discretisation: FixedGrid = FixedGrid("rk4", 10)
    kl_samples: int = 256
    kl_grid: FixedGrid = FixedGrid("rk4", 10)
    softness: float = 0.1
    dual: str = "exact"
    target_share: float = 1.0
    lam_max: float = 1e3
    out_of_reach: str = "penalty"
    trust_region: str = "total"
    target_feedback: float = 0.0
    target_floor: float = 0.1
    target_tolerance: float = 0.0
    diversity: float = 0.0
    max_key_share: float = 1.0
    feasible_floor: float = 0.0
    neighbours: int = 0
    anneal_from: float | None = None
    anneal_rounds: int = 4
    replay: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.samples < 2:
            raise ValueError(f"need rounds >= 0 and samples >= 2, got {self.rounds}, {self.samples}")
        if not 0 <= self.max_violation < 1:
            raise ValueError(f"max_violation must be in [0, 1), got {self.max_violation}")
        if self.temperature <= 0 or self.rho <= 0 or self.lam0 < 0 or self.softness < 0:
            raise ValueError("temperature and rho must be positive, lam0 and softness >= 0")
        if self.fixed_multiplier is not None and self.fixed_multiplier < 0:
            raise ValueError(f"fixed_multiplier must be >= 0, got {self.fixed_multiplier}")
        if self.kl_samples == 1 or self.kl_samples < 0:
            raise ValueError(f"kl_samples must be 0 or >= 2, got {self.kl_samples}")
        if self.trust_region not in ("total", "reward"):
            raise ValueError(f"trust_region must be 'total' or 'reward', got {self.trust_region!r}")
        if self.out_of_reach not in ("penalty", "feasible"):
            raise ValueError(f"out_of_reach must be 'penalty' or 'feasible', got {self.out_of_reach!r}")
        if self.dual not in ("exact", "ascent"):
            raise ValueError(f"dual must be 'exact' or 'ascent', got {self.dual!r}")
        if not 0 < self.target_floor <= 1 or self.target_feedback < 0 or self.target_tolerance < 0:
            raise ValueError("need 0 < target_floor <= 1, target_feedback >= 0 and target_tolerance >= 0")
        if not 0 < self.max_key_share <= 1:
            raise ValueError(f"max_key_share must be in (0, 1], got {self.max_key_share}")
        if self.anneal_from is not None:
            if self.dual != "exact" or self.fixed_multiplier is not None:
                raise ValueError("anneal_from needs the adaptive exact dual (dual='exact', no fixed_multiplier)")
            if not 0 < self.max_violation < self.anneal_from < 1 or not 1 <= self.anneal_rounds <= max(self.rounds, 1):
                raise ValueError(f"need 0 < max_violation < anneal_from < 1 and 1 <= anneal_rounds <= rounds, got "
                                 f"anneal_from={self.anneal_from}, anneal_rounds={self.anneal_rounds}")
        if not 0 <= self.target_share <= 1 or self.lam_max <= 0 or self.diversity < 0 or self.neighbours < 0:
            raise ValueError("need 0 <= target_share <= 1, lam_max > 0, diversity >= 0 and neighbours >= 0")
        if self.replay < 0:
            raise ValueError(f"replay must be >= 0, got {self.replay}")
        if not 0 <= self.feasible_floor < 1:
            raise ValueError(f"feasible_floor must be in [0, 1), got {self.feasible_floor}")


@dataclass(frozen=True)
class RoundRecord:
    """What round ``round`` measured on its flow's own samples (seeds excluded).

    Attributes:
        reward_mean / reward_std: the objective in its own units, over samples that did not fail.
        satisfaction: share of samples that satisfy every constraint (a failure counts as a violation).
        constraint_satisfaction: the same per constraint.
        failed: samples whose evaluation failed.
        multipliers / rho: per constraint, after this round's dual step (what the fine-tuning used);
            for the last round, the values it would use next.
        kl / kl_stderr: ``KL(p_round || p_pretrained)`` in nats (Monte Carlo, exact log-densities), 0 at round 0.
        ess: effective sample size of the fine-tuning weights (None on the last round).
        ess_keys: the weights' effective number of distinct ``diversity_key`` values (None without a key or on the
            last round).
        temperature: the softmax temperature used (>= the configured one; None on the last round).
        train_loss: mean loss of the last 50 fine-tuning steps (None on the last round).
        evaluations: black-box evaluations so far; wall_s: seconds since the start.
        checkpoint: the model saved after this round's fine-tuning (None without ``out_dir`` or on the last round).
        weighted_reward / weighted_satisfaction: the reward mean and satisfaction of the round's samples under the
            fine-tuning weights (what the round aimed at; the next round's figures show what the fitted flow did).
        targets: the exact dual's reweighted violation target per constraint this round (empty otherwise).
        monitored: what the optimiser's ``monitor`` reported on this round's own samples (never used in fine-tuning).
    """

    round: int
    reward_mean: float
    reward_std: float
    satisfaction: float
    constraint_satisfaction: dict[str, float]
    failed: int
    multipliers: dict[str, float]
    rho: dict[str, float]
    kl: float
    kl_stderr: float
    ess: float | None
    temperature: float | None
    train_loss: float | None
    evaluations: int
    wall_s: float
    checkpoint: str | None = None
    monitored: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    weighted_reward: float | None = None
    weighted_satisfaction: float | None = None
    ess_keys: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (what history.json / trace.json hold)."""
        return asdict(self)


@dataclass
class CFOResult:
    """The fine-tuned model, the pretrained one, one :class:`RoundRecord` per round, failures and checkpoints."""

    model: nn.Module
    pretrained: nn.Module
    records: list[RoundRecord]
    failures: list[Failure] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)

    @property
    def final(self) -> RoundRecord:
        """The last round's record (the fine-tuned flow's own samples)."""
        return self.records[-1]


class ConstrainedFlowOptimiser:
    """Augmented-Lagrangian fine-tuning of a flow against a black-box reward and constraints.

    Args:
        model: the pretrained velocity model ``model(z, t, c)`` (copied; never modified).
        evaluator: scores :class:`~flowevo.objectives.Candidates` (``x`` = data-space samples): exactly
            one objective (the reward, in its sense) and the constraints.
        condition: the condition to sample under (batch 1); default: the null condition.
        config: :class:`CFOConfig`.
        encoder: optional encoder between data and flow space (e.g. a whitening).
        payload: optional ``fn(x (N, *D)) -> {name: list}`` for ``Candidates.extra`` (e.g. crystal structures).
        seeds: optional data-space points ``(P, *D)`` (e.g. evolution elites) scored and weighted with
            every round's samples; they enter the fine-tuning, not the reported figures.
        out_dir: where to write ``round_<k>.pt`` and ``trace.json`` (nothing is written without it).
        meta: plain data stored in every round checkpoint (e.g. a domain model's meta, so loaders work).
        monitor: optional ``fn(candidates, feasible (N,) bool) -> {name: float}`` called on every round's own
            samples (e.g. an independent judge, a diversity count); its figures go to ``RoundRecord.monitored``
            and never into the fine-tuning.
        diversity_key: ``fn(candidates) -> one hashable per sample`` (what counts as the same sample, e.g. a
            crystal's composition); needed by ``config.diversity`` and ``config.max_key_share``.
        project: optional ``fn(x (N, *D)) -> (N, *D)``: each sample replaced by the data it stands for before the
            fine-tuning fits it and the penalty's neighbours are found (e.g.
            :func:`flowevo.domains.crystals.structure_projection`: the decoded structure re-encoded, so the flow
            learns the decoder's discrete choices, not the boundaries between them); rows it leaves non-finite keep
            their sample. Scoring and the reported figures always use the samples themselves.

    Example::

        cfo = ConstrainedFlowOptimiser(model, LocalEvaluator([reward], [Constraint("g", g, bound=1.0)]),
                                       condition=Condition.from_labels([0]), config=CFOConfig(rounds=6))
        result = cfo.run()
        result.final.satisfaction, result.final.reward_mean
    """

    def __init__(self, model: nn.Module, evaluator: Evaluator, condition: Condition | None = None,
                 config: CFOConfig = CFOConfig(), encoder: Encoder | None = None,
                 payload: Callable[[Tensor], dict] | None = None, seeds: Tensor | None = None,
                 out_dir: str | Path | None = None, meta: dict[str, Any] | None = None,
                 monitor: Callable[[Candidates, Tensor], dict[str, float]] | None = None,
                 diversity_key: Callable[[Candidates], Sequence[Hashable]] | None = None,
                 project: Callable[[Tensor], Tensor] | None = None) -> None:
        objectives = list(evaluator.objectives)
        if len(objectives) != 1:
            raise ValueError(f"CFO optimises one reward; the evaluator has {len(objectives)} objectives "
                             f"({[o.name for o in objectives]}): combine them into one")
        self.evaluator, self.config, self.encoder, self.payload = evaluator, config, encoder, payload
        self.sign = 1.0 if objectives[0].sense == "max" else -1.0
        self.reward_name = objectives[0].name
        constraints = list(getattr(evaluator, "constraints", []))
        self.names = [c.name for c in constraints]
        self.bounds = torch.tensor([float(c.bound) for c in constraints], dtype=torch.float64)
        self.pretrained = copy.deepcopy(model).eval().requires_grad_(False)
        self.model = copy.deepcopy(model).eval()
        self.device = next(self.model.parameters()).device
        self.shape = residual_shape(model)
        self.condition = null_condition(model) if condition is None else condition
        if len(self.condition) != 1:
            raise ValueError(f"condition must have batch 1, got {len(self.condition)}")
        self.seeds = seeds
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.meta = dict(meta or {})
        self.monitor = monitor
        self.diversity_key = diversity_key
        self.project = project
        if (config.diversity > 0 or config.max_key_share < 1) and diversity_key is None:
            raise ValueError("config.diversity > 0 or max_key_share < 1 needs a diversity_key (what counts as the same "
                             "sample)")
        lam0 = config.lam0 if config.fixed_multiplier is None else config.fixed_multiplier
        self.multipliers = Multipliers.full(len(self.names), lam0, config.rho, growth=config.rho_growth,
                                            rho_max=config.rho_max)
        self.reward_scale: float | None = None
        self.target: Tensor | None = None
        self.g_scale: Tensor | None = None
        self.records: list[RoundRecord] = []
        self.failures: list[Failure] = []
        self.evaluations = 0
        self.archive: dict[str, Any] | None = None
        self._start = time.perf_counter()  # reset by run(); set here so step() works on its own

    # -- one round ----------------------------------------------------------------------------------
    def _score(self, x: Tensor, c: Condition) -> tuple[Tensor, Tensor, Tensor, Tensor, Candidates]:
        """Reward ``(N,)`` (NaN = failed), violation indicators ``(N, C)`` bool, failed ``(N,)`` bool, ``g (N, C)``,
        and the scored candidates."""
        n = x.shape[0]
        extra = self.payload(x) if self.payload is not None else {}
        cands = Candidates(x=x, source_index=torch.arange(n), sources=None, target=c, extra=extra)
        ev = self.evaluator(cands)
        self.evaluations += n
        self.failures.extend(ev.failures)
        failed = torch.isinf(ev.violation.cpu())
        reward = torch.where(failed, torch.full((n,), math.nan, dtype=torch.float64), self.sign * ev.values[:, 0].double().cpu())
        g = ev.constraint_values.double().cpu()
        violated = ~(torch.isfinite(g) & (g <= self.bounds)) | failed[:, None]
        return reward, violated, failed, g, cands

    def _penalty(self, g: Tensor, violated: Tensor) -> Tensor:
        """Per-sample penalty terms ``(N, C)``: the smoothed violation indicator ``sigmoid((g - b) / s)``
        (1 where failed); the hard indicator when ``softness`` is 0."""
        if self.config.softness == 0 or self.g_scale is None:
            return violated.double()
        soft = torch.sigmoid((g - self.bounds) / self.g_scale)
        return torch.where(torch.isfinite(g), soft, torch.ones_like(soft))

    def allowed_violation(self, k: int) -> float:
        """The allowed violation rate per constraint at round ``k``: ``max_violation``, or with ``anneal_from`` the
        geometric path ``max_violation * (anneal_from / max_violation) ** (1 - k / anneal_rounds)`` until round
        ``anneal_rounds``."""
        cfg, b = self.config, self.config.max_violation
        if cfg.anneal_from is None or k >= cfg.anneal_rounds:
            return b
        return b * (cfg.anneal_from / b) ** (1 - max(k, 0) / cfg.anneal_rounds)

    def _update_target(self, rate: Tensor, n: int | None = None, k: int = 0) -> Tensor:
        """The exact dual's target per constraint ``(C,)`` at round ``k``: ``target_share * b_k`` at first (``b_k``:
        :meth:`allowed_violation`), then ``target * (b / rate) ** feedback`` after each measured rate (``b`` the rate
        the measured flow was fitted for; clipped to ``[target_floor, 1] * b``) and carried to ``b_k`` as a share:
        where the fitted flow violated more than its weights did, the next round's weights aim lower. With
        ``target_tolerance`` ``z > 0`` the rate is first lowered by ``z`` binomial standard errors of ``b`` over ``n``
        samples (``n``: required then)."""
        cfg = self.config
        b, now = self.allowed_violation(k - 1), self.allowed_violation(k)
        if self.target is None:
            self.target = torch.full_like(rate, now * cfg.target_share)
            return self.target.clone()
        if cfg.target_feedback > 0 and b > 0:
            if cfg.target_tolerance > 0:
                if not n or n < 1:
                    raise ValueError("target_tolerance > 0 needs the number of samples behind the rate")
                rate = (rate - cfg.target_tolerance * math.sqrt(b * (1 - b) / n)).clamp_min(0.0)
            ratio = (b / rate.clamp_min(b * cfg.target_floor)) ** cfg.target_feedback
            self.target = (self.target * ratio).clamp(b * cfg.target_floor, b)
        if now != b:  # annealing: the same share of this round's allowed rate
            self.target = self.target * (now / b)
        return self.target.clone()

    def _seed(self, k: int, offset: int) -> int:
        return self.config.seed * 1_000_003 + offset * 10_007 + k

    def _save(self, k: int) -> str | None:
        if self.out_dir is None:
            return None
        cfo = {"round": k, "condition": condition_to_dict(self.condition), "reward": self.reward_name,
               "constraints": dict(zip(self.names, self.bounds.tolist())), "config": _plain(asdict(self.config)),
               "trace": [r.to_dict() for r in self.records], "state": self.state_dict(),
               "project": self.project is not None}
        path = save_checkpoint(self.out_dir / f"round_{k:03d}.pt", self.model, {**self.meta, "cfo": cfo})
        return str(path)

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs besides the model's weights, as plain data: the records so far, the multipliers
        (``lam``, ``rho`` and the last violation of the dual step), the exact dual's targets, the reward and
        constraint scales of the pretrained samples and the evaluation count. Stored in every round checkpoint."""
        m = self.multipliers
        return {"records": [r.to_dict() for r in self.records], "lam": m.lam.tolist(), "rho": m.rho.tolist(),
                "last_violation": m.last_violation.tolist(), "reward_scale": self.reward_scale,
                "g_scale": None if self.g_scale is None else self.g_scale.tolist(),
                "target": None if self.target is None else self.target.tolist(), "evaluations": self.evaluations,
                "archive": None if self.archive is None else {
                    name: (v if name == "keys" or v is None else v.detach().cpu()) for name, v in self.archive.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the model's weights are restored separately, see :meth:`resume`)."""
        f64 = lambda v: None if v is None else torch.tensor(v, dtype=torch.float64)  # noqa: E731
        self.records = [RoundRecord(**r) for r in state["records"]]
        m = self.multipliers
        m.lam, m.rho, m.last_violation = f64(state["lam"]), f64(state["rho"]), f64(state["last_violation"])
        self.reward_scale = state["reward_scale"]
        self.g_scale, self.target = f64(state["g_scale"]), f64(state["target"])
        self.evaluations = int(state["evaluations"])
        archive = state.get("archive")
        self.archive = None if archive is None else {
            name: (v if name == "keys" or v is None else v.to(self.device) if name in ("z", "x") else v)
            for name, v in archive.items()}

    def resume(self, checkpoint: str | Path) -> int:
        """Continue from ``round_<k>.pt`` written by a run of this optimiser with the same pretrained model, reward,
        constraints and config: restores the fine-tuned weights and :meth:`state_dict`; returns ``k``, the round
        :meth:`run` continues with (``run(start=k)``); the run must have a ``project`` hook iff the original had one
        (the hook itself cannot be compared: pass the same one). Every round draws from generators seeded by the config seed and
        the round, so the resumed run ends exactly as an uninterrupted one on the same device type.

        Raises:
            ValueError: the checkpoint holds no optimiser state or was written with another config, reward or
                constraints.
        """
        path = Path(checkpoint)
        try:
            payload = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # missing, truncated or not a torch file
            raise ValueError(f"{path}: not a readable CFO round checkpoint ({type(exc).__name__}: {exc})") from exc
        cfo = payload.get("meta", {}).get("cfo") if isinstance(payload, dict) else None
        if not cfo or cfo.get("state") is None:
            raise ValueError(f"{path}: no optimiser state in this checkpoint (not a CFO round, or written by an older "
                             "flowevo); cannot resume from it")
        mine = {"config": _plain(asdict(self.config)), "reward": self.reward_name,
                "constraints": dict(zip(self.names, self.bounds.tolist()))}
        for key, value in mine.items():
            if cfo.get(key) != value:
                raise ValueError(f"{path}: written with another {key} ({cfo.get(key)!r}, this run: {value!r})")
        if bool(cfo.get("project", False)) != (self.project is not None):
            raise ValueError(f"{path}: written {'with' if cfo.get('project') else 'without'} a projection, this run "
                             f"{'has' if self.project is not None else 'has none'}: resume with the same project")
        self.model.load_state_dict(payload["state_dict"])
        self.load_state_dict(cfo["state"])
        k = int(cfo["round"])
        if len(self.records) != k:
            raise ValueError(f"{path}: round {k} but {len(self.records)} records; the checkpoint is inconsistent")
        if self.records:
            self.records[-1] = replace(self.records[-1], checkpoint=str(path))
        return k

    def _write_trace(self) -> None:
        if self.out_dir is not None:
            trace = {"reward": self.reward_name, "constraints": dict(zip(self.names, self.bounds.tolist())),
                     "config": _plain(asdict(self.config)), "rounds": [r.to_dict() for r in self.records]}
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "trace.json").write_text(json.dumps(_plain(trace), indent=2))

    def step(self, k: int) -> RoundRecord:
        """Sample, score, (if ``k < rounds``) take the dual step and fine-tune; returns round ``k``'s record."""
        cfg, n = self.config, self.config.samples
        gen = torch.Generator(device=self.device).manual_seed(self._seed(k, 1))
        z, x = sample_flow(self.model, n, self.condition, gen, cfg.discretisation, self.encoder)
        if self.seeds is not None:
            xs = self.seeds.to(x.device, x.dtype)
            with torch.no_grad():
                zs = self.encoder.encode(xs) if self.encoder is not None else xs
            z, x = torch.cat([z, zs.to(z.dtype)]), torch.cat([x, xs])
        c_all = batch_condition(self.condition.to(self.device), z.shape[0])
        reward, violated, failed, g, cands = self._score(x, c_all)
        own_r, own_v = reward[:n], violated[:n]
        if self.reward_scale is None:
            self.reward_scale = float(finite_std(own_r[:, None])[0])
            self.g_scale = cfg.softness * finite_std(g[:n]) if g.shape[1] else None
        rate = own_v.double().mean(0)
        kl = stderr = 0.0
        if k > 0 and cfg.kl_samples:
            est = kl_divergence(self.model, self.pretrained, cfg.kl_samples, self.condition.to(self.device),
                                torch.Generator(device=self.device).manual_seed(self._seed(k, 2)), cfg.kl_grid)
            kl, stderr = est.value, est.stderr
        ess = ess_keys = loss = temp = weighted_reward = weighted_satisfaction = None
        ckpt = None
        if k < cfg.rounds:
            keys = list(self.diversity_key(cands)) if self.diversity_key is not None else None
            if cfg.replay:
                scored = (z, x, reward, violated, g, keys)
                if self.archive is not None:
                    a = self.archive
                    z, x = torch.cat([z, a["z"].to(z)]), torch.cat([x, a["x"].to(x)])
                    reward, violated = torch.cat([reward, a["reward"]]), torch.cat([violated, a["violated"]])
                    g = torch.cat([g, a["g"]])
                    keys = None if keys is None else keys + a["keys"]
                    c_all = batch_condition(self.condition.to(self.device), z.shape[0])
                self._remember(*scored)
            pen, viol = self._penalty(g, violated), violated.double()
            feasible = ~violated.any(1)
            if self.project is not None:
                z = self._projected(x, z)
            if cfg.neighbours > 1:
                pen, viol = local_mean(z, pen, cfg.neighbours), local_mean(z, viol, cfg.neighbours)
            offset = cap = groups = None
            if self.diversity_key is not None:
                groups = key_groups(keys)
                offset = diversity_offset(keys, cfg.diversity) if cfg.diversity > 0 else None
                cap = GroupCap(groups, cfg.max_key_share) if cfg.max_key_share < 1 else None
            if cfg.fixed_multiplier is None and cfg.dual == "exact" and len(self.names):
                target = self._update_target(rate, own_v.shape[0], k)
                w, mu, temp = constrained_weights(reward / self.reward_scale, pen, viol, target, cfg.temperature,
                                                  cfg.min_ess, lam_max=cfg.lam_max, offset=offset,
                                                  trust_region=cfg.trust_region, cap=cap,
                                                  out_of_reach=cfg.out_of_reach, feasible=feasible)
                self.multipliers.lam = mu.clone()
            else:
                if cfg.fixed_multiplier is None:
                    mu = self.multipliers.update(rate - cfg.max_violation)
                else:
                    mu = self.multipliers.lam.clone()
                pseudo = reward / self.reward_scale - (pen * mu).sum(1)
                w, temp = trust_region_weights(pseudo, cfg.temperature, cfg.min_ess, offset, cap)
            if cfg.feasible_floor > 0:
                w = feasible_floor(w, feasible, cfg.feasible_floor, groups).to(w.dtype)
            ess = effective_sample_size(w[:n]) if self.seeds is None else effective_sample_size(w)
            ess_keys = None if groups is None else effective_group_count(w, groups)
            ok = torch.isfinite(reward)
            weighted_reward = self.sign * float((w[ok] * reward[ok]).sum() / w[ok].sum())
            weighted_satisfaction = float((w * (~violated.any(1)).double()).sum()) if violated.shape[1] else None
            losses = finetune_round(self.model, self.pretrained, z, c_all, w.to(self.device), cfg.finetune,
                                    self._seed(k, 3))
            loss = float(sum(losses[-50:]) / len(losses[-50:]))
        monitored = {}
        if self.monitor is not None:
            feasible = ~(own_v.any(1) | failed[:n]) if own_v.shape[1] else ~failed[:n]
            monitored = {str(key): float(v) for key, v in self.monitor(cands.subset(torch.arange(n)), feasible).items()}
        rec = RoundRecord(
            round=k, reward_mean=self.sign * finite_mean(own_r),
            reward_std=float(own_r[torch.isfinite(own_r)].std()) if torch.isfinite(own_r).sum() > 1 else math.nan,
            satisfaction=float((~own_v.any(1)).double().mean()) if own_v.shape[1] else float((~failed[:n]).double().mean()),
            constraint_satisfaction=dict(zip(self.names, (1 - rate).tolist())), failed=int(failed[:n].sum()),
            multipliers=dict(zip(self.names, self.multipliers.lam.tolist())),
            rho=dict(zip(self.names, self.multipliers.rho.tolist())), kl=kl, kl_stderr=stderr, ess=ess,
            temperature=temp, train_loss=loss, evaluations=self.evaluations, wall_s=time.perf_counter() - self._start,
            monitored=monitored, weighted_reward=weighted_reward, weighted_satisfaction=weighted_satisfaction,
            ess_keys=ess_keys,
            targets={} if self.target is None or k == cfg.rounds else dict(zip(self.names, self.target.tolist())),
        )
        self.records.append(rec)
        if k < cfg.rounds:
            ckpt = self._save(k + 1)
            self.records[-1] = rec = RoundRecord(**{**rec.to_dict(), "checkpoint": ckpt})
        self._write_trace()
        return rec

    def _remember(self, z: Tensor, x: Tensor, reward: Tensor, violated: Tensor, g: Tensor,
                  keys: list | None) -> None:
        """Merge a round's feasible scored rows into the replay archive: the ``replay`` highest rewards, the best row
        per key where keys are given."""
        ok = ~violated.any(1) & torch.isfinite(reward)
        rows = {"z": z[ok].detach(), "x": x[ok].detach(), "reward": reward[ok], "violated": violated[ok], "g": g[ok],
                "keys": None if keys is None else [kk for kk, o in zip(keys, ok.tolist()) if o]}
        if self.archive is not None:
            a = self.archive
            rows = {name: (rows[name] + a[name] if name == "keys" else torch.cat([rows[name], a[name].to(rows[name])]))
                    if rows[name] is not None else None for name in rows}
        order = torch.argsort(rows["reward"], descending=True).tolist()
        chosen, seen = [], set()
        for i in order:
            key = None if rows["keys"] is None else rows["keys"][i]
            if key is not None:  # one row per key; rows without a key (undecodable, or no diversity_key) all count
                if key in seen:
                    continue
                seen.add(key)
            chosen.append(i)
            if len(chosen) == self.config.replay:
                break
        idx = torch.tensor(chosen, dtype=torch.long)
        self.archive = {name: (None if v is None else [v[i] for i in chosen] if name == "keys" else v[idx.to(v.device)])
                        for name, v in rows.items()}

    def _projected(self, x: Tensor, z: Tensor) -> Tensor:
        """``project`` applied to the decoded samples ``x (N, *D)``, back in flow space ``(N, *S)``; a row the
        projection leaves non-finite keeps its sample."""
        with torch.no_grad():
            xp = self.project(x).to(x.device, x.dtype)
            if xp.shape != x.shape:
                raise ValueError(f"project returned shape {tuple(xp.shape)} for samples of shape {tuple(x.shape)}")
            zp = (self.encoder.encode(xp) if self.encoder is not None else xp).to(z.dtype)
        ok = torch.isfinite(zp.reshape(zp.shape[0], -1)).all(1)
        return torch.where(ok.reshape(-1, *([1] * (z.dim() - 1))), zp, z)

    def run(self, show_progress: bool = False, start: int = 0) -> CFOResult:
        """All rounds from ``start`` (0, or what :meth:`resume` returned); returns a :class:`CFOResult` (the
        fine-tuned model is ``result.model``)."""
        if start != len(self.records) or not 0 <= start <= self.config.rounds:
            raise ValueError(f"start = {start}: the optimiser holds {len(self.records)} records of "
                             f"{self.config.rounds + 1} rounds (resume() first)")
        self._start = time.perf_counter() - (self.records[-1].wall_s if self.records else 0.0)
        checkpoints = []
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            checkpoints.append(self._save(0) if start == 0 else str(self.out_dir / "round_000.pt"))
            checkpoints += [r.checkpoint for r in self.records if r.checkpoint]
        with progress_bar("CFO rounds", total=self.config.rounds + 1, enabled=show_progress) as advance:
            advance(start)
            for k in range(start, self.config.rounds + 1):
                rec = self.step(k)
                if rec.checkpoint:
                    checkpoints.append(rec.checkpoint)
                lam = max(rec.multipliers.values()) if rec.multipliers else 0.0
                advance(1, reward=rec.reward_mean, satisfied=rec.satisfaction, max_lambda=lam, kl=rec.kl)
        return CFOResult(self.model, self.pretrained, list(self.records), list(self.failures),
                         [c for c in checkpoints if c])


def local_mean(z: Tensor, values: Tensor, k: int) -> Tensor:
    """Per sample, the mean of ``values (N, C)`` over its ``k`` nearest samples in flow space (itself included):
    ``z (N, *S)`` -> ``(N, C)``. Failed samples' values (1) count like any other."""
    flat = z.reshape(z.shape[0], -1).double().cpu()
    k = min(k, flat.shape[0])
    idx = torch.cdist(flat, flat).topk(k, dim=1, largest=False).indices
    return values.double()[idx].mean(1)


def _plain(obj: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, so the JSON is strict."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
