"""Domains: data, models and objectives of one kind of sample, each registering itself with flowevo.

Each package ``flowevo.domains.<name>`` (``generic``, ``digits``, ``crystals``, ``toy``) exports its
entry points; those with a ``registration`` module declare a :class:`Domain` (built-in objectives
and constraints, model loader, trainer, output writer) that the command-line workflows find
through the registry, so ``workflows/`` and ``config/`` name no domain. A third party registers
through the ``flowevo.domains`` entry-point group or :func:`register_domain`.
"""

from flowevo.domains.plugin import (
    BatchFn,
    Builtin,
    BuiltinContext,
    Domain,
    DomainFlow,
    DomainRun,
    FlowRequest,
    RunRequest,
    Trained,
    TrainRequest,
)
from flowevo.domains.registry import (
    ENTRY_POINT_GROUP,
    builtins,
    discover,
    domain_for_data,
    domain_for_model,
    domains,
    get_domain,
    register_domain,
    unregister_domain,
)

__all__ = [
    "ENTRY_POINT_GROUP", "BatchFn", "Builtin", "BuiltinContext", "Domain", "DomainFlow", "DomainRun", "FlowRequest",
    "RunRequest",
    "TrainRequest", "Trained", "builtins", "discover", "domain_for_data", "domain_for_model", "domains",
    "get_domain", "register_domain", "unregister_domain",
]
