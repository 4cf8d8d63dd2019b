"""
``structflow.tasks.control_flow``: Prefect 1's import path for the branching tasks.

``case``, ``merge``, ``switch`` and ``ifelse`` live in :mod:`structflow.engine.control_flow`;
these are the same objects.
"""

from structflow.engine.control_flow import case, ifelse, merge, switch

__all__ = ["case", "ifelse", "merge", "switch"]
