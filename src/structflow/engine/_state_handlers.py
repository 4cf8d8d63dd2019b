"""
Prefect 1's state handlers: callables told of each state change of a task or flow run.

``state_handlers=[handler]`` on a task (or a flow) calls ``handler(task,
old_state, new_state)`` at each change, in the run's context (so
``structflow.context.get("logger")`` is the task's logger); what it returns,
when a state, becomes the new state. ``on_failure=callback`` calls
``callback(task, state)`` when the new state is a failure. A handler that
raises turns the new state into ``Failed``, with the error logged.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from structflow._values import safe_repr
from structflow.engine.state import Failed, State

__all__ = ["StateHandler", "call_state_handlers", "check_state_handlers"]

#: ``handler(task_or_flow, old_state, new_state)``, returning the new state (or None to keep it).
StateHandler = Callable[[Any, State, State], State | None]


def check_state_handlers(
    state_handlers: Iterable[StateHandler] | None,
    on_failure: Callable[[Any, State], object] | None,
    owner: str,
) -> tuple[StateHandler, ...]:
    """
    The handlers to call, *on_failure* last; checked when the task or flow is made.

    Raises:
        TypeError: *state_handlers* is not a list of callables, or
            *on_failure* is not callable.
    """
    if state_handlers is None:
        handlers: list[StateHandler] = []
    elif isinstance(state_handlers, str | bytes) or not isinstance(state_handlers, Iterable):
        raise TypeError(
            f"{owner}: state_handlers must be a list of callables "
            f"handler(obj, old_state, new_state), got {safe_repr(state_handlers)}"
        )
    else:
        handlers = list(state_handlers)
    for handler in handlers:
        if not callable(handler):
            raise TypeError(
                f"{owner}: state_handlers must be callables handler(obj, old_state, "
                f"new_state), got {safe_repr(handler)}"
            )
    if on_failure is not None:
        if not callable(on_failure):
            raise TypeError(
                f"{owner}: on_failure must be a callable callback(obj, state), "
                f"got {safe_repr(on_failure)}"
            )
        handlers.append(_OnFailure(on_failure))
    return tuple(handlers)


class _OnFailure:
    """``on_failure`` as one more state handler (a class, so that it pickles)."""

    def __init__(self, callback: Callable[[Any, State], object]) -> None:
        self.callback = callback

    def __call__(self, obj: Any, old_state: State, new_state: State) -> State:
        if new_state.is_failed():
            self.callback(obj, new_state)
        return new_state


def call_state_handlers(
    obj: Any,
    handlers: tuple[StateHandler, ...],
    old_state: State,
    new_state: State,
    logger: logging.Logger,
    label: str,
) -> State:
    """
    Call *handlers* in order for the change *old_state* -> *new_state*; return the new state.

    A handler that raises, or returns something other than a state or
    None, is logged at ERROR on *logger* (``<label>: Exception raised while
    calling state handlers: ...``) and the new state becomes ``Failed``.
    """
    state = new_state
    for handler in handlers:
        try:
            returned = handler(obj, old_state, state)
            if returned is not None and not isinstance(returned, State):
                raise TypeError(
                    f"state handler {safe_repr(handler)} returned {safe_repr(returned)}, "
                    "not a state (return new_state to keep it)"
                )
        except Exception as exc:
            note = f"Exception raised while calling state handlers: {safe_repr(exc)}"
            logger.error(f"{label}: {note}", exc_info=True)
            return Failed(message=note, exception=exc, traceback=traceback.format_exc())
        if returned is not None:
            state = returned
    return state
