"""
``structflow.utilities.logging``: the import path Prefect 1's logging page uses.

``get_logger`` here is the same object as ``structflow.get_logger``.
"""

from structflow._setup import get_logger

__all__ = ["get_logger"]
