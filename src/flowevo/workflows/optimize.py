"""An optimisation run on a trained model: sources -> residual-space evolution -> run directory.

:func:`run_optimize` takes a validated :class:`~flowevo.config.Config` and writes RUN_DIR:

- ``config.resolved.json``: the full configuration (defaults, file, overrides, flags; paths absolute);
- ``run.json``: what the report needs to know (objectives, senses, roles, constraints, data kind);
- ``checkpoint.pt``: the evolver's state after every generation (``flowevo resume RUN_DIR``; REO only);
- ``lineage.json``: per generation, survivors and new candidates by origin (seed / self / cross; REO only);
- ``history.json``, ``population.npz`` (final survivors: decoded, values, violation, origin,
  donor row, Pareto mask), ``sources.npz``, ``failures.json``, ``metrics.json``;
- the domain's own files (its registered ``write_outputs``, e.g. CIFs);
- ``report.html`` and its PNGs (unless ``optimize.report = false``).

``optimize.strategy`` picks the search: ``"reo"`` (the :class:`~flowevo.evolve.Evolver`, optionally with
surrogate pre-screening, ``optimize.prescreen``) or one of the library's per-source baselines
(:mod:`flowevo.baselines`: ``"cma"``, ``"nsga2"``, ``"bo"``, ``"random"``) on the same codec, task and
evaluator with REO's budget per source (``population x (generations + 1)`` evaluations, batches of
``population``; the domain's search space where it has one, ``DomainRun.space``). Every
strategy's :class:`~flowevo.evolve.EditResult` is written the same way.

Which domain loads MODEL_DIR, which built-ins exist and what the domain writes come from the
domain registry (:mod:`flowevo.domains.registry`); this module names no domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flowevo.config import Config, ConfigError, config_to_dict, validate_config, write_resolved
from flowevo.config.loading import RESOLVED_NAME, set_key
from flowevo.config.models import ConstraintSpec
from flowevo.evolve import (
    ORIGINS,
    Checkpointer,
    EditResult,
    EditTask,
    Evolver,
    LagrangianPenalty,
    MaxGenerations,
    PreScreen,
    Variation,
    rank_seeds,
    seed_pool,
)
from flowevo.flow import ResidualCodec
from flowevo.jsonio import read_json, write_json
from flowevo.workflows.builtins import build_constraint, build_objective, default_objectives, objective_role
from flowevo.workflows.devices import restore_run_state
from flowevo.workflows.domains import load_domain
from flowevo.workflows.evaluation import build_evaluator, evaluator_summary

__all__ = ["BASELINE_STRATEGIES", "RUN_KIND", "is_optimize_run", "prepare", "resume_optimize", "run_optimize"]

RUN_KIND = "flowevo.optimize/1"
BASELINE_STRATEGIES = ("cma", "nsga2", "bo", "random")  # optimize.strategy values run by flowevo.baselines


def _absolute(config: Config) -> Config:
    """Paths made absolute, so the resolved configuration (and resume) works from any directory."""
    data = config_to_dict(config)
    for key in ("model", "sources", "run_dir"):
        value = data["optimize"][key]
        if value is not None and not (key == "model" and _module_spec(value)):
            data["optimize"][key] = str(Path(value).resolve())
    cache = data["optimize"]["evaluation"]["cache"]
    if not isinstance(cache, bool):
        data["optimize"]["evaluation"]["cache"] = str(Path(cache).resolve())
    for key in ("data", "out"):
        if data["train"][key] is not None:
            data["train"][key] = str(Path(data["train"][key]).resolve())
    for spec in data["optimize"]["objectives"] + data["optimize"]["constraints"]:
        use = spec.get("use")
        if use and ":" in use and (use.rpartition(":")[0].endswith(".py") or "/" in use.rpartition(":")[0]):
            head, _, tail = use.rpartition(":")
            spec["use"] = f"{Path(head).resolve()}:{tail}"
    return validate_config(data)


def _module_spec(text: str) -> bool:
    """``package.module:attr`` (an importable name, not a path to resolve)."""
    head, sep, tail = text.rpartition(":")
    if not sep or "/" in head or "\\" in head or head.endswith(".py"):
        return False
    return head.replace(".", "").replace("_", "").isalnum()


class Prepared:
    """Everything a run needs, built from a configuration: ``domain`` (the registered
    :class:`~flowevo.domains.Domain` that loaded the model), ``run`` (its :class:`~flowevo.domains.DomainRun`),
    objectives, constraints, task, evaluator (started: :meth:`close` it) and evolver."""

    def __init__(self, config: Config) -> None:
        self.domain, self.run = load_domain(config)
        d = self.run
        config = _domain_defaults(config, d.optimize_defaults, d.default_constraints)
        o = config.optimize
        self.run_dir = Path(o.run_dir) if o.run_dir is not None else None
        if self.run_dir is None:
            raise ConfigError("optimize.run_dir: required (give --run-dir DIR or set it in the config file)")
        ctx = d.context()
        if not o.objectives:
            try:
                t = o.target
                specs = default_objectives(self.domain, ctx, t is not None and t.class_ is not None,
                                           t is not None and t.values is not None)
            except ValueError as exc:
                raise ConfigError(f"optimize.objectives: {exc}") from None
            config = config.model_copy(update={"optimize": o.model_copy(update={"objectives": specs})})
            o = config.optimize
        self.config = _absolute(config)
        names = [s.label for s in o.objectives + o.constraints]
        if len(set(names)) < len(names):
            raise ConfigError(f"optimize: objectives {[s.label for s in o.objectives]} and constraints "
                              f"{[s.label for s in o.constraints]} must have distinct names: rename one "
                              "(name = ... in the file, @name=... on the command line)")
        absolute = self.config.optimize  # import strings with absolute paths: they resolve in any worker process
        try:
            self.objectives = [build_objective(s, ctx) for s in absolute.objectives]
            self.constraints = [build_constraint(s, ctx) for s in absolute.constraints]
        except ValueError as exc:
            raise ConfigError(f"optimize: {exc}") from None
        self.roles = [objective_role(s) for s in o.objectives]
        self.task = EditTask(d.x, d.source, d.target)
        self.codec = d.codec
        self.evaluator = build_evaluator(absolute.evaluation, self.objectives, self.constraints, self.run_dir)
        self.strategy = o.strategy
        self.budget = o.population * (o.generations + 1)  # what REO spends per source, generation 0 included
        self.evolver: Evolver | None = None
        if o.strategy != "reo":
            return
        try:
            variation = d.variation if d.variation is not None else Variation(cross_rate=o.cross_rate)
            if o.prescreen > 1:
                if isinstance(variation, PreScreen):
                    raise ConfigError(f"optimize.prescreen: the {d.kind} domain's REO pre-screens already "
                                      f"(factor {variation.factor}); leave optimize.prescreen at 1")
                variation = PreScreen(variation, factor=o.prescreen, seed=config.seed)
            seeds = d.extra_seeds(self.constraints) if callable(d.extra_seeds) else d.extra_seeds
            if o.init == "ranked":
                seeds = _ranked_generation0(d, self.task, o.population, seeds)
            self.evolver = Evolver(self.codec, self.task, self.evaluator, population_size=o.population,
                                   variation=variation,
                                   termination=[MaxGenerations(o.generations)], seed=config.seed, payload=d.payload,
                                   penalty=LagrangianPenalty() if o.constraint_handling == "lagrangian" else None,
                                   extra_seeds=seeds, include_source=o.init == "own")
        except BaseException:
            self.close()
            raise

    def search(self) -> EditResult:
        """Run the configured per-source baseline (``optimize.strategy`` other than ``"reo"``) with REO's budget."""
        from flowevo import baselines

        o, d, seed = self.config.optimize, self.run, self.config.seed
        common = dict(payload=d.payload, seed=seed)
        space = {} if d.space is None else {"space": d.space}
        if o.strategy == "random":
            return baselines.random_search(self.codec, self.task, self.evaluator, self.budget, batch=o.population,
                                           **common)
        if o.strategy == "cma":
            return baselines.cma_search(self.codec, self.task, self.evaluator, self.budget, popsize=o.population,
                                        **common, **space)
        if o.strategy == "nsga2":
            return baselines.nsga2_search(self.codec, self.task, self.evaluator, self.budget, popsize=o.population,
                                          **common, **space)
        if o.strategy == "bo":
            return baselines.bo_search(self.codec, self.task, self.evaluator, self.budget, **common, **space)
        raise ValueError(f"unknown strategy {o.strategy!r}; use reo or one of {BASELINE_STRATEGIES}")

    def close(self) -> None:
        """Stop the evaluator's workers (pool processes, a private Dask cluster); idempotent."""
        self.evaluator.close()

    def run_info(self) -> dict[str, Any]:
        o, d = self.config.optimize, self.run
        return {
            "kind": RUN_KIND, "domain": d.kind, "data_kind": d.data_kind, "shape": list(d.shape),
            "class_names": d.class_names, "model": str(o.model), "sources": str(o.sources),
            "rows": len(self.task), "population": o.population, "generations": o.generations,
            "strategy": o.strategy, "prescreen": o.prescreen if o.strategy == "reo" else None,
            "init": o.init if o.strategy == "reo" else None,
            "evaluations_per_source": self.budget,
            "objectives": [{"name": ob.name, "sense": ob.sense, "role": r} for ob, r in zip(self.objectives, self.roles)],
            "constraints": [{"name": c.name, "bound": c.bound} for c in self.constraints],
            "target": o.target.model_dump(by_alias=True) if o.target else None,
            "device": o.device, "evaluation": o.evaluation.backend,
        }


