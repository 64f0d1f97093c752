"""The configuration as typed pydantic models: unknown keys and bad values are errors.

One file configures training and optimisation::

    seed = 0

    [train]
    data = "data/blobs.npz"
    out = "models/blobs"
    steps = 1500                     # leave out for a default scaled to the data

    [optimize]
    model = "models/blobs"
    sources = "data/blobs_sources.npz"
    run_dir = "runs/blobs"
    target = { class = 2 }           # or { values = [0.5] }, or both
    generations = 15
    strategy = "reo"                 # or "cma", "nsga2", "bo", "random" (same budget per source)

    [[optimize.objectives]]
    use = "target_probability"       # a built-in ...

    [[optimize.objectives]]
    use = "my_scores:brightness"     # ... or package.module:function / path/to/file.py:function
    sense = "max"

    [[optimize.constraints]]
    use = "distance_to_source"
    upper = 4.0                      # g <= 4 (lower = ... for g >= ...)

    [optimize.evaluation]            # where objectives run (default: in this process)
    backend = "dask"                 # "local", "processes" or "dask"
    address = "tcp://10.0.0.5:8786"  # dask: join this scheduler (leave out: a local cluster on 127.0.0.1)
    timeout_s = 600                  # per candidate; past it the worker is killed and the candidate fails
    cache = true                     # score each distinct candidate once (RUN_DIR/cache/cache.jsonl)

Every field below is a key; :func:`flowevo.config.load_config` reads the file, applies
overrides and validates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from flowevo.devices import check_device_name

__all__ = ["CFOSection", "CallableSpec", "Config", "ConstraintSpec", "EvaluationSection", "ObjectiveSpec",
           "OptimizeSection", "TargetSpec", "TrainSection"]

Device = Annotated[str, AfterValidator(check_device_name)]
"""A ``device`` key: cpu, cuda, cuda:N or mps (availability is checked when the run starts)."""


class Strict(BaseModel):
    """Base: unknown keys are errors, floats must be finite; values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True, allow_inf_nan=False)


class TrainSection(Strict):
    """``[train]``: what ``flowevo train`` does (``None`` = scaled to the data)."""

    data: Path | None = Field(None, description="the training file: an .npz (keys x, c and/or v), or a table a domain "
                                                "reads (e.g. a CDVAE-format .csv)")
    out: Path | None = Field(None, description="MODEL_DIR to write")
    encoder: Literal["auto", "none", "pca", "autoencoder"] = "auto"
    latent: int | None = Field(None, gt=0, description="encoder width")
    steps: int | None = Field(None, gt=0, description="flow-matching steps")
    batch_size: int | None = Field(None, gt=0)
    lr: float = Field(2e-3, gt=0)
    hidden: int | None = Field(None, gt=0)
    depth: int = Field(3, gt=0)
    condition_dropout: float = Field(0.1, ge=0, lt=1)
    encoder_steps: int | None = Field(None, gt=0)
    judge: bool = True
    judge_steps: int | None = Field(None, gt=0)
    holdout: float = Field(0.1, ge=0, le=0.5, description="share of samples kept out of judge training to measure it")
    property: str | None = Field(None, description="table data: the column the flow is conditioned on "
                                                   "(default: the domain's)")
    max_rows: int | None = Field(None, gt=0, description="table data: read at most this many rows")
    device: Device = Field("cpu", description="where the flow trains: cpu, cuda or cuda:N")


class TargetSpec(Strict):
    """``target``: the condition to edit toward: a class id, float values (data units), or both.

    Example:
        >>> TargetSpec.model_validate({"class": 3, "values": [2.5]}).class_
        3
    """

    class_: int | None = Field(None, alias="class", ge=0)
    values: list[float] | None = None

    @model_validator(mode="after")
    def _one(self) -> TargetSpec:
        if self.class_ is None and self.values is None:
            raise ValueError("give 'class' (an integer class id) and/or 'values' (a list of floats)")
        if self.values is not None and not self.values:
            raise ValueError("'values' must not be empty")
        return self


