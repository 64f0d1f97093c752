"""The trained digit models as one bundle, loaded from checkpoints (shipped or retrained).

Example::

    models = load_digit_models()                  # the weights shipped with flowevo
    codec = models.codec()                        # the flow in the VAE's latent space
    r = codec.invert(images, Condition.from_labels(labels))   # images (N, 28, 28) in [0, 1]
    x = codec.decode(r, Condition.from_labels(targets))       # counterfactuals (N, 28, 28)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flowevo.domains.digits.nets import VAE, CNNClassifier, MLPClassifier
from flowevo.flow import FixedGrid, MLPVelocity, ResidualCodec, load_checkpoint
from flowevo.flow.solver import Discretisation

__all__ = ["DigitModels", "WEIGHTS_DIR", "load_digit_models"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FILES: dict[str, tuple[str, type[nn.Module]]] = {
    "classifier": ("classifier.pt", CNNClassifier),
    "independent": ("independent.pt", MLPClassifier),
    "vae": ("vae.pt", VAE),
    "flow": ("flow.pt", MLPVelocity),
}


@dataclass
class DigitModels:
    """The four digit models (eval mode) and their checkpoint metadata.

    Attributes:
        classifier: CNN black box, images ``(N, 28, 28)`` in [0, 1] -> logits ``(N, 10)``.
        independent: MLP classifier, same signature; for evaluation only (never optimised against).
        vae: latent autoencoder, ``encode: (N, 28, 28) -> (N, 16)``, ``decode`` back.
        flow: class-conditional latent velocity ``flow(z (N, 16), t (N,), c)``.
        meta: checkpoint metadata per model name.
    """

    classifier: CNNClassifier
    independent: MLPClassifier
    vae: VAE
    flow: MLPVelocity
    meta: dict[str, dict[str, Any]]

    def codec(self, discretisation: Discretisation = FixedGrid("rk4", 10), strength: float = 1.0) -> ResidualCodec:
        """A :class:`ResidualCodec` of the latent flow with the VAE as encoder (images in, images out)."""
        return ResidualCodec(self.flow, discretisation, encoder=self.vae, strength=strength)

    def to(self, device: str | torch.device) -> DigitModels:
        """Move every model to ``device`` (in place); returns self."""
        for name in FILES:
            getattr(self, name).to(device)
        return self


def load_digit_models(weights_dir: str | Path | None = None, device: str | torch.device = "cpu") -> DigitModels:
    """Load ``classifier.pt``, ``independent.pt``, ``vae.pt`` and ``flow.pt`` from ``weights_dir``.

    Args:
        weights_dir: a folder written by :func:`~flowevo.domains.digits.train.train_digit_models`;
            None for the weights shipped with flowevo.
        device: where to put the models.

    Raises:
        FileNotFoundError / ValueError: a file is missing, corrupt or holds the wrong model
            (the message suggests retraining with ``--retrain``).
    """
    folder = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    hint = "retrain the digit models (flowevo digits ... --retrain, or train_digit_models(out_dir))"
    loaded: dict[str, nn.Module] = {}
    meta: dict[str, dict[str, Any]] = {}
    for name, (filename, cls) in FILES.items():
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"digit model file missing: {path}; {hint}")
        try:
            with torch.random.fork_rng(devices=[]):  # building the module draws initial weights
                model, meta[name] = load_checkpoint(path, device=device)
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            reason = (str(exc).splitlines() or [""])[0][:300]  # torch's unpickling advice is not for users
            raise ValueError(f"cannot load digit model {name!r}: {reason}; {hint}") from exc
        if not isinstance(model, cls):
            raise ValueError(f"{path} holds a {type(model).__name__}, expected {cls.__name__}; {hint}")
        loaded[name] = model.float().eval().requires_grad_(False)
    return DigitModels(meta=meta, **loaded)  # type: ignore[arg-type]
