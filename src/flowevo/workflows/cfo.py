"""A constrained fine-tuning run: ``[cfo]`` -> the domain's flow -> :class:`~flowevo.cfo.ConstrainedFlowOptimiser`
-> RUN_DIR.

:func:`run_cfo` takes a validated :class:`~flowevo.config.Config` and writes RUN_DIR:

- ``config.resolved.json`` (the full configuration, paths absolute) and ``run.json`` (``kind`` = :data:`RUN_KIND`);
- ``checkpoints/round_<k>.pt``: the flow after ``k`` fine-tuning rounds (``round_000.pt`` is the pretrained one),
  each with the optimiser's state (``flowevo resume RUN_DIR`` continues from the last) and the model it was
  fine-tuned from (``flowevo sample --model RUN_DIR/checkpoints/round_<k>.pt`` samples it); ``checkpoints/trace.json``;
- ``metrics.json``: per round the reward mean, satisfaction (overall and per constraint), multipliers, rho,
  targets, the weights' effective sample size, KL to the pretrained flow, failures; the pretrained and final rounds;
- ``rounds.png`` (:func:`flowevo.report.cfo_rounds.plot_rounds`).

The reward and constraints are ``[optimize]``-style specs (built-ins, import strings, commands) built by
:mod:`flowevo.workflows.builtins`; they run on the ``[cfo.evaluation]`` backend. An evaluation that fails makes
that sample a violation of every constraint and leaves it out of the reward (the library's rule); the run goes on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flowevo.config import Config, ConfigError, config_to_dict, validate_config, write_resolved
from flowevo.config.loading import RESOLVED_NAME, set_key
from flowevo.domains import builtins
from flowevo.jsonio import read_json, strict_json, write_json
from flowevo.workflows.builtins import build_constraint, build_objective
from flowevo.workflows.evaluation import build_evaluator, evaluator_summary

__all__ = ["RUN_KIND", "cfo_config", "is_cfo_run", "last_round_checkpoint", "resume_cfo", "run_cfo"]

RUN_KIND = "flowevo.cfo/1"
CHECKPOINTS = "checkpoints"
_ROUND = re.compile(r"^round_(\d+)\.pt$")


def _required(value: Any, key: str, flag: str) -> Any:
    if value is None:
        raise ConfigError(f"{key}: required (give {flag} or set it in the config file)")
    return value


def _absolute(config: Config) -> Config:
    """Paths made absolute (model, run_dir, cache, ``file.py:function`` specs), so resume works from anywhere."""
    from flowevo.workflows.optimize import _module_spec

    data = config_to_dict(config)
    c = data["cfo"]
    for key in ("model", "run_dir"):
        if c[key] is not None and not (key == "model" and _module_spec(c[key])):
            c[key] = str(Path(c[key]).resolve())
    if not isinstance(c["evaluation"]["cache"], bool):
        c["evaluation"]["cache"] = str(Path(c["evaluation"]["cache"]).resolve())
    for spec in [c["reward"], *c["constraints"]]:
        use = spec.get("use") if spec else None
        if use and ":" in use and (use.rpartition(":")[0].endswith(".py") or "/" in use.rpartition(":")[0]):
            head, _, tail = use.rpartition(":")
            spec["use"] = f"{Path(head).resolve()}:{tail}"
    return validate_config(data)


def cfo_config(config: Config) -> Any:
    """The :class:`~flowevo.cfo.CFOConfig` of ``config.cfo`` and the run seed."""
    from flowevo.cfo import CFOConfig, FinetuneConfig
    from flowevo.flow import FixedGrid

    c = config.cfo
    grid = FixedGrid("rk4", c.solver_steps)
    try:
        return CFOConfig(rounds=c.rounds, samples=c.samples, temperature=c.temperature, min_ess=c.min_ess,
                         max_violation=c.max_violation, fixed_multiplier=c.fixed_multiplier,
                         finetune=FinetuneConfig(steps=c.finetune_steps, batch_size=c.batch_size, lr=c.lr,
                                                 anchor=c.anchor),
                         discretisation=grid, kl_samples=min(c.kl_samples, c.samples), kl_grid=grid,
                         softness=c.softness, dual=c.dual, neighbours=c.neighbours, target_feedback=c.target_feedback,
                         anneal_from=c.anneal_from, anneal_rounds=c.anneal_rounds, replay=c.replay,
                         feasible_floor=c.feasible_floor, seed=config.seed)
    except ValueError as exc:
        raise ConfigError(f"cfo: {exc}") from None


class PreparedCFO:
    """Everything a run needs, built from a configuration: the domain and its flow, the condition, reward and
    constraints, the evaluator (started: :meth:`close` it) and the optimiser."""

    def __init__(self, config: Config) -> None:
        from flowevo.cfo import ConstrainedFlowOptimiser
        from flowevo.workflows.cfo_flow import load_flow, null_condition_of, tuned

        c = config.cfo
        model = _required(c.model, "cfo.model", "--model MODEL_DIR (or path/file.py:factory)")
        _required(c.run_dir, "cfo.run_dir", "--run-dir DIR")
        _required(c.reward, "cfo.reward", "--reward SPEC")
        self.domain, self.flow = load_flow(model, c.device)
        if c.condition is None:
            self.condition = null_condition_of(self.flow)
        else:
            try:
                self.condition = self.flow.condition(c.condition.class_, c.condition.values)
            except ValueError as exc:
                raise ConfigError(f"cfo.condition: {exc}") from None
        self.config = _absolute(config)
        a = self.config.cfo
        self.run_dir = Path(a.run_dir)
        names = [s.label for s in [a.reward, *a.constraints]]
        if len(set(names)) < len(names):
            raise ConfigError(f"cfo: the reward {names[0]!r} and constraints {names[1:]} must have distinct names: "
                              "rename one (name = ... in the file, @name=... on the command line)")
        table = builtins()
        for spec in [a.reward, *a.constraints]:
            if spec.use in table and table[spec.use].role == "preservation":
                raise ConfigError(f"cfo: built-in {spec.use!r} compares a sample with its source; fine-tuning samples "
                                  "the flow and has no sources")
        ctx = self.flow.context()
        try:
            self.reward = build_objective(a.reward, ctx)
            self.constraints = [build_constraint(s, ctx) for s in a.constraints]
        except ValueError as exc:
            raise ConfigError(f"cfo: {exc}") from None
        self.cfo_config = cfo_config(self.config)
        if a.project and self.flow.project is None:
            raise ConfigError(f"cfo.project: the {self.domain.name} domain defines no projection of its samples "
                              "(set project = false)")
        self.evaluator = build_evaluator(a.evaluation, [self.reward], self.constraints, self.run_dir)
        try:
            meta = {"cfo_run": {"model": str(a.model), "domain": self.domain.name, "run_dir": str(self.run_dir)}}
            self.optimiser = ConstrainedFlowOptimiser(tuned(self.flow), self.evaluator, self.condition,
                                                      self.cfo_config, encoder=self.flow.encoder,
                                                      payload=self.flow.payload, out_dir=self.run_dir / CHECKPOINTS,
                                                      meta=meta, project=self.flow.project if a.project else None,
                                                      diversity_key=self.flow.diversity_key)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the evaluator's workers; idempotent."""
        self.evaluator.close()

    def run_info(self) -> dict[str, Any]:
        a = self.config.cfo
        return {"kind": RUN_KIND, "domain": self.domain.name, "data_kind": self.flow.data_kind,
                "shape": list(self.flow.shape), "flow_shape": list(self.flow.flow_shape), "model": str(a.model),
                "reward": {"name": self.reward.name, "sense": self.reward.sense},
                "constraints": [{"name": c.name, "bound": c.bound} for c in self.constraints],
                "condition": a.condition.model_dump(by_alias=True) if a.condition else None,
                "rounds": a.rounds, "samples": a.samples, "device": a.device, "evaluation": a.evaluation.backend}


