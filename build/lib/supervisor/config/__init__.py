"""The configuration: models, and ``load()`` that validates a file."""

from supervisor.config.loader import Loaded, find_path, load
from supervisor.config.models import (
    Config,
    DependencyConfig,
    HealthConfig,
    JobConfig,
    ProgramConfig,
    SupervisorConfig,
)

__all__ = [
    "Config",
    "DependencyConfig",
    "HealthConfig",
    "JobConfig",
    "Loaded",
    "ProgramConfig",
    "SupervisorConfig",
    "find_path",
    "load",
]
