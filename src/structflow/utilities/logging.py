"""
``structflow.utilities.logging``: the import path Prefect 1's logging page uses.

``get_logger`` here is the same object as ``structflow.get_logger``.
:class:`RedirectToLog` is the text stream behind ``@task(log_stdout=True)``:
what is written to it is logged, one record per line.
"""

from structflow._setup import get_logger
from structflow._stdout import RedirectToLog

__all__ = ["RedirectToLog", "get_logger"]