class CallableSpec(Strict):
    """What scores a candidate: ``use`` (a built-in name or an import string) or ``command``."""

    use: str | None = Field(None, description="built-in name, package.module:function or path/file.py:function")
    command: list[str] | None = Field(None, description="external program and arguments; '{input}' is the candidate file")
    name: str | None = None
    per_item: bool = Field(False, description="call a Python function once per candidate: fn(x) or fn(x, source)")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for a built-in or factory")
    cheap: bool = Field(False, description="computable without the black box (e.g. a distance to the source): "
                                           "REO's pre-screening (optimize.prescreen) calls it exactly on screened "
                                           "children; every evaluated candidate still counts as an evaluation")
    timeout_s: float = Field(60.0, gt=0, description="command only: limit per candidate")
    payload_format: Literal["npz", "json", "cif"] = Field(
        "npz", description="command only: how a candidate is written (cif: the decoded structure, for models "
                           "whose candidates carry structures)")
    max_parallel: int = Field(1, gt=0, description="command only: candidates run at once")

    @model_validator(mode="after")
    def _exactly_one(self) -> CallableSpec:
        if (self.use is None) == (self.command is None):
            raise ValueError("give exactly one of 'use' (built-in or import string) and 'command' (a program)")
        if self.command is not None and not any("{input}" in a for a in self.command):
            raise ValueError("'command' must contain '{input}' where the candidate file path goes")
        if self.command is not None and self.name is None:
            raise ValueError("a 'command' needs a 'name'")
        if self.command is not None and self.cheap:
            raise ValueError("a 'command' is a black box: it cannot be 'cheap'")
        return self

    @property
    def label(self) -> str:
        """The name shown in results."""
        if self.name:
            return self.name
        assert self.use is not None
        return self.use.rpartition(":")[2] if ":" in self.use else self.use


class ObjectiveSpec(CallableSpec):
    """``[[optimize.objectives]]``: a callable plus its sense (built-ins have a default sense) and role.

    Example:
        >>> ObjectiveSpec(use="examples/blob_objectives.py:brightness", sense="max").label
        'brightness'
    """

    sense: Literal["min", "max"] | None = None
    role: Literal["alignment", "preservation", "other"] | None = Field(
        None, description="for reports: the Pareto plot shows alignment vs preservation "
                          "(default: from the built-in, else alignment)")


class ConstraintSpec(CallableSpec):
    """``[[optimize.constraints]]``: a callable ``g`` with bounds: ``g <= upper`` and/or ``g >= lower``.

    Example:
        >>> ConstraintSpec(use="distance_to_source", upper=4.0).upper
        4.0
    """

    upper: float | None = None
    lower: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ConstraintSpec:
        if self.upper is None and self.lower is None:
            raise ValueError("a constraint needs 'upper' (g <= upper) and/or 'lower' (g >= lower)")
        if self.upper is not None and self.lower is not None and self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) is above upper ({self.upper})")
        return self


class EvaluationSection(Strict):
    """``[optimize.evaluation]``: where objectives and constraints run.

    ``local`` scores in this process; ``processes`` on ``workers`` local processes; ``dask`` on a Dask
    cluster: a private one on 127.0.0.1 with ``workers`` processes, or the scheduler at ``address``
    (e.g. one started by dask-jobqueue). Same seed, same results on every backend.

    Example:
        >>> EvaluationSection(backend="dask", workers=4, timeout_s=600).address is None
        True
    """

    backend: Literal["local", "processes", "dask"] = "local"
    workers: int = Field(2, gt=0, description="processes: pool size; dask: workers of the local cluster "
                                               "(ignored with address)")
    threads_per_worker: int = Field(1, gt=0, description="torch threads per process / Dask threads per local worker")
    address: str | None = Field(None, description="dask only: scheduler to join, e.g. tcp://host:8786")
    timeout_s: float | None = Field(None, gt=0, description="processes / dask: limit per candidate; past it the "
                                                            "worker is killed and the candidate fails")
    retries: int = Field(1, ge=0, description="processes / dask: extra tries of a candidate whose worker died or "
                                              "timed out")
    cache: bool | Path = Field(False, description="score each distinct candidate once: true = RUN_DIR/cache, or a "
                                                  "folder shared between runs (cache.jsonl)")

    @model_validator(mode="after")
    def _fits_backend(self) -> EvaluationSection:
        if self.address is not None and self.backend != "dask":
            raise ValueError(f"'address' needs backend = \"dask\" (backend is {self.backend!r})")
        if self.timeout_s is not None and self.backend == "local":
            raise ValueError("'timeout_s' needs backend \"processes\" or \"dask\" (a call in this process cannot "
                             "be stopped)")
        return self


