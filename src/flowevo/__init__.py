"""flowevo: residual-space evolutionary optimisation with conditional flow-matching models.

The public API, importable from the top level (each name is imported from its subpackage on
first use, so ``import flowevo`` itself loads neither torch nor any domain)::

    from flowevo import Condition, EditTask, Evolver, FixedGrid, FunctionObjective, LocalEvaluator, ResidualCodec

- flow: :class:`Condition`, :class:`ResidualCodec` (the :class:`Codec` protocol), :class:`FixedGrid` /
  :class:`Adaptive`, :class:`MLPVelocity`, :func:`train_flow` / :class:`TrainConfig`, :class:`VelocityAdapter`
  and :class:`CallableEncoder` (a velocity model trained elsewhere);
- objectives: :class:`Candidates`, :class:`FunctionObjective`, :class:`Constraint`, :class:`CommandObjective`,
  the evaluators (:class:`LocalEvaluator`, :class:`ProcessPoolEvaluator`, :class:`DaskEvaluator`,
  :class:`CachedEvaluator`), :class:`QueryCounter`;
- evolve: :class:`EditTask`, :class:`Evolver`, :class:`Variation` (the :class:`VariationStrategy` interface),
  terminations, :class:`LagrangianPenalty`, :class:`EditResult` (what every search method returns);
- baselines: :func:`random_search`, :func:`cma_search`, :func:`leap`, :func:`gradient_search`;
- cfo: :class:`ConstrainedFlowOptimiser`, :class:`CFOConfig`, :class:`FinetuneConfig`;
- configured runs: :func:`load_config`, :func:`run_train`, :func:`run_optimize`, :func:`resume_optimize`,
  :func:`run_cfo`, :func:`resume_cfo`.

Domains (``flowevo.domains.generic``, ``.digits``, ``.crystals``, ``.toy``) export their own entry
points; :mod:`flowevo.domains` holds the registry a new domain registers with.
"""

from flowevo.lazy import lazy_exports

__version__ = "0.1.0"

_PUBLIC: dict[str, tuple[str, ...]] = {
    "flowevo.flow": ("Adaptive", "CallableEncoder", "Codec", "Condition", "FixedGrid", "MLPVelocity", "ResidualCodec",
                     "TrainConfig", "VelocityAdapter", "load_checkpoint", "save_checkpoint", "train_flow"),
    "flowevo.objectives": ("CachedEvaluator", "Candidates", "CommandObjective", "Constraint", "DaskEvaluator",
                           "Evaluation", "Evaluator", "Failure", "FunctionObjective", "Goal", "LocalEvaluator",
                           "Objective", "ProcessPoolEvaluator", "QueryCounter", "sense_sign"),
    "flowevo.evolve": ("Checkpointer", "EditResult", "EditTask", "Evolver", "GenerationRecord", "LagrangianPenalty",
                       "MaxEvaluations", "MaxGenerations", "Population", "Stagnation", "Variation", "VariationStrategy",
                       "load_run_state"),
    "flowevo.baselines": ("cma_search", "gradient_search", "leap", "random_search"),
    "flowevo.cfo": ("CFOConfig", "ConstrainedFlowOptimiser", "FinetuneConfig"),
    "flowevo.config": ("Config", "ConfigError", "load_config"),
    "flowevo.workflows": ("resume_cfo", "resume_optimize", "run_cfo", "run_optimize", "run_train"),
}
_EXPORTS = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = [
    "Adaptive", "CFOConfig", "CachedEvaluator", "CallableEncoder", "Candidates", "Checkpointer", "Codec", "CommandObjective",
    "Condition", "Config", "ConfigError", "ConstrainedFlowOptimiser", "Constraint", "DaskEvaluator", "EditResult",
    "EditTask", "Evaluation", "Evaluator", "Evolver", "Failure", "FinetuneConfig", "FixedGrid", "FunctionObjective",
    "GenerationRecord", "Goal", "LagrangianPenalty", "LocalEvaluator", "MLPVelocity", "MaxEvaluations",
    "MaxGenerations", "Objective", "Population", "ProcessPoolEvaluator", "QueryCounter", "ResidualCodec",
    "Stagnation", "TrainConfig", "Variation", "VariationStrategy", "VelocityAdapter", "__version__", "cma_search",
    "gradient_search",
    "leap", "load_checkpoint", "load_config", "load_run_state", "random_search", "resume_cfo", "resume_optimize",
    "run_cfo", "run_optimize", "run_train", "save_checkpoint", "sense_sign", "train_flow",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
