"""Crystal editing as one library call: the site-masked REO, its evaluator and its results.

* :func:`edit_evaluator`: the black boxes of a crystal edit: the surrogate (minimised) under
  structure validity, composition validity (:class:`~.validity.CompositionCheck`, :data:`~.validity.SMACT_SET`),
  the edit budget against each row's source, and any extra constraints (e.g.
  :func:`~.constraints.smact_strict_constraint`, :func:`~.constraints.energy_ceiling_constraint`).
* :func:`site_masked_reo`: the Evolver on site-masked genomes (:mod:`~.site_edit`): generation 0 is
  each source's residual with all sites free and with each small edit region (:func:`~.site_edit.seed_masks`),
  decoded by flow inpainting; offspring by :class:`~.site_edit.SiteVariation` with ``move``
  (:class:`~.site_edit.SiteMutation`: REO; :class:`~.site_edit.RandomRegions`: the ``masked_random``
  ablation). :func:`site_masked_evolver` builds the same run as an :class:`~flowevo.evolve.Evolver`
  to drive step by step or checkpoint (:func:`~flowevo.evolve.save_run_state`).
* :func:`encodable_sources`: the sources the model can encode (the others are reported, not edited).
* :func:`best_structures`: each row's best edit of an :class:`~flowevo.evolve.EditResult` as a Structure;
  :func:`kept_edits`: the same where it met every constraint, else ``None``.

Example (a trained :class:`~.fitting.CrystalModels` ``m`` and a source table ``src``)::

    x = m.model.encode(src.structures, src.formulas)
    sources = canonical_sources(src, m.representation)
    evaluator = edit_evaluator(m.surrogate, sources, budget="k2_bkept")
    result = site_masked_reo(m.model, x, src.properties["heat_ref"], -1.0, evaluator, generations=5)
    edits = kept_edits(result, m.representation)   # None where no edit met every constraint
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from flowevo.evolve import EditResult, EditTask, Evolver, MaxGenerations
from flowevo.flow import FixedGrid
from flowevo.flow.solver import Discretisation
from flowevo.objectives import Constraint, Evaluator, LocalEvaluator

from ._threads import torch_threads
from .data import CrystalTable
from .model import CrystalModel
from .objectives import (
    budget_constraint,
    composition_validity_constraint,
    property_objective,
    structure_validity_constraint,
    structures_payload,
)
from .representation import CrystalRepresentation
from .screening import feasible_seeds, site_prescreen
from .site_edit import RandomRegions, SiteMaskedCodec, SiteMove, SiteMutation, SiteVariation, seed_genomes, seed_masks
from .validity import SMACT_SET, CompositionCheck

__all__ = ["GENERATIONS", "POPULATION", "SCREEN", "best_structures", "edit_evaluator", "encodable_sources",
           "kept_edits", "site_masked_evolver", "site_masked_reo", "site_masked_seeds", "site_masked_variation"]

POPULATION = 4
"""REO's default population per source on crystals (chosen on the development split, issue 15)."""
GENERATIONS = 11
"""Default generations after generation 0: ``POPULATION * (GENERATIONS + 1)`` = 48 evaluations per source."""
SCREEN = 8
"""Default pre-screening factor (children decoded and checked per child scored; :mod:`~.screening`)."""

Values = Sequence[float] | np.ndarray | Tensor


def edit_evaluator(surrogate: Any, sources: Sequence[Any], budget: str = "any", constraints: Sequence[Constraint] = (),
                   composition: CompositionCheck | None = None, objective: str = "surrogate") -> LocalEvaluator:
    """The evaluator of a crystal edit (minimise ``surrogate``), feasible when every constraint holds.

    Args:
        surrogate: ``surrogate.predict(structures) -> (N,)``, e.g. a :class:`~.predictors.PropertyPredictor`.
        sources: each task row's canonical source Structure (:func:`~.objectives.canonical_sources`), for the budget.
        budget: an edit budget of :data:`~.objectives.BUDGETS` (``"any"``: none).
        constraints: extra constraints, after structure validity, composition validity and the budget.
        composition: the composition check to use (share one to share its cache); default
            :class:`~.validity.CompositionCheck` under :data:`~.validity.SMACT_SET`.
        objective: the objective's name.

    A candidate whose structure could not be built fails the objective (NaN) and violates both validity
    constraints: it is infeasible.
    """
    check = composition or CompositionCheck(SMACT_SET)
    cons = [structure_validity_constraint(), composition_validity_constraint(check=check)]
    cons += budget_constraint(budget, sources=list(sources)) + list(constraints)
    return LocalEvaluator([property_objective(surrogate, objective)], cons)


def encodable_sources(model: CrystalModel, sources: CrystalTable,
                      log: Callable[[str], None] = lambda s: None) -> tuple[CrystalTable, list[dict[str, str]]]:
    """``(the rows of sources the model can encode, [{"id", "reason"} for each other row])``.

    A row fails e.g. when it holds an element the training data never had at that site.

    Raises:
        ValueError: no row can be encoded.
    """
    keep, skipped = [], []
    for i in range(len(sources)):
        try:
            model.encode(sources.structures[i : i + 1], sources.formulas[i : i + 1])
            keep.append(i)
        except ValueError as exc:
            skipped.append({"id": sources.ids[i], "reason": str(exc)})
            log(f"skipping source {sources.ids[i]}: {exc}")
    if not keep:
        raise ValueError(f"none of the {len(sources)} source crystals can be encoded by the model trained on "
                         f"the training data (first reason: {skipped[0]['reason']})")
    return sources.subset(keep), skipped


