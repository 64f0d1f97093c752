"""Flow core: conditions, velocity models (and an adapter for outside ones), probability paths, training, ODE solving,
residual codec."""

from flowevo.flow.adapter import CallableEncoder, VelocityAdapter
from flowevo.flow.checkpoint import load_checkpoint, save_checkpoint
from flowevo.flow.codec import Codec, Encoder, ResidualCodec, module_device, weights_identity
from flowevo.flow.condition import Condition, ConditionEmbedding
from flowevo.flow.path import CondOTPath, PathSample
from flowevo.flow.solver import Adaptive, FixedGrid, ODESolver
from flowevo.flow.train import TrainConfig, TrainResult, flow_matching_loss, train_flow
from flowevo.flow.velocity import GuidedVelocity, MLPVelocity, VelocityModel, register_model

__all__ = [
    "Adaptive", "CallableEncoder", "Codec", "CondOTPath", "Condition", "ConditionEmbedding", "Encoder", "FixedGrid",
    "GuidedVelocity",
    "MLPVelocity", "ODESolver", "PathSample", "ResidualCodec", "TrainConfig", "TrainResult", "VelocityAdapter", "VelocityModel",
    "flow_matching_loss", "load_checkpoint", "module_device", "register_model", "save_checkpoint", "train_flow",
    "weights_identity",
]
