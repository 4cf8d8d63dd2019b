"""
``structflow.utilities.edges``: Prefect 1's import path for ``unmapped`` and ``flatten``.

They are :class:`structflow.unmapped` and :class:`structflow.flatten`.
"""

from structflow.engine.task import flatten, unmapped

__all__ = ["flatten", "unmapped"]
