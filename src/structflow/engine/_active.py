"""
The flow that ``with Flow(...)`` made active, and the error of flow building.

Both sit below :mod:`structflow.engine.task` and :mod:`structflow.engine.flow`
so that tasks can find the active flow without importing the module that
defines flows.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structflow.engine.flow import Flow

__all__ = ["FlowError", "activate", "current_flow", "deactivate"]

_active: contextvars.ContextVar[Flow | None] = contextvars.ContextVar(
    "structflow_active_flow", default=None
)


class FlowError(ValueError):
    """
    A flow cannot be built or run as asked.

    Raised for a task used outside a ``with Flow(...)`` block, a dependency
    cycle, a missing required or unknown parameter, and conflicting wiring.

    .. versionadded:: 0.1.0
    """


def current_flow() -> Flow | None:
    """
    Return the flow of the innermost active ``with Flow(...)`` block, or None.

    .. versionadded:: 0.1.0
    """
    return _active.get()


def activate(flow: Flow) -> contextvars.Token[Flow | None]:
    """Make *flow* the active flow; pass the token to :func:`deactivate` to undo it."""
    return _active.set(flow)


def deactivate(token: contextvars.Token[Flow | None]) -> None:
    """Restore the active flow that :func:`activate` replaced."""
    _active.reset(token)
