"""
structflow: structured logging for workflows made of tasks and flows.

Stdlib loggers named after tasks and flows carry the run context on every
record, render JSON or the classic ``%(asctime)s`` format as configured, and
ship records to HTTP endpoints and syslog without blocking the task.
"""

from __future__ import annotations

from structflow import executors, triggers, utilities
from structflow._config import ConfigError
from structflow._context import bound, context
from structflow._setup import config, configure, get_logger
from structflow.engine import Flow, Parameter, Task, task, unmapped
from structflow.engine.control_flow import case, merge
from structflow.engine.task import flatten, tags

# A literal (read by the build backend too): importlib.metadata would add
# tens of milliseconds to every `import structflow`.
__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Flow",
    "Parameter",
    "Task",
    "__version__",
    "bound",
    "case",
    "config",
    "configure",
    "context",
    "executors",
    "flatten",
    "get_logger",
    "merge",
    "tags",
    "task",
    "triggers",
    "unmapped",
    "utilities",
]
