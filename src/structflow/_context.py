"""
Run context on contextvars.

Two kinds of keys live here:

* every key set with ``structflow.context(**kw)`` is readable through the
  ``structflow.context`` mapping (``logger``, ``parameters``, user keys ...);
* a subset, the *record fields*, is stamped on every log record made while it
  is set: the run-context keys in :data:`RUN_KEYS` and every key bound with
  :func:`structflow.bound`.

Both are kept in one immutable :class:`_Frame` per context so that the hot
path of a log call reads one ``ContextVar`` and finds the fields and their
names already computed.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar

__all__ = ["RUN_KEYS", "Context", "bound", "context"]

#: Context keys stamped on records, in the order renderers show them.
RUN_KEYS: tuple[str, ...] = (
    "flow_name",
    "flow_run_id",
    "task_name",
    "task_slug",
    "task_run_id",
    "map_index",
    "task_run_count",
)
_RUN_KEY_SET = frozenset(RUN_KEYS)

P = ParamSpec("P")
R = TypeVar("R")


class _Frame:
    """One immutable state of the context: its values and the record fields."""

    __slots__ = ("bound", "fields", "names", "values")

    def __init__(self, values: dict[str, Any], bound: dict[str, Any]) -> None:
        self.values = values
        self.bound = bound
        fields = {k: values[k] for k in RUN_KEYS if k in values}
        fields.update(bound)
        self.fields = fields
        self.names: tuple[str, ...] = tuple(fields)


_EMPTY = _Frame({}, {})
_frame: contextvars.ContextVar[_Frame] = contextvars.ContextVar(
    "structflow_context", default=_EMPTY
)


def current_fields() -> dict[str, Any]:
    """Return the record fields of the current context (shared; do not mutate)."""
    return _frame.get().fields


class _Push:
    """
    A ``with`` block (and decorator) that layers keys on the current context.

    Each entry creates a new frame; nested and concurrent uses are independent
    because the reset token is kept per entry.
    """

    __slots__ = ("_bound", "_tokens", "_values")

    def __init__(self, values: Mapping[str, Any], bound: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._bound = dict(bound)
        self._tokens: list[contextvars.Token[_Frame]] = []

    def __enter__(self) -> Context:
        cur = _frame.get()
        values = {**cur.values, **self._values} if self._values else cur.values
        bnd = {**cur.bound, **self._bound} if self._bound else cur.bound
        self._tokens.append(_frame.set(_Frame(values, bnd)))
        return context

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _frame.reset(self._tokens.pop())

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        values, bnd = self._values, self._bound

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _Push(values, bnd):
                return func(*args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        items = {**self._values, **self._bound}
        inner = ", ".join(f"{k}={v!r}" for k, v in items.items())
        return f"structflow.context({inner})"


class Context(Mapping[str, Any]):
    """
    Read-only view of the run context.

    ``context.get(key, default=None)``, ``context[key]`` and ``context.key``
    read it; ``with context(**kw):`` adds keys for the duration of the block.
    During a task run it holds ``logger``, ``flow_name``, ``flow_run_id``,
    ``task_name``, ``task_run_id``, ``map_index``, ``task_run_count`` and
    ``parameters``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    def __call__(self, **kw: Any) -> _Push:
        """Return a ``with`` block that adds *kw* to the context for its duration."""
        return _Push(kw, {})

    def __getitem__(self, key: str) -> Any:
        return _frame.get().values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return _frame.get().values[key]
        except KeyError:
            raise AttributeError(f"structflow.context has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise TypeError(
            "structflow.context is read-only; use `with structflow.context(key=value):` "
            "to add keys for a block"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(_frame.get().values)

    def __len__(self) -> int:
        return len(_frame.get().values)

    def __contains__(self, key: object) -> bool:
        return key in _frame.get().values

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of *key* in the current context, or *default*."""
        return _frame.get().values.get(key, default)

    def snapshot(self) -> dict[str, Any]:
        """
        Return the context and bound keys as plain data, to re-enter elsewhere.

        Executors use it to carry the context into other processes; the
        ``logger`` entry is left out because it is re-created from the task
        name on the other side.
        """
        frame = _frame.get()
        values = {k: v for k, v in frame.values.items() if k != "logger"}
        return {"values": values, "bound": dict(frame.bound)}

    def restore(self, snapshot: Mapping[str, Any]) -> _Push:
        """Return a ``with`` block that re-enters a :meth:`snapshot`."""
        return _Push(snapshot.get("values", {}), snapshot.get("bound", {}))

    def as_dict(self) -> Mapping[str, Any]:
        """Return a read-only copy of the current context."""
        return MappingProxyType(dict(_frame.get().values))

    def __repr__(self) -> str:
        return f"<structflow.context {dict(_frame.get().values)!r}>"


context = Context()


def bound(**kw: Any) -> _Push:
    """
    Bind *kw* to every record made within a block, from any logger.

    Works as a context manager and as a decorator; contextvars keep it local
    to the thread or asyncio task that entered it::

        with structflow.bound(request_id="r-1"):
            logging.getLogger("urllib3").warning("retrying")  # carries request_id

    .. versionadded:: 0.1.0
    """
    return _Push({}, kw)