def _values(v: float | Values, n: int, name: str) -> list[float]:
    if isinstance(v, (int, float)):
        return [float(v)] * n
    out = [float(a) for a in np.asarray(v, dtype=np.float64).reshape(-1)]
    if len(out) != n:
        raise ValueError(f"{name}: {len(out)} values for {n} sources")
    return out


def site_masked_evolver(model: CrystalModel, sources: Tensor, source_values: Values, target: float | Values,
                        evaluator: Evaluator, population: int = POPULATION, generations: int = GENERATIONS,
                        seed: int = 0, move: SiteMove = SiteMutation(), masks: Sequence[Sequence[bool]] | None = None,
                        discretisation: Discretisation = FixedGrid("rk4", 10), retries: int = 4,
                        screen: int | None = None, screen_options: dict[str, Any] | None = None,
                        screen_seeds: bool | None = None) -> Evolver:
    """The site-masked REO run of :func:`site_masked_reo` as an :class:`~flowevo.evolve.Evolver` (not started).

    Drive it with ``run()`` or ask/tell; :func:`~flowevo.evolve.save_run_state` checkpoints it (the
    variation's archive of proposed compositions included), and :func:`~flowevo.evolve.load_run_state`
    resumes it in an evolver built by the same call.
    """
    if sources.ndim != 2 or sources.shape[1] != model.dim:
        raise ValueError(f"sources must be crystal tensors (B, {model.dim}) (model.encode), got {tuple(sources.shape)}")
    if population < 1 or generations < 0:
        raise ValueError(f"population must be >= 1 and generations >= 0, got {population} and {generations}")
    n = len(sources)
    task = EditTask(sources, model.condition(_values(source_values, n, "source_values")),
                    model.condition(_values(target, n, "target")))
    codec = SiteMaskedCodec(model, discretisation)
    variation = site_masked_variation(codec, task, move, retries, screen, screen_options)
    screen_seeds = True if screen_seeds is None else bool(screen_seeds)
    count = max(population - 1, len(seed_masks() if masks is None else masks))
    extra = site_masked_seeds(codec, task, list(getattr(evaluator, "constraints", [])), masks, screen_seeds, count)
    return Evolver(codec, task, evaluator, population_size=population, variation=variation,
                   termination=[MaxGenerations(generations)], seed=seed, extra_seeds=extra,
                   payload=structures_payload(model.representation))


def site_masked_variation(codec: SiteMaskedCodec, task: EditTask, move: SiteMove = SiteMutation(), retries: int = 4,
                          screen: int | None = None, screen_options: dict[str, Any] | None = None) -> Any:
    """The variation strategy of a site-masked REO run: :class:`~.site_edit.SiteVariation`, pre-screened
    (:func:`~.screening.site_prescreen`) when ``screen`` > 1.

    ``screen`` None: the library default, :data:`SCREEN` for REO's move and 1 (none) for
    :class:`~.site_edit.RandomRegions` (the ``masked_random`` ablation makes children without selection).
    """
    screen = (1 if isinstance(move, RandomRegions) else SCREEN) if screen is None else int(screen)
    if screen < 1:
        raise ValueError(f"screen must be >= 1 (1: no pre-screening), got {screen}")
    variation: Any = SiteVariation(codec, task.target_condition, move=move, retries=retries,
                                   archive="proposed" if screen == 1 else "scored")
    if screen > 1:
        variation = site_prescreen(variation, codec.crystal_model, screen, **(screen_options or {}))
    return variation


def site_masked_seeds(codec: SiteMaskedCodec, task: EditTask, constraints: Sequence[Constraint],
                      masks: Sequence[Sequence[bool]] | None = None, screen_seeds: bool = True,
                      count: int | None = None) -> Tensor:
    """Generation-0 extra seeds ``(B, P, G)`` of a site-masked REO run.

    ``screen_seeds``: the preferred edit regions of ``masks`` (default :func:`~.site_edit.seed_masks`; then
    self-pollinated variants) whose decoded crystal passes the ``cheap=True`` ``constraints`` with a new
    composition, ``count`` of them (default ``len(masks)``; the Evolver keeps the first ``population - 1``), by
    :func:`~.screening.feasible_seeds`, without a black-box call; otherwise the source's residual with each
    region (:func:`~.site_edit.seed_genomes`).
    """
    masks = seed_masks() if masks is None else masks
    if not screen_seeds:
        return seed_genomes(codec, task.sources, task.source_condition, masks)
    return feasible_seeds(codec, task, list(constraints), structures_payload(codec.crystal_model.representation),
                          masks, len(masks) if count is None else count)