def last_round_checkpoint(run_dir: str | Path) -> Path | None:
    """The highest ``RUN_DIR/checkpoints/round_<k>.pt``, or None."""
    folder = Path(run_dir) / CHECKPOINTS
    found = sorted((int(m.group(1)), p) for p in folder.glob("round_*.pt") if (m := _ROUND.match(p.name)))
    return found[-1][1] if found else None


def run_cfo(config: Config, show_progress: bool = True, log: Callable[[str], None] = lambda s: None,
            resume: bool = False) -> dict[str, Any]:
    """Run (or with ``resume=True`` continue from its last round checkpoint) the fine-tuning ``config.cfo``
    describes; returns the metrics (also in ``RUN_DIR/metrics.json``). Same configuration and seed, same result;
    a resumed run ends exactly as an uninterrupted one on the same device type.

    Example:
        >>> cfg = load_config("cfo.toml", flags={"cfo.rounds": 4})   # doctest: +SKIP
        >>> metrics = run_cfo(cfg)                                    # doctest: +SKIP
        >>> metrics["final"]["satisfaction"]                          # doctest: +SKIP

    Raises:
        ConfigError: a missing or unresolvable key (model, run_dir, reward, a spec, the condition).
        ValueError: a model no domain reads, a device not available here, every evaluation failing.
    """
    start = time.perf_counter()
    c = config.cfo
    if not resume and c.evaluation.cache is True and c.run_dir is not None:
        (Path(c.run_dir) / "cache" / "cache.jsonl").unlink(missing_ok=True)
    p = PreparedCFO(config)
    try:
        return _run(p, start, show_progress, log, resume)
    finally:
        p.close()


