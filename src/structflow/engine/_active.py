"""
The flow that ``with Flow(...)`` made active, and the error of flow building.

Both sit below :mod:`structflow.engine.task` and :mod:`structflow.engine.flow`
so that tasks can find the active flow without importing the module that
defines flows: a task sees the active flow as :class:`Wiring`, the part of
:class:`~structflow.engine.Flow` that wiring a task needs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = [
    "PREFECT1_FLOW_OPTIONS",
    "PREFECT1_RUN_OPTIONS",
    "PREFECT1_TASK_OPTIONS",
    "CaseBlock",
    "FlowError",
    "Wiring",
    "activate",
    "active",
    "close_case",
    "open_case",
    "open_cases",
    "refuse_options",
]


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


class CaseBlock(Protocol):
    """What a flow tells an open ``with case(...)`` block (:class:`structflow.case` has it)."""

    def add_task(self, task: Any, flow: Any) -> None: ...


_cases: contextvars.ContextVar[tuple[CaseBlock, ...]] = contextvars.ContextVar(
    "structflow_open_cases", default=()
)


def open_cases() -> tuple[CaseBlock, ...]:
    """The ``with case(...)`` blocks open here, outermost first."""
    return _cases.get()


def open_case(block: CaseBlock) -> contextvars.Token[tuple[CaseBlock, ...]]:
    """Open *block* inside the open ones; resetting the returned token closes it."""
    return _cases.set((*_cases.get(), block))


def close_case(token: contextvars.Token[tuple[CaseBlock, ...]]) -> None:
    """Close the block :func:`open_case` opened."""
    _cases.reset(token)


def active() -> Wiring | None:
    """Return the flow of the innermost active ``with Flow(...)`` block, or None."""
    return _active.get()


def activate(flow: Wiring) -> contextvars.Token[Wiring | None]:
    """Make *flow* the active flow; resetting the returned token undoes it."""
    return _active.set(flow)


#: Prefect 1's options of a task (``@task(...)``, ``Task.__init__``) and of a
#: flow that structflow does not have: refused by name, so that a port knows
#: what to remove rather than reading Python's "unexpected keyword argument".
PREFECT1_TASK_OPTIONS = frozenset(
    {
        "task_run_name",
        "slug",
        "result",
        "target",
    }
)
PREFECT1_FLOW_OPTIONS = frozenset(
    {
        "schedule",
        "environment",
        "storage",
        "run_config",
        "result",
        "validate",
        "terminal_state_handler",
    }
)


#: ``Flow.run``'s (and Prefect 1's ``FlowRunner.run``'s) keywords structflow lacks.
PREFECT1_RUN_OPTIONS = frozenset(
    {
        "run_on_schedule",
        "runner_cls",
        "return_tasks",
        "state",
        "task_states",
        "task_contexts",
        "task_runner_state_handlers",
    }
)


def refuse_options(owner: str, given: Mapping[str, object], prefect1: frozenset[str]) -> None:
    """
    Raise the TypeError for keyword arguments *owner* does not take.

    Raises:
        TypeError: always; naming a Prefect 1 option as such.
    """
    known = sorted(set(given) & prefect1)
    if known:
        raise TypeError(
            f"{owner} got {', '.join(map(repr, known))}: Prefect 1 option(s) that structflow "
            "does not have; remove them (docs/migrating.md lists what a port keeps)"
        )
    raise TypeError(f"{owner} got an unexpected keyword argument {sorted(given)[0]!r}")
