"""
The results tasks keep with ``cache_for``, in this process.

Prefect 1 kept them in ``prefect.context.caches``, for the life of the
process; so does this module, by ``cache_key`` (else the task's name). A
Dask worker keeps its own. Expired results are dropped when a new one is
kept.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from structflow.engine.state import Cached, State

if TYPE_CHECKING:
    import logging

    from structflow.engine.task import Task

__all__ = ["cached_state", "inputs_of", "keep"]

_lock = threading.Lock()
_caches: dict[str, list[Cached]] = {}


def inputs_of(task: Task, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A run's arguments by the names of ``run``'s parameters, as validators compare them."""
    signature = task._signature()
    if signature is not None:
        try:
            return dict(signature.bind(*args, **kwargs).arguments)
        except TypeError:
            pass
    return {**{str(i): value for i, value in enumerate(args)}, **kwargs}


def cached_state(
    task: Task,
    inputs: Mapping[str, Any],
    parameters: Mapping[str, Any] | None,
    logger: logging.Logger,
    label: str,
) -> Cached | None:
    """
    The newest kept result *task*'s validator accepts for these inputs, or None.

    When results are kept but none is accepted, a WARNING says so, worded
    as Prefect 1's. A validator that raises is logged and counts as a no.
    """
    with _lock:
        candidates = list(reversed(_caches.get(_key(task), ())))
    for candidate in candidates:
        try:
            if task.cache_validator(candidate, inputs, parameters):
                return candidate
        except Exception as exc:
            logger.error(f"{label}: the cache validator raised {exc!r}", exc_info=True)
    if candidates:
        logger.warning(f"{label}: Can't use cache because it is now invalid")
    return None


def keep(task: Task, state: State, inputs: Mapping[str, Any], parameters: Any) -> Cached:
    """Keep a successful run's result for ``task.cache_for``; return its ``Cached`` state."""
    now = datetime.now(UTC)
    cached = Cached(
        message=state.message,
        result=state.result,
        cached_inputs=dict(inputs),
        cached_parameters=dict(parameters) if isinstance(parameters, Mapping) else None,
        cached_result_expiration=None if task.cache_for is None else now + task.cache_for,
    )
    key = _key(task)
    with _lock:
        kept = [
            c
            for c in _caches.get(key, ())
            if c.cached_result_expiration is None or c.cached_result_expiration > now
        ]
        kept.append(cached)
        _caches[key] = kept
    return cached


def _key(task: Task) -> str:
    return task.cache_key or task.name