def _run(p: PreparedCFO, start: float, show_progress: bool, log: Callable[[str], None], resume: bool) -> dict:
    run_dir, opt = p.run_dir, p.optimiser
    run_dir.mkdir(parents=True, exist_ok=True)
    first = 0
    last = last_round_checkpoint(run_dir) if resume else None
    if last is not None:
        first = opt.resume(last)
        log(f"resuming {run_dir} at round {first} (from {last.name})")
    else:
        for stale in [*(run_dir / CHECKPOINTS).glob("round_*.pt"), run_dir / "metrics.json", run_dir / "rounds.png"]:
            stale.unlink(missing_ok=True)
        write_resolved(p.config, run_dir)
        write_json(run_dir / "run.json", p.run_info(), default=str)
    cons = ", ".join(f"{c.name} <= {c.bound:g}" for c in p.constraints) or "none"
    log(f"{p.domain.name} flow: {p.cfo_config.rounds} rounds x {p.cfo_config.samples} samples; reward "
        f"{p.reward.name} ({p.reward.sense}); constraints {cons}, each violated by at most "
        f"{p.cfo_config.max_violation:.0%} of the samples")
    result = opt.run(show_progress=show_progress, start=first)
    return _write_outputs(p, result, time.perf_counter() - start)


def _write_outputs(p: PreparedCFO, result: Any, wall_s: float) -> dict[str, Any]:
    from flowevo.report.cfo_rounds import plot_rounds

    run_dir = p.run_dir
    rel = lambda c: c if c is None or not Path(c).is_relative_to(run_dir) else str(Path(c).relative_to(run_dir))  # noqa: E731
    records = [{**r.to_dict(), "checkpoint": rel(r.checkpoint)} for r in result.records]
    pre, fin = records[0], records[-1]
    keys = ("reward_mean", "reward_std", "satisfaction", "constraint_satisfaction", "multipliers", "kl", "kl_stderr",
            "failed")
    metrics: dict[str, Any] = {
        "kind": RUN_KIND, "run_dir": str(run_dir), "domain": p.domain.name, "model": str(p.config.cfo.model),
        "reward": {"name": p.reward.name, "sense": p.reward.sense},
        "constraints": {c.name: c.bound for c in p.constraints}, "max_violation": p.cfo_config.max_violation,
        "seed": p.config.seed, "pretrained": {k: pre[k] for k in keys}, "final": {k: fin[k] for k in keys},
        "rounds": records, "evaluations": fin["evaluations"], "failed_samples": sum(r["failed"] for r in records),
        "checkpoints": [rel(c) for c in result.checkpoints],
        "wall_s": wall_s, "device": p.config.cfo.device,
        "evaluation": evaluator_summary(p.config.cfo.evaluation, p.evaluator),
    }
    target = 1 - len(p.constraints) * p.cfo_config.max_violation
    trace = {"pretrained": {"reward_mean": pre["reward_mean"], "trace": [pre]}, "cfo": {"trace": records}}
    metrics["plot"] = plot_rounds(trace, f"{p.reward.name} ({p.reward.sense})", run_dir / "rounds.png", None,
                                  target).name
    metrics = strict_json(metrics)
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def is_cfo_run(run_dir: str | Path) -> bool:
    """True when ``run_dir`` was written by :func:`run_cfo`."""
    try:
        return read_json(Path(run_dir) / "run.json").get("kind") == RUN_KIND
    except (OSError, ValueError, AttributeError):
        return False


def resume_cfo(run_dir: str | Path, show_progress: bool = True, log: Callable[[str], None] = lambda s: None,
               flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Continue a killed :func:`run_cfo` run from its last round checkpoint with its resolved configuration.

    ``flags`` override keys that do not change what is computed: ``cfo.evaluation.*`` (None values are ignored).

    Raises:
        ConfigError: a flag outside ``cfo.evaluation.*``.
        FileNotFoundError: ``run_dir`` holds no ``config.resolved.json``.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / RESOLVED_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RESOLVED_NAME}; not a cfo run directory")
    data = read_json(cfg_path)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if not key.startswith("cfo.evaluation."):
            raise ConfigError(f"resume: {key} cannot change in a resumed cfo run (only cfo.evaluation.* can: the "
                              "result must equal the uninterrupted run's)")
        set_key(data, key, value)
    config = validate_config(data, str(cfg_path))
    if config.cfo.run_dir is None or Path(config.cfo.run_dir).resolve() != run_dir.resolve():
        config = config.model_copy(update={"cfo": config.cfo.model_copy(update={"run_dir": run_dir.resolve()})})
    return run_cfo(config, show_progress=show_progress, log=log, resume=True)

