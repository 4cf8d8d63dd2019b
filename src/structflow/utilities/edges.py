"""
``structflow.utilities.edges``: Prefect 1's import path for ``unmapped``.

``unmapped`` here is :class:`structflow.unmapped`. Prefect 1's ``flatten``
(mapping over a list of lists as one list) has no counterpart.
"""

from structflow.engine.task import unmapped

__all__ = ["unmapped"]
