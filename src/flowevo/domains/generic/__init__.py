"""The generic domain: a user's ``.npz`` of vectors or images with class ids and/or float conditions.

``load_npz`` reads and validates the data (keys ``x``, ``c``, ``v``, ``class_names``),
``train_generic`` fits encoder, flow and judge with defaults scaled to the data, and
``save_model`` / ``load_model`` write and read a MODEL_DIR. Built-in objectives over these
models live in :mod:`flowevo.domains.generic.objectives`.
"""

from flowevo.domains.generic.data import KEYS, UserData, load_npz
from flowevo.domains.generic.encoder import Autoencoder, PCAEncoder, Standardizer, fit_autoencoder, fit_pca
from flowevo.domains.generic.judge import ConditionPredictor, fit_judge
from flowevo.domains.generic.model import FORMAT, GenericModel, ScaledConditions, load_model, save_model
from flowevo.domains.generic.train import GenericTrainConfig, train_generic

__all__ = [
    "Autoencoder", "ConditionPredictor", "FORMAT", "GenericModel", "GenericTrainConfig", "KEYS", "PCAEncoder",
    "ScaledConditions", "Standardizer", "UserData", "fit_autoencoder", "fit_judge", "fit_pca", "load_model",
    "load_npz", "save_model", "train_generic",
]