def _ranked_generation0(d: Any, task: EditTask, population: int, domain_seeds: Any) -> Any:
    """``optimize.init = "ranked"``: the best ``population`` of each source's seed pool, ranked by the flow's reading of
    the target class (:func:`~flowevo.evolve.rank_seeds`); a clear error where the run cannot have them."""
    if domain_seeds is not None:
        raise ConfigError(f'optimize.init = "ranked": the {d.kind} domain seeds generation 0 itself; leave init at "own"')
    if not isinstance(d.codec, ResidualCodec):
        raise ConfigError('optimize.init = "ranked" needs a flowevo flow codec (ResidualCodec) to read candidates with')
    t = task.target_condition
    if t.labels is None or t.values is not None or d.num_classes < 2:
        raise ConfigError('optimize.init = "ranked" reads the flow\'s class of a candidate: it needs a class target '
                          "(optimize.target class = ...) and a flow conditioned on classes alone")
    pool = seed_pool(d.codec, task)
    return rank_seeds(d.codec, task, pool, min(population, pool.shape[1]), classes=d.num_classes)


def _domain_defaults(config: Config, settings: dict[str, Any], constraints: list[dict[str, Any]]) -> Config:
    """``config`` with the domain's suggested ``[optimize]`` values where the configuration sets none, and its
    default constraints (first) unless one of the same name is configured."""
    o = config.optimize
    update: dict[str, Any] = {k: v for k, v in settings.items() if k not in o.model_fields_set}
    try:
        specs = [ConstraintSpec.model_validate(c) for c in constraints]
    except ValueError as exc:
        raise ConfigError(f"optimize.constraints: the {config.optimize.model} domain's default: {exc}") from None
    given = {c.label for c in o.constraints}
    added = [c for c in specs if c.label not in given]
    if added:
        update["constraints"] = added + list(o.constraints)
    if not update:
        return config
    data = config_to_dict(config)
    data["optimize"].update({k: [c.model_dump(by_alias=True, exclude_unset=True) for c in v] if k == "constraints"
                             else v for k, v in update.items()})
    return validate_config(data)