class OptimizeSection(Strict):
    """``[optimize]``: what ``flowevo optimize`` does."""

    model: Path | None = Field(None, description="MODEL_DIR written by flowevo train, or path/to/file.py:factory "
                                                 "for your own flow (see flowevo.domains.external)")
    sources: Path | None = Field(None, description=".npz of samples to edit (keys x and their own c and/or v)")
    rows: int | None = Field(None, gt=0, description="edit the first ROWS sources (default: all)")
    run_dir: Path | None = None
    target: TargetSpec | None = None
    objectives: list[ObjectiveSpec] = Field(default_factory=list, description="empty: the judge's alignment + distance_to_source")
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    strategy: Literal["reo", "cma", "nsga2", "bo", "random"] = Field(
        "reo", description="search method: REO (residual-space evolution), or a per-source baseline in the same "
                           "residual space with REO's budget (population x (generations + 1) evaluations per source): "
                           "CMA-ES (pycma), NSGA-II (pymoo), TuRBO-style Bayesian optimisation (botorch) or random search")
    prescreen: int = Field(1, ge=0, description="REO only: children decoded and ranked by a per-source surrogate per "
                                                "child evaluated (flowevo.evolve.PreScreen); 0 or 1: off")
    init: Literal["own", "ranked"] = Field(
        "own", description="REO only: generation 0. own: each source's own residual, then its variants; ranked: the "
                           "best population of a pool found without a black-box call (own residual, target-anchor "
                           "ladder, lift/land edits), those the flow reads as the target class first, nearest the "
                           "source first (flowevo.evolve.rank_seeds; class targets only)")
    generations: int = Field(15, gt=0)
    population: int = Field(16, gt=0, description="residuals kept per source (baselines: batch per step)")
    cross_rate: float = Field(0.3, ge=0, le=1, description="share of offspring made by cross-pollination")
    solver: Literal["euler", "midpoint", "rk4"] = "rk4"
    solver_steps: int = Field(10, gt=0)
    strength: float = Field(1.0, gt=0, le=1, description="edit strength: invert to t = 1 - strength")
    guidance: float = Field(1.0, ge=0, description="classifier-free guidance scale when decoding")
    constraint_handling: Literal["feasibility_first", "lagrangian"] = Field(
        "feasibility_first", description="survival under constraints: feasible first, or adaptive Lagrange multipliers")
    report: bool = Field(True, description="write report.html at the end")
    device: Device = Field("cpu", description="where the flow, sources and conditions live: "
                                                                   "cpu, cuda or cuda:N")
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)

    @model_validator(mode="after")
    def _prescreen_is_reo(self) -> OptimizeSection:
        if self.prescreen > 1 and self.strategy != "reo":
            raise ValueError(f"'prescreen' applies to strategy \"reo\" only (strategy is {self.strategy!r}); "
                             "leave it out or set it to 1")
        if self.init != "own" and self.strategy != "reo":
            raise ValueError(f"'init' applies to strategy \"reo\" only (strategy is {self.strategy!r}); leave it out")
        return self


