"""The generic domain: a user's ``.npz`` of vectors or images with class ids and/or float conditions.

``load_npz`` reads and validates the data (keys ``x``, ``c``, ``v``, ``class_names``),
``train_generic`` fits encoder, flow and judge with defaults scaled to the data, and
``save_model`` / ``load_model`` write and read a MODEL_DIR. Built-in objectives over these
models live in :mod:`flowevo.domains.generic.objectives`; the domain registers them, its
MODEL_DIR loader and its ``.npz`` trainer in :mod:`flowevo.domains.generic.registration`.
Names are imported on first use.
"""

from flowevo.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("KEYS", "UserData", "load_npz"), "flowevo.domains.generic.data"),
    **dict.fromkeys(("Autoencoder", "PCAEncoder", "Standardizer", "fit_autoencoder", "fit_pca"),
                    "flowevo.domains.generic.encoder"),
    **dict.fromkeys(("ConditionPredictor", "fit_judge"), "flowevo.domains.generic.judge"),
    **dict.fromkeys(("FORMAT", "GenericModel", "ScaledConditions", "load_model", "save_model"),
                    "flowevo.domains.generic.model"),
    **dict.fromkeys(("GenericTrainConfig", "train_generic"), "flowevo.domains.generic.train"),
    **dict.fromkeys(("distance_to_source", "target_label_mismatch", "target_probability", "target_value_error"),
                    "flowevo.domains.generic.objectives"),
}

__all__ = [
    "FORMAT", "KEYS", "Autoencoder", "ConditionPredictor", "GenericModel", "GenericTrainConfig", "PCAEncoder",
    "ScaledConditions", "Standardizer", "UserData", "distance_to_source", "fit_autoencoder", "fit_judge", "fit_pca",
    "load_model", "load_npz", "save_model", "target_label_mismatch", "target_probability", "target_value_error",
    "train_generic",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
