"""Lazy package exports (PEP 562): public names resolved from their submodules on first use.

``import flowevo`` and ``import flowevo.domains.crystals`` stay fast (no torch, no pymatgen)
while ``flowevo.Evolver`` or ``from flowevo.domains.crystals import CrystalModel`` work as if
imported eagerly.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would cost more than the rest of `import flowevo`
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``name`` lives in module ``exports[name]``.

    The value is imported on first access and cached in the package's namespace.

    Example::

        __all__ = ["Evolver"]
        __getattr__, __dir__ = lazy_exports(__name__, {"Evolver": "flowevo.evolve"})
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
