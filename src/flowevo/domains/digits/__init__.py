"""The digits domain: MNIST-style 28x28 digits, the shipped CNN / VAE / latent flow, Morpho-MNIST shape measures.

Entry points: :func:`load_digit_models` (the shipped weights) and :func:`train_digit_models`
(rebuild them), :class:`ClassifierOracle` (the black-box CNN) and the objectives built on it
(:func:`shape_distance`, :func:`counterfactual_objectives`, :func:`target_confidence_constraint`,
:func:`keep_class_constraint`, :func:`thickness_objective`), the data loaders and
:func:`measure_batch` (morphometrics), and :class:`ShiftCheck` (the kept edit's shift check). The ``digits.*``
built-ins are registered in :mod:`flowevo.domains.digits.registration`. Names are imported on first use.
"""

from flowevo.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("DigitModels", "WEIGHTS_DIR", "load_digit_models"), "flowevo.domains.digits.models"),
    **dict.fromkeys(("DigitTrainConfig", "train_digit_models"), "flowevo.domains.digits.train"),
    **dict.fromkeys(("ClassifierOracle", "counterfactual_objectives", "keep_class_constraint", "pixel_distance",
                     "shape_distance", "target_confidence_constraint", "thickness_objective"),
                    "flowevo.domains.digits.objectives"),
    **dict.fromkeys(("DigitSplit", "MorphoMNIST", "images_to_tensor", "load_builtin_digits", "load_digits_npz",
                     "load_morpho_mnist"), "flowevo.domains.digits.data"),
    **dict.fromkeys(("METRICS", "measure", "measure_batch"), "flowevo.domains.digits.morphometrics"),
    **dict.fromkeys(("diversity", "morph_rel_change"), "flowevo.domains.digits.metrics"),
    **dict.fromkeys(("ShiftCheck", "shift_images"), "flowevo.domains.digits.robustness"),
    **dict.fromkeys(("CNNClassifier", "MLPClassifier", "VAE"), "flowevo.domains.digits.nets"),
}

__all__ = [
    "METRICS", "VAE", "WEIGHTS_DIR", "CNNClassifier", "ClassifierOracle", "DigitModels", "DigitSplit",
    "DigitTrainConfig", "MLPClassifier", "MorphoMNIST", "ShiftCheck", "counterfactual_objectives", "diversity",
    "images_to_tensor", "keep_class_constraint", "load_builtin_digits", "load_digit_models", "load_digits_npz",
    "load_morpho_mnist", "measure", "measure_batch", "morph_rel_change", "pixel_distance", "shape_distance",
    "shift_images", "target_confidence_constraint", "thickness_objective", "train_digit_models",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
