"""The domain registry: which domains exist, their merged built-ins, and which one reads a model or data file.

Domains are found three ways, in this order, the first time anything is looked up:

1. **flowevo's own**: every package ``flowevo.domains.<name>`` with a ``registration`` module
   whose ``DOMAIN`` is a :class:`~flowevo.domains.plugin.Domain` (a new domain in this repository is
   a new folder; nothing else changes);
2. **installed plugins**: entry points in the group ``flowevo.domains`` (``ENTRY_POINT_GROUP``)
   naming a ``Domain`` or a zero-argument callable returning one, e.g. in a third party's
   ``pyproject.toml``::

       [project.entry-points."flowevo.domains"]
       rings = "rings_domain.registration:DOMAIN"

3. **at run time**: :func:`register_domain` (notebooks, tests).

Registration modules must import lightly (no torch, pymatgen, ...): loaders and built-in
factories import their heavy parts when called.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import warnings
from pathlib import Path
from typing import Any

from flowevo.domains.plugin import Builtin, Domain

__all__ = ["ENTRY_POINT_GROUP", "builtins", "discover", "domain_for_data", "domain_for_model", "domains", "get_domain",
           "register_domain", "unregister_domain"]

ENTRY_POINT_GROUP = "flowevo.domains"

_DOMAINS: dict[str, Domain] = {}
_discovered = False


def register_domain(domain: Domain, replace: bool = False) -> Domain:
    """Add ``domain`` to the registry (``replace=True``: overwrite one of the same name).

    Raises:
        ValueError: the name is taken, or a built-in name is already another domain's.
    """
    if not isinstance(domain, Domain):
        raise TypeError(f"register_domain needs a flowevo.domains.Domain, got {type(domain).__name__}")
    if domain.name in _DOMAINS and not replace:
        raise ValueError(f"domain {domain.name!r} is already registered (pass replace=True to overwrite it)")
    for other in _DOMAINS.values():
        if other.name == domain.name:
            continue
        clash = sorted(set(other.builtins) & set(domain.builtins))
        if clash:
            raise ValueError(f"domain {domain.name!r}: built-in(s) {clash} already registered by domain {other.name!r}")
    _DOMAINS[domain.name] = domain
    return domain


def unregister_domain(name: str) -> None:
    """Remove the domain ``name`` (no error when absent)."""
    _DOMAINS.pop(name, None)


def _load(obj: Any, origin: str) -> Domain:
    domain = obj() if callable(obj) and not isinstance(obj, Domain) else obj
    if not isinstance(domain, Domain):
        raise TypeError(f"{origin}: expected a flowevo.domains.Domain (or a callable returning one), "
                        f"got {type(domain).__name__}")
    return domain


def _own_domains() -> list[Domain]:
    import flowevo.domains as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        name = f"{package.__name__}.{info.name}.registration"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a domain package without a registration module
            raise
        if not hasattr(module, "DOMAIN"):
            raise AttributeError(f"{name} defines no DOMAIN (a flowevo.domains.Domain)")
        found.append(_load(module.DOMAIN, f"{name}.DOMAIN"))
    return found


def _plugin_domains() -> list[Domain]:
    found = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found.append(_load(ep.load(), f"entry point {ep.name!r} ({ep.value})"))
        except Exception as exc:  # noqa: BLE001 (a broken plugin must not break every other domain)
            warnings.warn(f"flowevo: domain plugin {ep.name!r} ({ep.value}) not loaded: {type(exc).__name__}: {exc}",
                          RuntimeWarning, stacklevel=2)
    return found


def discover(force: bool = False) -> None:
    """Register flowevo's own domains and installed plugins (once; ``force=True`` looks again).

    Domains already registered under a name are kept (run-time registrations win).
    """
    global _discovered
    if _discovered and not force:
        return
    for domain in [*_own_domains(), *_plugin_domains()]:
        if domain.name not in _DOMAINS:
            register_domain(domain)
    _discovered = True


def domains() -> dict[str, Domain]:
    """Every registered domain by name (after discovery)."""
    discover()
    return dict(_DOMAINS)


def get_domain(name: str) -> Domain:
    """The domain called ``name``.

    Raises:
        ValueError: no such domain (the message lists the registered ones).
    """
    discover()
    if name not in _DOMAINS:
        raise ValueError(f"unknown domain {name!r}; registered: {', '.join(sorted(_DOMAINS)) or 'none'}")
    return _DOMAINS[name]


def builtins() -> dict[str, Builtin]:
    """Every domain's built-in objectives and constraints, merged by name."""
    discover()
    return {name: b for d in _DOMAINS.values() for name, b in d.builtins.items()}


def _one(path: Path, claimants: list[Domain], what: str) -> Domain:
    if len(claimants) > 1:
        raise ValueError(f"{path}: ambiguous {what}: domains {[d.name for d in claimants]} all recognise it")
    return claimants[0]


def domain_for_model(model_dir: str | Path) -> Domain:
    """The domain whose loader reads ``model_dir`` (a MODEL_DIR, or anything a domain recognises, e.g. ``file.py:factory``).

    Raises:
        FileNotFoundError: no such folder. ValueError: no domain (or more than one) recognises it.
    """
    discover()
    folder = Path(model_dir)
    claimants = [d for d in _DOMAINS.values() if d.recognises_model is not None and d.recognises_model(folder)]
    if not claimants and not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such model folder (train one with: flowevo train --data FILE --out {folder})")
    if not claimants:
        hints = "; ".join(f"{d.name}: {d.model_hint or 'its own files'}" for d in _DOMAINS.values() if d.load_run)
        raise ValueError(f"{folder}: not a flowevo model folder: no domain recognises it ({hints}); "
                         "train one with flowevo train")
    return _one(folder, claimants, "model folder")


def domain_for_data(data: str | Path) -> Domain:
    """The domain whose trainer reads the file ``data``.

    Raises:
        FileNotFoundError: no such file. ValueError: no domain (or more than one) trains on it.
    """
    discover()
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file")
    claimants = [d for d in _DOMAINS.values() if d.recognises_data is not None and d.recognises_data(path)]
    if not claimants:
        hints = "; ".join(f"{d.name}: {d.data_hint or 'its own files'}" for d in _DOMAINS.values() if d.train)
        raise ValueError(f"{path}: no domain trains on this file; expected {hints}")
    return _one(path, claimants, "training data")
