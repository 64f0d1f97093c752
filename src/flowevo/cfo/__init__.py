"""Constrained flow optimisation: fine-tune a flow against a black-box reward and constraints.

An augmented Lagrangian turns "maximise the reward of the flow's samples, stay close to the
pretrained flow, keep each constraint's violation rate below a bound" into rounds of ordinary
reward-weighted flow matching (:class:`ConstrainedFlowOptimiser`). Layer: imports flow,
objectives and evolve (for the shared :class:`~flowevo.evolve.constraints.Multipliers`).
"""

from flowevo.cfo.density import KLEstimate, kl_divergence, log_density, sample_with_log_density
from flowevo.cfo.finetune import (FinetuneConfig, effective_sample_size, finetune_round, softmax_weights,
                                  trust_region_weights)
from flowevo.cfo.optimiser import CFOConfig, CFOResult, ConstrainedFlowOptimiser, RoundRecord
from flowevo.cfo.sampling import (batch_condition, condition_from_dict, condition_to_dict, null_condition,
                                  residual_shape, sample_flow)

__all__ = [
    "CFOConfig", "CFOResult", "ConstrainedFlowOptimiser", "FinetuneConfig", "KLEstimate", "RoundRecord",
    "batch_condition", "condition_from_dict", "condition_to_dict", "effective_sample_size", "finetune_round",
    "kl_divergence", "log_density", "null_condition", "residual_shape", "sample_flow", "sample_with_log_density",
    "softmax_weights", "trust_region_weights",
]