def site_masked_reo(model: CrystalModel, sources: Tensor, source_values: Values, target: float | Values,
                    evaluator: Evaluator, population: int = POPULATION, generations: int = GENERATIONS,
                    seed: int = 0, move: SiteMove = SiteMutation(), masks: Sequence[Sequence[bool]] | None = None,
                    discretisation: Discretisation = FixedGrid("rk4", 10), retries: int = 4,
                    callbacks: Sequence[Callable[[Evolver], None]] = (), num_threads: int | None = 1,
                    show_progress: bool = False, screen: int | None = None,
                    screen_options: dict[str, Any] | None = None, screen_seeds: bool | None = None) -> EditResult:
    """Edit crystals by REO on site-masked genomes (see the module doc); one call.

    Args:
        model: the trained :class:`~.model.CrystalModel` (``whiten=True``).
        sources: ``(B, D)`` source crystal tensors (``model.encode(structures, formulas)``).
        source_values: ``(B,)`` the sources' property values (their own condition, for inversion).
        target: the property value to decode under: one for all rows or ``(B,)``.
        evaluator: scores candidates, e.g. :func:`edit_evaluator` (it reads ``extra["structures"]``,
            filled by the run's :func:`~.objectives.structures_payload`).
        population: individuals kept (and offspring made) per row and generation.
        generations: generations after generation 0; evaluations per row ``population * (generations + 1)``.
        seed: the run's seed (same seed, same result).
        move: :class:`~.site_edit.SiteMutation` (REO) or :class:`~.site_edit.RandomRegions` (``masked_random``).
        masks: generation-0 edit regions, preferred first (default :func:`~.site_edit.seed_masks`); generation 0
            holds the all-free genome, then these (see ``screen_seeds``), up to ``population``.
        discretisation: the solver grid of the decoder.
        retries: re-draws of a child that repeats a composition of its row.
        callbacks: called with the Evolver after every generation.
        num_threads: torch intra-op threads during the run (None: leave as is).
        show_progress: a progress bar.
        screen: pre-screening factor (:func:`~.screening.site_prescreen`): from generation 1 on, ``screen``
            times the children sent are decoded, the cheap constraints (validity, budget) called exactly and
            the rest ranked by a GP on the decoded compositions, pooled over rows of the same target; only
            the best ``population`` per row are scored. 1: none. None (default): :data:`SCREEN` for REO's
            move, 1 for :class:`~.site_edit.RandomRegions` (``masked_random`` has no selection).
        screen_options: keywords of :func:`~.screening.site_prescreen` (``features``, ``pool``, ...).
        screen_seeds: generation 0's extra seeds are the first ``population - 1`` edit regions of ``masks``
            (then self-pollinated variants) whose decoded crystal passes the evaluator's cheap constraints
            with a new composition (:func:`~.screening.feasible_seeds`; no black-box call). None (default): on,
            for both moves (``masked_random`` shares REO's generation 0); False: the source residual with each
            region in order.

    Defaults (population 4, 11 generations, pre-screening factor 8, screened seeds) were chosen on the
    development split (``benchmarks/dev/crystal_reo_screen.py``; docs/benchmarks.md, issue 15).

    Returns:
        an :class:`~flowevo.evolve.EditResult` named ``"reo"`` (``"masked_random"`` for
        :class:`~.site_edit.RandomRegions`): the survivors, ``population`` per row; ``best`` is each row's best
        (feasible first), its ``decoded`` the crystal tensors (:func:`best_structures` builds the Structures).
    """
    with torch_threads(num_threads):
        evolver = site_masked_evolver(model, sources, source_values, target, evaluator, population, generations, seed,
                                      move, masks, discretisation, retries, screen, screen_options,
                                      screen_seeds)
        result = evolver.run(callbacks=callbacks, show_progress=show_progress)
    return dataclasses.replace(result, method="masked_random" if isinstance(move, RandomRegions) else "reo")


def best_structures(result: EditResult, representation: CrystalRepresentation) -> list[Any]:
    """Each row's best individual (:attr:`EditResult.best <flowevo.evolve.EditResult.best>`) as a Structure,
    ``None`` where it cannot be built.

    Results of methods that build Structures themselves (e.g. :func:`~.exhaustive.exhaustive_edit`) carry
    them in ``result.info["structures"]``, one per row (their population holds one individual per row);
    those are returned as they are. Otherwise the best individuals' decoded tensors are decoded by
    ``representation``.
    """
    if "structures" in result.info:
        structures = list(result.info["structures"])
        if len(structures) != result.rows or len(result.population) != result.rows:
            raise ValueError(f"result.info['structures'] must hold one Structure per row ({result.rows}), "
                             f"got {len(structures)} for a population of {len(result.population)}")
        return structures
    best = result.best
    if best.decoded is None:
        raise ValueError(f"{result.method}: the result holds no decoded crystals")
    return structures_payload(representation)(best.decoded.cpu())["structures"]


def kept_edits(result: EditResult, representation: CrystalRepresentation) -> list[Any]:
    """Each row's best edit as a Structure where it met every constraint (violation 0), else ``None``."""
    structures = best_structures(result, representation)
    return [s if v == 0 and s is not None else None for s, v in zip(structures, result.best.violation.tolist())]
