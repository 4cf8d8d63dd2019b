"""
``structflow.triggers``: Prefect 1's import path for triggers (``prefect.triggers``).

The triggers live in :mod:`structflow.engine.triggers`; these are the same objects.
"""

from structflow.engine import triggers as _triggers
from structflow.engine.triggers import *  # noqa: F403 - the triggers, as their __all__ lists them

__all__ = _triggers.__all__


def __getattr__(name: str) -> object:
    return getattr(_triggers, name)  # manual_only: says it is not there