class CFOSection(Strict):
    """``[cfo]``: what ``flowevo cfo`` does: constrained fine-tuning of a flow (:class:`flowevo.cfo.CFOConfig`).

    Maximise the mean ``reward`` of the flow's samples, stay close to the pretrained flow, and keep each
    constraint's violation rate (a failed evaluation counts as a violation) at most ``max_violation``. The
    defaults are the constrained benchmark's synthetic-task settings (chosen on its development seeds). The run
    seed is the file's top-level ``seed``.

    Example:
        >>> s = CFOSection.model_validate({"reward": {"use": "scores.py:reward", "sense": "max"},
        ...                                "constraints": [{"use": "scores.py:g", "upper": 1.0}]})
        >>> s.rounds, s.constraints[0].upper
        (8, 1.0)
    """

    model: Path | None = Field(None, description="MODEL_DIR (flowevo train) or path/file.py:factory (your own flow)")
    run_dir: Path | None = None
    condition: TargetSpec | None = Field(None, description="the condition to sample under: a class and / or values "
                                                           "(domain units); leave out for the null condition")
    reward: ObjectiveSpec | None = Field(None, description="the one objective maximised (or minimised, by its sense)")
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    rounds: int = Field(8, ge=0, description="fine-tuning rounds (rounds + 1 sample-and-score rounds)")
    samples: int = Field(512, ge=2, description="flow samples scored per round")
    max_violation: float = Field(0.02, ge=0, lt=1, description="allowed violation rate per constraint")
    finetune_steps: int = Field(200, gt=0, description="optimiser steps of each round's fine-tuning")
    batch_size: int = Field(256, gt=0, description="fine-tuning batch (drawn by weight, with replacement)")
    lr: float = Field(1e-3, gt=0, description="fine-tuning learning rate (AdamW)")
    anchor: float = Field(0.1, ge=0, description="weight of the velocity regression toward the pretrained flow")
    temperature: float = Field(1.0, gt=0, description="softmax temperature on the reward (in pretrained stds)")
    min_ess: float = Field(0.25, ge=0, le=1, description="lowest effective sample size of the weights, as a share")
    dual: Literal["exact", "ascent"] = Field("exact", description="multipliers solved per round, or dual ascent")
    neighbours: int = Field(4, ge=0, description="violations averaged over this many nearest samples in flow space")
    target_feedback: float = Field(1.0, ge=0, description="exact dual: target x (max_violation / rate) ** this")
    anneal_from: float | None = Field(None, gt=0, lt=1, description="exact dual: the allowed violation rate at "
                                                                    "round 0, tightened to max_violation by "
                                                                    "anneal_rounds (None: max_violation throughout)")
    anneal_rounds: int = Field(4, ge=1, description="the round from which the allowed rate is max_violation")
    softness: float = Field(0.1, ge=0, description="smoothed violation indicator width, in pretrained stds of g")
    project: bool = Field(False, description="fine-tune on the data each sample decodes to, where the domain defines "
                                             "a projection (e.g. exact element codes): more reward and "
                                             "satisfaction, fewer distinct samples (docs/benchmarks.md)")
    replay: int = Field(0, ge=0, description="an archive of this many best feasible samples so far (one per "
                                             "diversity key of the domain, e.g. a composition) joins every round's "
                                             "fine-tuning, never re-scored (0: off)")
    feasible_floor: float = Field(0.0, ge=0, lt=1, description="share of each round's weights spread evenly over "
                                                               "its feasible samples (per diversity key of the "
                                                               "domain; 0: off)")
    fixed_multiplier: float | None = Field(None, ge=0, description="a constant multiplier instead of CFO's "
                                                                   "(0: unconstrained fine-tuning)")
    kl_samples: int = Field(256, ge=0, description="samples of the per-round KL estimate (0: skip); at most samples")
    solver_steps: int = Field(10, gt=0, description="rk4 steps of sampling and of the KL estimate")
    device: Device = Field("cpu", description="where the flow lives and fine-tunes: cpu, cuda or cuda:N")
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)

    @model_validator(mode="after")
    def _kl(self) -> CFOSection:
        if self.kl_samples == 1:
            raise ValueError("kl_samples must be 0 or >= 2")
        return self


class Config(Strict):
    """The whole file: ``seed``, ``[train]``, ``[optimize]`` and ``[cfo]``.

    Example:
        >>> cfg = Config.model_validate({"optimize": {"target": {"class": 2}, "objectives": [{"use": "distance_to_source"}]}})
        >>> cfg.optimize.target.class_, cfg.optimize.generations
        (2, 15)
    """

    seed: int = 0
    train: TrainSection = Field(default_factory=TrainSection)
    optimize: OptimizeSection = Field(default_factory=OptimizeSection)
    cfo: CFOSection = Field(default_factory=CFOSection)
