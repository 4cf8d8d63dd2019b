"""
structflow: structured logging for workflows made of tasks and flows.

Stdlib loggers named after tasks and flows carry the run context on every
record, render JSON or the classic ``%(asctime)s`` format as configured, and
ship records to HTTP endpoints and syslog without blocking the task.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from structflow import executors
from structflow._config import ConfigError
from structflow._context import bound, context
from structflow._setup import config, configure
from structflow.engine import Flow, Parameter, Task, task
from structflow.loggers import get_logger

try:
    __version__ = version("structflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "ConfigError",
    "Flow",
    "Parameter",
    "Task",
    "__version__",
    "bound",
    "config",
    "configure",
    "context",
    "executors",
    "get_logger",
    "task",
]
