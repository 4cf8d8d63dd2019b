"""
``structflow.utilities.debug``: Prefect 1's debugging aid, ``raise_on_exception``.

Within ``with raise_on_exception():``, the first task run that fails with an
exception ends the flow run, and ``flow.run()`` raises that exception
instead of returning a ``Failed`` state, so a debugger or ``pytest.raises``
sees it where it happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from structflow._context import context
from structflow.engine.runner import RAISE_ON_EXCEPTION

__all__ = ["raise_on_exception"]


@contextmanager
def raise_on_exception() -> Iterator[None]:
    """
    Make ``flow.run()`` raise the exception of the first task run that fails.

    The failing task run is logged as usual (its traceback on
    ``structflow.TaskRunner``) and is not retried; the flow run's last
    record says which task raised; task runs running at that moment finish,
    and no other starts. Without it, a failing task never raises out of
    ``flow.run()``. Sets the context key ``raise_on_exception``, as Prefect
    1's did.

    .. versionadded:: 0.1.0
    """
    with context(**{RAISE_ON_EXCEPTION: True}):
        yield
