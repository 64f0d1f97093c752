"""The external domain: your own trained flow, plugged in by a factory (``flowevo optimize --model file.py:factory``).

A factory is a function without arguments that returns an :class:`ExternalModel`: the velocity model in
flowevo's convention (wrap yours in :class:`~flowevo.flow.VelocityAdapter`), the shape of one sample,
the condition layout (class count, float-condition width), and optionally an encoder. Sources come
from an ``.npz`` (``x``, and the sources' own ``c`` and/or ``v``), as for a model trained by flowevo.
Names are imported on first use.
"""

from flowevo.lazy import lazy_exports

_EXPORTS = {"ExternalModel": "flowevo.domains.external.model", "load_external": "flowevo.domains.external.model",
            "recognises_factory": "flowevo.domains.external.registration"}

__all__ = ["ExternalModel", "load_external", "recognises_factory"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
