"""Constrained flow optimisation: fine-tune a flow against a black-box reward and constraints.

Rounds of reward-weighted flow matching whose weights meet each constraint (multipliers solved per
round, :mod:`flowevo.cfo.dual`) turn "maximise the reward of the flow's samples, stay close to the
pretrained flow, keep each constraint's violation rate below a bound" into ordinary fine-tuning
(:class:`ConstrainedFlowOptimiser`). Layer: imports flow,
objectives and evolve (for the shared :class:`~flowevo.evolve.constraints.Multipliers`).
"""

from flowevo.cfo.density import KLEstimate, kl_divergence, log_density, sample_with_log_density
from flowevo.cfo.diversity import GroupCap, diversity_offset, key_groups
from flowevo.cfo.dual import constrained_weights, weighted_rates
from flowevo.cfo.finetune import (
    FinetuneConfig,
    effective_group_count,
    effective_sample_size,
    finetune_round,
    softmax_weights,
    trust_region_weights,
)
from flowevo.cfo.optimiser import CFOConfig, CFOResult, ConstrainedFlowOptimiser, RoundRecord, local_mean
from flowevo.cfo.sampling import (
    batch_condition,
    condition_from_dict,
    condition_to_dict,
    null_condition,
    residual_shape,
    sample_flow,
)

__all__ = [
    "CFOConfig", "CFOResult", "ConstrainedFlowOptimiser", "FinetuneConfig", "GroupCap", "KLEstimate", "RoundRecord",
    "batch_condition", "condition_from_dict", "condition_to_dict", "constrained_weights", "diversity_offset",
    "effective_group_count", "effective_sample_size", "finetune_round", "key_groups", "kl_divergence", "local_mean",
    "log_density",
    "null_condition", "residual_shape", "sample_flow", "sample_with_log_density", "softmax_weights",
    "trust_region_weights", "weighted_rates",
]
