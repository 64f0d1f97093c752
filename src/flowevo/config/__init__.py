"""Configuration: one file (TOML, YAML or JSON) mapped onto typed, validated pydantic models.

:func:`load_config` reads a file, applies ``--set key.path=value`` overrides and command-line
flags, and validates; :func:`write_resolved` records the result in a run directory.
"""

from flowevo.config.loading import (
    RESOLVED_NAME,
    ConfigError,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_value,
    read_config_file,
    set_key,
    validate_config,
    write_resolved,
)
from flowevo.config.models import (
    CallableSpec,
    CFOSection,
    Config,
    ConstraintSpec,
    EvaluationSection,
    ObjectiveSpec,
    OptimizeSection,
    TargetSpec,
    TrainSection,
)

__all__ = [
    "CFOSection", "CallableSpec", "Config", "ConfigError", "ConstraintSpec", "EvaluationSection", "ObjectiveSpec",
    "OptimizeSection", "RESOLVED_NAME", "TargetSpec", "TrainSection", "apply_overrides", "config_to_dict", "load_config",
    "parse_value", "read_config_file", "set_key", "validate_config", "write_resolved",
]