def prepare(config: Config) -> Prepared:
    """Build model, task, evaluator and evolver from ``config`` (raises ConfigError / ValueError on bad input)."""
    return Prepared(config)


class LineageRecorder:
    """Evolver callback: per generation, survivors and new candidates by origin; written to ``lineage.json``."""

    def __init__(self, path: Path, records: list[dict] | None = None) -> None:
        self.path, self.records = path, list(records or [])

    def __call__(self, evolver: Evolver) -> None:
        pop, new, g = evolver.population, evolver.last, evolver.generation
        kept_new = pop.born == g
        rec = {"generation": g}
        for code, name in ORIGINS.items():
            rec[f"survivors_{name}"] = int((pop.origin.cpu() == code).sum())
            rec[f"new_{name}"] = int((new.origin.cpu() == code).sum())
            rec[f"new_feasible_{name}"] = int(((new.origin.cpu() == code) & new.feasible.cpu()).sum())
            rec[f"kept_{name}"] = int(((pop.origin.cpu() == code) & kept_new.cpu()).sum())
        self.records = [r for r in self.records if r["generation"] < g] + [rec]
        write_json(self.path, self.records, default=str)


def _finite(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def run_optimize(config: Config, show_progress: bool = True, log: Callable[[str], None] = lambda s: None,
                 callbacks: Sequence[Callable[[Evolver], None]] = (), resume: bool = False) -> dict:
    """Run (or with ``resume=True`` continue) the optimisation ``config`` describes; returns the metrics.

    ``callbacks`` run after the checkpoint of every generation. Same configuration and seed, same
    result, on every evaluation backend; a resumed run ends exactly as an uninterrupted one on the same
    device type, and continues with re-seeded random draws (statistically equivalent) on another one
    (see :func:`~flowevo.workflows.devices.restore_run_state`).

    Example:
        >>> cfg = load_config("blobs.toml", flags={"optimize.generations": 5})   # doctest: +SKIP
        >>> metrics = run_optimize(cfg)                                          # doctest: +SKIP
    """
    start = time.perf_counter()
    ev = config.optimize.evaluation
    if not resume and ev.cache is True and config.optimize.run_dir is not None:  # the run's own cache starts empty
        (Path(config.optimize.run_dir) / "cache" / "cache.jsonl").unlink(missing_ok=True)
    p = prepare(config)
    try:
        return _run(p, start, show_progress, log, callbacks, resume)
    finally:
        p.close()


def _run(p: Prepared, start: float, show_progress: bool, log: Callable[[str], None],
         callbacks: Sequence[Callable[[Evolver], None]], resume: bool) -> dict:
    run_dir = p.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if p.evolver is None:  # a per-source baseline: no generations to checkpoint or trace
        if callbacks:
            raise ValueError(f"callbacks need strategy \"reo\" (an Evolver); strategy is {p.strategy!r}")
        for stale in ("metrics.json", "report.html", "population.npz", "lineage.json", "checkpoint.pt"):
            (run_dir / stale).unlink(missing_ok=True)
        if resume:
            log(f"strategy {p.strategy!r} keeps no checkpoint: running {run_dir} again from the start (same seed, "
                "same result)")
        write_resolved(p.config, run_dir)
        write_json(run_dir / "run.json", p.run_info(), default=str)
        log(f"{len(p.task)} sources, {p.strategy}: {p.budget} evaluations per source; "
            f"objectives: {', '.join(f'{o.name} ({o.sense})' for o in p.objectives)}")
        result = p.search()
    else:
        result = _evolve(p, show_progress, log, callbacks, resume)
    metrics = _write_outputs(p, result, run_dir, time.perf_counter() - start)
    if p.config.optimize.report:
        from flowevo.report.run_report import write_run_report

        metrics["report"] = str(write_run_report(run_dir))
    return metrics


def _evolve(p: Prepared, show_progress: bool, log: Callable[[str], None],
            callbacks: Sequence[Callable[[Evolver], None]], resume: bool) -> EditResult:
    """REO: run (or continue) the Evolver with lineage records and a checkpoint after every generation."""
    run_dir, evolver = p.run_dir, p.evolver
    assert evolver is not None
    lineage_path, ckpt = run_dir / "lineage.json", run_dir / "checkpoint.pt"
    records: list[dict] = []
    if resume:
        note = restore_run_state(evolver, ckpt, p.config.seed)
        if note:
            log(note)
        if lineage_path.is_file():
            records = [r for r in read_json(lineage_path) if r["generation"] <= evolver.generation]
        log(f"resuming {run_dir} after generation {evolver.generation}")
    else:
        for stale in ("metrics.json", "report.html", "population.npz"):
            (run_dir / stale).unlink(missing_ok=True)
        write_resolved(p.config, run_dir)
        write_json(run_dir / "run.json", p.run_info(), default=str)
    log(f"{len(p.task)} sources x {p.config.optimize.population} residuals, {p.config.optimize.generations} generations; "
        f"objectives: {', '.join(f'{o.name} ({o.sense})' for o in p.objectives)}")
    cbs = [LineageRecorder(lineage_path, records), Checkpointer(ckpt), *callbacks]
    return evolver.run(callbacks=cbs, show_progress=show_progress)


def _write_outputs(p: Prepared, result: EditResult, run_dir: Path, wall_s: float) -> dict:
    pop = result.population
    pareto = result.pareto_mask().numpy()
    decoded = pop.decoded.detach().cpu().numpy()
    np.savez_compressed(
        run_dir / "population.npz", decoded=decoded, residuals=pop.residuals.detach().cpu().numpy(),
        row=pop.row.cpu().numpy(), origin=pop.origin.cpu().numpy(), donor_row=pop.donor_row.cpu().numpy(),
        values=pop.values.numpy(), violation=pop.violation.numpy(), born=pop.born.cpu().numpy(), pareto=pareto,
        objective_names=np.array(result.objective_names), senses=np.array(result.senses),
    )
    best = result.best
    d = p.run
    arrays = {"x": d.x.numpy(), "best": best.decoded.detach().cpu().numpy(), "best_values": best.values.numpy(),
              "best_violation": best.violation.numpy()}
    if d.labels is not None:
        arrays["c"] = d.labels.numpy()
    if d.values is not None:
        arrays["v"] = d.values.numpy()
    np.savez_compressed(run_dir / "sources.npz", **arrays)
    figures = None
    if p.domain.write_outputs is not None:
        figures = p.domain.write_outputs(d, run_dir, best.decoded.detach().cpu(), best.violation)
    write_json(run_dir / "history.json", [h.to_dict() for h in result.history], default=str)
    write_json(run_dir / "failures.json", [vars(f) for f in result.failures], default=str)
    feasible_rows = (best.violation == 0).double()
    first, last = result.history[0], result.history[-1]
    metrics = {
        "kind": RUN_KIND, "run_dir": str(run_dir), "rows": result.rows, "generations": last.generation,
        "strategy": p.strategy, "method": result.method,
        "evaluations": result.evaluations, "evaluations_per_source": float(result.evaluations_per_row.mean()),
        "stop_reason": result.stop_reason,
        "objectives": [{"name": n, "sense": s, "role": r} for n, s, r in zip(result.objective_names, result.senses, p.roles)],
        "constraints": [c.name for c in p.constraints],
        "initial_mean_best": [_finite(v) for v in first.best], "final_mean_best": [_finite(v) for v in last.best],
        "final_hypervolume": _finite(last.hypervolume), "rows_feasible": float(feasible_rows.mean()),
        "pareto_points_per_row": float(pareto.sum() / result.rows),
        "kept_by_origin": {name: int((pop.origin.cpu() == code).sum()) for code, name in ORIGINS.items()},
        "failures": len(result.failures), "best_values": best.values.tolist(), "wall_s": wall_s,
        "device": p.config.optimize.device, "evaluation": evaluator_summary(p.config.optimize.evaluation, p.evaluator),
    }
    if "variation" in result.info:  # e.g. pre-screening: children screened / sent and the time spent on it
        metrics["variation"] = result.info["variation"]
    clash = sorted(set(figures or {}) & set(metrics))
    if clash:
        raise ValueError(f"domain {p.domain.name!r}: write_outputs returned figures named as the run's own: {clash}")
    metrics.update(figures or {})
    write_json(run_dir / "metrics.json", metrics, default=str)
    return metrics


def is_optimize_run(run_dir: str | Path) -> bool:
    """True when ``run_dir`` was written by :func:`run_optimize`."""
    path = Path(run_dir) / "run.json"
    try:
        return read_json(path).get("kind") == RUN_KIND
    except (OSError, ValueError, AttributeError):
        return False


def resume_optimize(run_dir: str | Path, show_progress: bool = True, log: Callable[[str], None] = lambda s: None,
                    flags: Mapping[str, Any] | None = None) -> dict:
    """Continue a killed optimisation run from ``run_dir/checkpoint.pt`` with its resolved configuration.

    ``flags`` override keys of it that do not change what is computed, e.g.
    ``{"optimize.device": "cuda", "optimize.evaluation.address": "tcp://host:8786"}`` (None values are ignored).

    Raises:
        ConfigError: a flag outside ``optimize.device`` / ``optimize.evaluation.*`` / ``optimize.report``.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / RESOLVED_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RESOLVED_NAME}; not an optimize run directory")
    data = read_json(cfg_path)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if not (key in ("optimize.device", "optimize.report") or key.startswith("optimize.evaluation.")):
            raise ConfigError(f"resume: {key} cannot change in a resumed run (only optimize.device, "
                              "optimize.evaluation.* and optimize.report can)")
        set_key(data, key, value)
    config = validate_config(data, str(cfg_path))
    if config.optimize.run_dir is None or Path(config.optimize.run_dir).resolve() != run_dir.resolve():
        config = config.model_copy(update={"optimize": config.optimize.model_copy(update={"run_dir": run_dir.resolve()})})
    return run_optimize(config, show_progress=show_progress, log=log, resume=True)
