"""
``structflow.tasks.control_flow``: Prefect 1's import path for ``case`` and ``merge``.

They live in :mod:`structflow.engine.control_flow`; these are the same objects.
"""

from structflow.engine.control_flow import case, merge

__all__ = ["case", "merge"]
