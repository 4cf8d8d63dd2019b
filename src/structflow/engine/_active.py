"""
The flow that ``with Flow(...)`` made active, and the error of flow building.

Both sit below :mod:`structflow.engine.task` and :mod:`structflow.engine.flow`
so that tasks can find the active flow without importing the module that
defines flows: a task sees the active flow as :class:`Wiring`, the part of
:class:`~structflow.engine.Flow` that wiring a task needs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["FlowError", "Wiring", "activate", "active"]


class Wiring(Protocol):
    """What a task asks of the flow being built (:class:`~structflow.engine.Flow` has it)."""

    def _wire(
        self,
        task: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        mapped: bool,
        upstream_tasks: Iterable[Any] | None = None,
    ) -> None: ...

    def add_edge(
        self, upstream_task: Any, downstream_task: Any, key: str | None = None, mapped: bool = False
    ) -> object: ...


_active: contextvars.ContextVar[Wiring | None] = contextvars.ContextVar(
    "structflow_active_flow", default=None
)


class FlowError(ValueError):
    """
    A flow cannot be built or run as asked.

    Raised for a task used outside a ``with Flow(...)`` block, a dependency
    cycle, a missing required or unknown parameter, and conflicting wiring.

    .. versionadded:: 0.1.0
    """


def active() -> Wiring | None:
    """Return the flow of the innermost active ``with Flow(...)`` block, or None."""
    return _active.get()


def activate(flow: Wiring) -> contextvars.Token[Wiring | None]:
    """Make *flow* the active flow; resetting the returned token undoes it."""
    return _active.set(flow)
