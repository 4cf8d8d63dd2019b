"""
Prefect 1's triggers: whether a task runs, given the states of the tasks upstream.

A trigger is called with a dict from each upstream :class:`Edge` to that
task's final state, and returns True to run the task; it raises
``structflow.engine.signals.TRIGGERFAIL`` (or returns False) to end the
task run ``TriggerFailed`` without running it, or ``SKIP`` to skip it.
``@task(trigger=all_finished)`` runs a clean-up task whatever happened
upstream. A task whose upstream task was skipped is skipped before its
trigger is asked, unless made with ``skip_on_upstream_skip=False``.

``structflow.triggers`` (Prefect 1's ``prefect.triggers``) holds the same
objects. Prefect 1's ``manual_only`` (pausing for approval) has no
counterpart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from structflow.engine.signals import SKIP, TRIGGERFAIL

if TYPE_CHECKING:
    from structflow.engine.state import State

__all__ = [
    "Trigger",
    "all_failed",
    "all_finished",
    "all_successful",
    "always_run",
    "any_failed",
    "any_successful",
    "not_all_skipped",
    "some_failed",
    "some_successful",
]

#: An upstream edge (:class:`structflow.engine.Edge`); a name only, since the
#: flow module imports this one.
Edge = Any
#: ``trigger(upstream_states) -> bool``: *upstream_states* maps each upstream edge to its state.
Trigger = Callable[[Mapping[Edge, "State"]], bool]


def all_successful(upstream_states: Mapping[Edge, State]) -> bool:
    """Run when every upstream task succeeded (skipped counts as success): the default."""
    if not all(s.is_successful() for s in upstream_states.values()):
        _fail('Trigger was "all_successful" but some of the upstream tasks failed.')
    return True


def all_finished(upstream_states: Mapping[Edge, State]) -> bool:
    """Run once every upstream task finished, however it ended."""
    if not all(s.is_finished() for s in upstream_states.values()):
        _fail('Trigger was "all_finished" but some of the upstream tasks were not finished.')
    return True


#: Prefect 1's other name for :func:`all_finished`.
always_run = all_finished


def all_failed(upstream_states: Mapping[Edge, State]) -> bool:
    """Run only when every upstream task failed."""
    if not all(s.is_failed() for s in upstream_states.values()):
        _fail('Trigger was "all_failed" but some of the upstream tasks succeeded.')
    return True


def any_successful(upstream_states: Mapping[Edge, State]) -> bool:
    """Run when at least one upstream task succeeded (or there is none)."""
    if upstream_states and not any(s.is_successful() for s in upstream_states.values()):
        _fail('Trigger was "any_successful" but none of the upstream tasks succeeded.')
    return True


def any_failed(upstream_states: Mapping[Edge, State]) -> bool:
    """Run when at least one upstream task failed (or there is none)."""
    if upstream_states and not any(s.is_failed() for s in upstream_states.values()):
        _fail('Trigger was "any_failed" but none of the upstream tasks failed.')
    return True


def not_all_skipped(upstream_states: Mapping[Edge, State]) -> bool:
    """Run when every upstream task succeeded and at least one was not skipped."""
    states = list(upstream_states.values())
    if not all(s.is_successful() for s in states):
        _fail('Trigger was "not_all_skipped" but some of the upstream tasks failed.')
    if states and all(s.is_skipped() for s in states):
        raise SKIP("All upstream tasks were skipped.")
    return True


def some_successful(
    at_least: int | float | None = None, at_most: int | float | None = None
) -> Trigger:
    """
    A trigger running when the number (an int) or share (a float) of successes is in range.

    ``some_successful(at_least=2)``, ``some_successful(at_most=0.5)``.
    """
    return _some("some_successful", "successful", at_least, at_most)


def some_failed(at_least: int | float | None = None, at_most: int | float | None = None) -> Trigger:
    """A trigger running when the number (an int) or share (a float) of failures is in range."""
    return _some("some_failed", "failed", at_least, at_most)


def _some(
    name: str, outcome: str, at_least: int | float | None, at_most: int | float | None
) -> Trigger:
    for label, bound in (("at_least", at_least), ("at_most", at_most)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise TypeError(f"{name}(): {label} must be an int, a float or None, got {bound!r}")

    def trigger(upstream_states: Mapping[Edge, State]) -> bool:
        states = list(upstream_states.values())
        count = sum(
            1 for s in states if (s.is_successful() if outcome == "successful" else s.is_failed())
        )
        low = _bound(at_least, len(states), 0)
        high = _bound(at_most, len(states), len(states))
        if not low <= count <= high:
            _fail(
                f'Trigger was "{name}" but {count} of {len(states)} upstream tasks {outcome}; '
                f"expected {low} to {high}."
            )
        return True

    trigger.__name__ = trigger.__qualname__ = name
    return trigger


def _fail(message: str) -> NoReturn:
    raise TRIGGERFAIL(message)


def _bound(value: int | float | None, total: int, default: int) -> float:
    if value is None:
        return default
    if isinstance(value, float):
        return value * total
    return value


def __getattr__(name: str) -> Any:
    if name == "manual_only":
        raise ImportError(
            "structflow has no manual_only trigger: Prefect 1 used it to pause a task until "
            "someone resumed it by hand, which structflow does not do"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
