"""
Prefect 1's cache validators: whether a cached result may stand in for a run.

A task made with ``cache_for=timedelta(hours=1)`` keeps each successful
result, in this process, for that long. Before it runs again, its
``cache_validator(state, inputs, parameters)`` is asked about each kept
result (newest first): *state* is the :class:`~structflow.engine.Cached`
state, *inputs* the arguments of the run about to start, by name, and
*parameters* the flow run's parameters. The first one it accepts is the
run's state, and the task's code does not run. The default is
:func:`duration_only`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from structflow.engine.state import Cached

__all__ = [
    "CacheValidator",
    "all_inputs",
    "all_parameters",
    "duration_only",
    "never_use",
    "partial_inputs_only",
    "partial_parameters_only",
]

#: ``validator(state, inputs, parameters) -> bool``.
CacheValidator = Callable[[Cached, Mapping[str, Any], Mapping[str, Any] | None], bool]


def never_use(
    state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None
) -> bool:
    """Never use a cached result."""
    return False


def duration_only(
    state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None
) -> bool:
    """Use a cached result until it expires, whatever the inputs: the default."""
    expiration = state.cached_result_expiration
    return expiration is None or expiration > datetime.now(UTC)


def all_inputs(
    state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None
) -> bool:
    """Use a cached result that has not expired and was made from equal inputs."""
    return duration_only(state, inputs, parameters) and state.cached_inputs == dict(inputs)


def all_parameters(
    state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None
) -> bool:
    """Use a cached result that has not expired and was made with equal flow parameters."""
    return duration_only(state, inputs, parameters) and state.cached_parameters == dict(
        parameters or {}
    )


def partial_inputs_only(validate_on: Iterable[str] | None = None) -> CacheValidator:
    """A validator comparing only the inputs named in *validate_on* (all when None)."""
    return _partial("inputs", validate_on)


def partial_parameters_only(validate_on: Iterable[str] | None = None) -> CacheValidator:
    """A validator comparing only the flow parameters named in *validate_on* (all when None)."""
    return _partial("parameters", validate_on)


def _partial(what: str, validate_on: Iterable[str] | None) -> CacheValidator:
    names = None if validate_on is None else list(validate_on)

    def validator(
        state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None
    ) -> bool:
        if what == "inputs":
            cached, current = state.cached_inputs or {}, dict(inputs)
        else:
            cached, current = state.cached_parameters or {}, dict(parameters or {})
        keys = names if names is not None else list(current)
        return duration_only(state, inputs, parameters) and all(
            k in cached and k in current and cached[k] == current[k] for k in keys
        )

    return validator
