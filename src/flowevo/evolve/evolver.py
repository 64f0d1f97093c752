"""The Evolver: residual-space evolution with ask / tell / stop, and ``run()`` as sugar.

Every row of an :class:`EditTask` (one source sample and its target condition) keeps its
own sub-population of ``population_size`` residuals; all rows evolve together in one
batched population, so each solver step is one velocity-model call for everyone.

Generation 0 is the source's own residual (inverted under its own condition), any extra
seeds, and the variation strategy's variants of it. Each later generation makes
``population_size`` offspring per row, decodes them under the row's target condition,
has them scored, and keeps the best ``population_size`` of parents and offspring per row. An
:class:`~flowevo.evolve.Archive` keeps every row's feasible non-dominated set of everything scored,
so the result's Pareto set per row is not limited to the last generation's survivors.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import Tensor

from flowevo.evolve.archive import Archive
from flowevo.evolve.constraints import LagrangianPenalty
from flowevo.evolve.history import GenerationRecord, summarise_generation
from flowevo.evolve.operators import SearchContext, Variation, VariationStrategy, bind_strategy
from flowevo.evolve.population import SEED, Population
from flowevo.evolve.result import EditResult
from flowevo.evolve.survival import Elitist, HypervolumeContribution, RankAndCrowding
from flowevo.evolve.task import EditTask
from flowevo.evolve.termination import MaxGenerations
from flowevo.flow.codec import Codec
from flowevo.objectives import Candidates, Evaluation, Evaluator, Failure, sense_sign
from flowevo.progress import progress_bar

Callback = Callable[["Evolver"], None]
Survival = Elitist | HypervolumeContribution | RankAndCrowding
Termination = Callable[..., "str | None"]


class Evolver:
    """Residual-space evolutionary optimiser (ask / tell / stop).

    Self-pollination step sizes adapt per row by the 1/5th success rule: when more than a
    fifth of a row's survivors are fresh offspring, its angle grows, otherwise it shrinks
    (bounded to 0.05x .. 10x the operator's angle).

    Args:
        codec: any :class:`~flowevo.flow.Codec` (inverts sources, decodes candidates), e.g. a
            :class:`~flowevo.flow.ResidualCodec`.
        task: the rows to edit.
        evaluator: scores candidates, e.g. ``LocalEvaluator(objectives, constraints)``; needs an
            ``objectives`` attribute (for names and senses) and ``__call__(Candidates) -> Evaluation``.
        population_size: individuals kept (and offspring made) per row and generation.
        variation: a :class:`~flowevo.evolve.operators.VariationStrategy`: generation-0 variants and
            offspring (default: a fresh :class:`~flowevo.evolve.operators.Variation`, self- and
            cross-pollination). :class:`~flowevo.evolve.operators.PreScreen` wraps any strategy to send only
            the children a surrogate ranks best. A strategy with a ``bind`` method is bound to this run
            (codec, task, objectives, constraints, payload) here.
        survival: :class:`Elitist`, :class:`HypervolumeContribution` or :class:`RankAndCrowding`;
            default: elitist for one objective, hypervolume contribution for several.
        termination: criteria; the run stops when any says so.
        seed: seed of the run's generator (same seed, same result).
        extra_seeds: optional ``(B, P, *S)`` residuals per row added to generation 0.
        include_source: generation 0 starts with each row's own residual (then ``extra_seeds``, in order);
            False: ``extra_seeds`` alone lead it (e.g. seeds already ranked by a prior). Either way a row's
            generation 0 is filled up to ``population_size`` with the variation's initial variants.
        hv_reference: ``(M,)`` hypervolume reference in minimisation form (default: from generation 0).
        payload: optional ``fn(x (N, *D)) -> {name: list of N}`` turning decoded tensors into domain
            objects once per batch (e.g. crystal structures), handed to objectives as ``Candidates.extra``.
        penalty: constraint handling beyond feasibility-first survival, e.g. a
            :class:`~flowevo.evolve.constraints.LagrangianPenalty` (copied; the run's copy is
            ``evolver.penalty``). None: feasible first, infeasible by total violation.

    Example (ask / tell)::

        evolver = Evolver(codec, task, LocalEvaluator([objective]), population_size=8)
        while not evolver.stop():
            candidates = evolver.ask()
            evolver.tell(evaluator(candidates))   # or score anywhere, e.g. on a cluster
        result = evolver.result()
    """

    STEP_RATE = 1.0  # log step change per generation at 100% / 0% success (scaled by (rate - 0.2) / 0.8)

    def __init__(
        self,
        codec: Codec,
        task: EditTask,
        evaluator: Evaluator,
        population_size: int = 16,
        variation: VariationStrategy | None = None,
        survival: Survival | None = None,
        termination: Sequence[Termination] = (MaxGenerations(20),),
        seed: int = 0,
        extra_seeds: Tensor | None = None,
        include_source: bool = True,
        hv_reference: Tensor | None = None,
        payload: Callable[[Tensor], dict] | None = None,
        penalty: LagrangianPenalty | None = None,
    ) -> None:
        if population_size < 1:
            raise ValueError(f"population_size must be >= 1, got {population_size}")
        self.codec, self.task, self.evaluator = codec, task, evaluator
        self.k, self.rows = int(population_size), len(task)
        self.variation = variation if variation is not None else Variation()
        n_obj = len(evaluator.objectives)
        self.survival = survival if survival is not None else (Elitist() if n_obj == 1 else HypervolumeContribution())
        self.termination = list(termination)
        if not self.termination:
            raise ValueError("give at least one termination criterion (e.g. MaxGenerations(20))")
        self.device = codec.device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.sign = sense_sign(evaluator.objectives)
        if not include_source and extra_seeds is None:
            raise ValueError("include_source=False needs extra_seeds (generation 0 would have no seeds)")
        self.extra_seeds, self.include_source = extra_seeds, bool(include_source)
        self.hv_reference = hv_reference
        self.payload = payload
        self.penalty = copy.deepcopy(penalty)
        constraints = list(getattr(evaluator, "constraints", []))
        self.constraint_names = [c.name for c in constraints]
        self.constraint_bounds = torch.tensor([float(c.bound) for c in constraints], dtype=torch.float64)
        bind_strategy(self.variation, SearchContext(codec, task, list(evaluator.objectives), constraints, payload))
        self.population: Population | None = None
        self.archive = Archive(self.rows, self.sign)
        self.pending: Population | None = None
        self.last: Population | None = None  # the most recently evaluated batch (for callbacks)
        self.step_scale = torch.ones(self.rows, dtype=torch.float64)  # per-row angle scale (1/5th success rule)
        self.generation = 0
        self.evaluations = 0
        self.history: list[GenerationRecord] = []
        self.failures: list[Failure] = []
        self.stop_reason: str | None = None
        self._start = time.perf_counter()

    # -- ask / tell / stop ------------------------------------------------------------------------
    def _seed_population(self) -> Population:
        task, k = self.task, self.k
        r = self.codec.invert(task.sources.to(self.device), task.source_condition.to(self.device))
        seeds = [r[:, None]] if self.include_source else []
        if self.extra_seeds is not None:
            if self.extra_seeds.shape[0] != self.rows or self.extra_seeds.shape[2:] != r.shape[1:]:
                raise ValueError(f"extra_seeds must have shape ({self.rows}, P, {tuple(r.shape[1:])})")
            seeds.append(self.extra_seeds.to(self.device, r.dtype))
        seeds = torch.cat(seeds, dim=1)[:, :k]  # (B, <=k, *S)
        n_var = k - seeds.shape[1]
        if n_var > 0:
            seeds = torch.cat([seeds, self.variation.initial(r, n_var, self.generator)], dim=1)
        residuals = seeds.reshape(self.rows * k, *r.shape[1:])
        row = torch.arange(self.rows, device=self.device).repeat_interleave(k)
        origin = torch.full_like(row, SEED)
        return Population.new(residuals, row, origin, torch.full_like(row, -1), len(self.sign), 0)

    def ask(self) -> Candidates:
        """The next batch of candidates to score (decoded under each row's target condition)."""
        if self.pending is not None:
            raise RuntimeError("ask() called twice without tell(): score the pending candidates first")
        with torch.inference_mode():
            if self.population is None:
                pop = self._seed_population()
            else:
                pop = self.variation.offspring(self.population, self.rows, self.k, self.generator, self.step_scale)
            target = self.task.target_condition.to(self.device)[pop.row]
            # a strategy that decoded its children already (e.g. to screen them) hands them over decoded
            decoded = pop.decoded.to(self.device) if pop.decoded is not None else self.codec.decode(pop.residuals, target)
        self.pending = replace(pop, decoded=decoded)
        sources = self.task.sources.to(self.device)[pop.row]
        extra = self.payload(decoded) if self.payload is not None else {}
        return Candidates(x=decoded, source_index=pop.row, sources=sources, target=target, extra=extra)

    def tell(self, evaluation: Evaluation) -> None:
        """Record the scores of the last :meth:`ask` and select the survivors."""
        pop = self.pending
        if pop is None:
            raise RuntimeError("tell() without a pending ask()")
        if evaluation.values.shape != (len(pop), len(self.sign)):
            raise ValueError(f"expected values of shape ({len(pop)}, {len(self.sign)}), got {tuple(evaluation.values.shape)}")
        g = evaluation.constraint_values.double().cpu()
        if g.shape != (len(pop), len(self.constraint_names)):
            raise ValueError(f"expected constraint values of shape ({len(pop)}, {len(self.constraint_names)}), "
                             f"got {tuple(g.shape)}")
        pop = replace(pop, values=evaluation.values.double().cpu(), violation=evaluation.violation.double().cpu(),
                      constraint_values=g)
        self.pending = None
        self.last = pop
        self.variation.observe(pop)
        self.archive.add(pop)
        self.evaluations += len(pop)
        self.failures.extend(evaluation.failures)
        pool = pop if self.population is None else Population.cat([self.population, pop])
        F = pool.values * self.sign
        if self.penalty is None:
            keep = self.survival(F, pool.violation, pool.row, self.rows, self.k)
        else:
            if not self.penalty.ready:
                self.penalty.setup(self.constraint_names, self.constraint_bounds, F, pool.constraint_values)
            keep = self.penalty.select(self.survival, F, pool.violation, pool.constraint_values, pool.row, self.rows, self.k)
        self.population = replace(pool.take(keep), generation=pop.generation)
        if self.penalty is not None and self.constraint_names:
            self.penalty.update(self.population.constraint_values)
        if pop.generation > 0:  # 1/5th success rule: widen steps where offspring keep winning, narrow where not
            won = (self.population.born == pop.generation).double()
            rate = torch.zeros(self.rows, dtype=torch.float64).index_add_(0, self.population.row.cpu(), won) / self.k
            self.step_scale = (self.step_scale * torch.exp((rate - 0.2) / 0.8 * self.STEP_RATE)).clamp(0.05, 10.0)
        self.generation = pop.generation
        self.history.append(self._record(pop))

    def stop(self) -> str | None:
        """The reason to stop (a string) or None to go on."""
        if self.stop_reason is None:
            for criterion in self.termination:
                reason = criterion(self)
                if reason:
                    self.stop_reason = reason
                    break
        return self.stop_reason

    # -- running ------------------------------------------------------------------------------------
    def step(self) -> None:
        """One ask / evaluate / tell cycle with this evolver's evaluator."""
        self.tell(self.evaluator(self.ask()))

    def run(self, callbacks: Sequence[Callback] = (), show_progress: bool = False) -> EditResult:
        """Step until a termination criterion holds; call each callback after every generation."""
        total = next((c.n for c in self.termination if isinstance(c, MaxGenerations)), 0) + 1
        with progress_bar("evolving", total=total, enabled=show_progress) as advance:
            if self.population is None:
                self.step()
                self._after(callbacks, advance)
            while not self.stop():
                self.step()
                self._after(callbacks, advance)
        return self.result()

    def _after(self, callbacks: Sequence[Callback], advance) -> None:
        for cb in callbacks:
            cb(self)
        rec = self.history[-1]
        extra = {"satisfied": rec.feasible_fraction} if rec.satisfaction else {}
        if rec.multipliers:
            extra["max_lambda"] = max(rec.multipliers.values())
        advance(1, best=rec.best[0], feasible=rec.rows_feasible, **extra)

    def result(self) -> EditResult:
        """The current state as an :class:`~flowevo.evolve.result.EditResult` (method ``"reo"``): per row the
        survivors (``population_size``, best first), then every other candidate of the row's archive (its best
        and its feasible non-dominated set of everything scored)."""
        if self.population is None:
            raise RuntimeError("nothing evaluated yet")
        objs = self.evaluator.objectives
        return EditResult(
            method="reo", population=self.archive.joined(self.population), objective_names=[o.name for o in objs],
            senses=[o.sense for o in objs], rows=self.rows,
            evaluations_per_row=torch.full((self.rows,), self.evaluations / self.rows, dtype=torch.float64),
            history=list(self.history), failures=list(self.failures), stop_reason=self.stop_reason or "not stopped",
            wall_s=time.perf_counter() - self._start, info=self._info(),
        )

    def _info(self) -> dict:
        """Strategy statistics worth keeping with the result (e.g. pre-screening time and counts)."""
        stats = getattr(self.variation, "stats", None)
        return {"variation": dict(stats)} if isinstance(stats, dict) else {}

    # -- checkpoints ---------------------------------------------------------------------------------
    _POP_FIELDS = ("residuals", "row", "origin", "donor_row", "values", "violation", "decoded", "born",
                   "constraint_values")

    def state_dict(self) -> dict:
        """Everything needed to continue this run: population, history, counters, generator state.

        Only between generations (no pending :meth:`ask`). Plain data and tensors only, so it
        loads with ``torch.load(weights_only=True)``."""
        if self.pending is not None:
            raise RuntimeError("cannot checkpoint between ask() and tell()")
        pop = self.population
        return {
            "population": None if pop is None else {f: getattr(pop, f) for f in self._POP_FIELDS},
            "population_generation": None if pop is None else pop.generation,
            "archive": None if (arc := self.archive.population) is None else {f: getattr(arc, f) for f in self._POP_FIELDS},
            "generation": self.generation, "evaluations": self.evaluations,
            "history": [h.to_dict() for h in self.history],
            "failures": [vars(f).copy() for f in self.failures],
            "step_scale": self.step_scale, "generator": self.generator.get_state(),
            "hv_reference": self.hv_reference, "stop_reason": self.stop_reason, "rows": self.rows, "k": self.k,
            "penalty": None if self.penalty is None else self.penalty.state_dict(),
            "variation": self.variation.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (same task size and population size)."""
        if state["rows"] != self.rows or state["k"] != self.k:
            raise ValueError(f"checkpoint has {state['rows']} rows x {state['k']} individuals; "
                             f"this run has {self.rows} x {self.k}")
        p = state["population"]
        if (state.get("penalty") is None) != (self.penalty is None):
            raise ValueError("checkpoint and run disagree on constraint handling (a LagrangianPenalty in one only)")
        self.population = None if p is None else self._population(p, state["population_generation"])
        self.archive = Archive(self.rows, self.sign)
        if state.get("archive") is not None:
            self.archive.population = self._population(state["archive"], state["population_generation"])
        elif self.population is not None:  # a checkpoint from before the archive: start it from the survivors
            self.archive.add(self.population)
        if self.penalty is not None:
            self.penalty.load_state_dict(state["penalty"])
        self.variation.load_state_dict(state.get("variation") or {})
        self.pending, self.generation, self.evaluations = None, state["generation"], state["evaluations"]
        self.history = [GenerationRecord(**h) for h in state["history"]]
        self.failures = [Failure(**f) for f in state["failures"]]
        self.step_scale, self.hv_reference, self.stop_reason = state["step_scale"], state["hv_reference"], state["stop_reason"]
        self.generator.set_state(state["generator"])

    def _population(self, fields: dict, generation: int) -> Population:
        on_device = ("residuals", "row", "origin", "donor_row", "decoded")
        return Population(**{f: (None if fields.get(f) is None else fields[f].to(self.device if f in on_device else "cpu"))
                             for f in self._POP_FIELDS}, generation=generation)

    # -- bookkeeping --------------------------------------------------------------------------------
    def _record(self, new: Population) -> GenerationRecord:
        record, self.hv_reference = summarise_generation(
            self.population, new, self.sign, self.rows, self.generation, self.evaluations,
            time.perf_counter() - self._start, self.hv_reference, self.constraint_names, self.constraint_bounds,
            {} if self.penalty is None else self.penalty.as_dict())
        return record
