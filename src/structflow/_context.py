"""
Run context on contextvars.

Two kinds of keys live here:

* every key set with ``structflow.context(**kw)`` is readable through the
  ``structflow.context`` mapping (``logger``, ``parameters``, user keys ...);
* a subset, the *record fields*, is stamped on every log record made while it
  is set: the run-context keys in :data:`RUN_KEYS`, the keys listed in
  ``[logging] log_attributes`` (``None`` where the context lacks them), and
  every key bound with :func:`structflow.bound`.

Both are kept in one immutable :class:`_Frame` per context so that the hot
path of a log call reads one ``ContextVar`` and finds the fields and their
names already computed. The fields depend on ``log_attributes`` too: a frame
remembers which list it was computed for, and one made before the list
changed (before structflow read its configuration, say) is computed again
the first time it is used after.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeAlias, TypeVar

__all__ = ["RUN_KEYS", "Context", "ContextVarScope", "bound", "context"]

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

P = ParamSpec("P")
R = TypeVar("R")

# The keys of `[logging] log_attributes`, in a one-item list so that the hot
# path of a log call (in structflow._loggers) reads the current tuple without
# a module attribute lookup. A new tuple object is stored only when the keys
# change: frames compare it by identity.
log_attributes: list[tuple[str, ...]] = [()]

#: The record fields of one context, for one list of log attributes:
#: (that list, the fields, their names).
Stamp: TypeAlias = tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]]


def set_log_attributes(keys: Iterable[str]) -> None:
    """
    Stamp *keys* on every record from now on (``[logging] log_attributes``).

    Frames in use pick the new keys up the next time a record is made.
    """
    wanted = tuple(dict.fromkeys(keys))
    if wanted != log_attributes[0]:
        log_attributes[0] = wanted


def _stamp(values: Mapping[str, Any], bound: Mapping[str, Any]) -> Stamp:
    """Compute the record fields of a context: run keys, log attributes, then bound keys."""
    keys = log_attributes[0]
    fields = {k: values[k] for k in RUN_KEYS if k in values}
    for key in keys:
        if key not in fields:
            # Stamped even when unset, as Prefect 1 did: handlers and format
            # strings that read the attribute find None rather than fail.
            fields[key] = values.get(key)
    fields.update(bound)
    return (keys, fields, tuple(fields))


class _Frame:
    """One immutable state of the context: its values and its record fields."""

    __slots__ = ("bound", "stamp", "values")

    def __init__(self, values: dict[str, Any], bound: dict[str, Any]) -> None:
        self.values = values
        self.bound = bound
        self.stamp: Stamp = _stamp(values, bound)

    def restamp(self) -> Stamp:
        """Compute the fields again for the current log attributes (they changed)."""
        stamp = self.stamp = _stamp(self.values, self.bound)
        return stamp


_EMPTY = _Frame({}, {})
_frame: contextvars.ContextVar[_Frame] = contextvars.ContextVar(
    "structflow_context", default=_EMPTY
)


def current_stamp() -> Stamp:
    """Return the current context's (log attributes, fields, names); shared, do not mutate."""
    frame = _frame.get()
    stamp = frame.stamp
    if stamp[0] is not log_attributes[0]:
        stamp = frame.restamp()
    return stamp


def current_fields() -> dict[str, Any]:
    """Return the record fields of the current context (shared; do not mutate)."""
    return current_stamp()[1]


# How to get structflow's root logger (configured), for ``context.get("logger")``
# outside any run. The set-up layer, above this module, registers it when it is
# imported (``import structflow`` imports it), so this module imports nothing above it.
_root_logger_getter: Callable[[], Any] | None = None


def set_root_logger_getter(getter: Callable[[], Any]) -> None:
    """Register the function that returns structflow's configured root logger."""
    global _root_logger_getter
    _root_logger_getter = getter


def _root_logger() -> Any:
    """structflow's root logger: ``context.get("logger")`` outside any run."""
    # Importing any part of structflow runs the package's __init__, which
    # imports the set-up layer: the getter is always registered by now.
    getter = _root_logger_getter
    return getter() if getter is not None else None


# What the first ``structflow.context()`` or ``structflow.bound()`` block does
# before it sets its keys: chain the record factory that stamps them (the
# set-up layer registers it), so that ``logging.getLogger("anything")`` inside
# the block carries them even when nothing else of structflow was used yet.
_before_first_push: Callable[[], None] | None = None


def set_before_first_push(hook: Callable[[], None]) -> None:
    """Register *hook*, called once, by the first block that sets context keys."""
    global _before_first_push
    _before_first_push = hook


def _first_push() -> None:
    global _before_first_push
    hook, _before_first_push = _before_first_push, None
    if hook is not None:
        hook()


class ContextVarScope:
    """
    A ``with`` block that sets a context variable, undone on exit.

    ``__enter__`` (the subclass's) appends the token of the ``set`` it made
    to ``_tokens``; ``__exit__`` resets the variable of the token it pops.
    One object can thus be entered again while it is entered, nested or in
    another thread, and each exit undoes its own entry.
    """

    __slots__ = ()
    _tokens: list[contextvars.Token[Any]]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._tokens.pop()
        token.var.reset(token)


class _Push(ContextVarScope):
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
        if _before_first_push is not None:
            _first_push()
        cur = _frame.get()
        values = {**cur.values, **self._values} if self._values else cur.values
        bnd = {**cur.bound, **self._bound} if self._bound else cur.bound
        self._tokens.append(_frame.set(_Frame(values, bnd)))
        return context

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
    read it; ``with context(**kw):`` (or ``with context({...}):``) adds keys
    for the duration of the block. During a task run it holds ``logger``,
    ``flow_name``, ``flow_run_id``, ``task_name``, ``task_run_id``,
    ``map_index``, ``task_run_count`` and ``parameters``.

    ``logger`` is always there: outside any run it is structflow's root
    logger (``structflow.get_logger()``), as in Prefect 1, so helper code
    that logs both inside and outside tasks works in both places.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    def __call__(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> _Push:
        """
        Return a ``with`` block that adds keys to the context for its duration.

        The keys come from the mapping *values* (``context({"key": 1})``, as
        Prefect 1 took them), then from the keyword arguments, which win.

        Raises:
            TypeError: *values* is not a mapping, or has a key that is not a string.
        """
        if values is None:
            return _Push(kw, {})
        if not isinstance(values, Mapping):
            raise TypeError(
                f"structflow.context() takes a mapping of keys, or keywords; "
                f"got {type(values).__name__}"
            )
        bad = [k for k in values if not isinstance(k, str)]
        if bad:
            raise TypeError(
                f"structflow.context() keys must be strings; got {bad[0]!r} "
                f"({type(bad[0]).__name__})"
            )
        return _Push({**values, **kw}, {})

    def __getitem__(self, key: str) -> Any:
        try:
            return _frame.get().values[key]
        except KeyError:
            if key == "logger":
                return _root_logger()
            raise

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"structflow.context has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise TypeError(
            "structflow.context is read-only; use `with structflow.context(key=value):` "
            "to add keys for a block"
        )

    def __iter__(self) -> Iterator[str]:
        values = _frame.get().values
        yield from values
        if "logger" not in values:
            yield "logger"

    def __len__(self) -> int:
        values = _frame.get().values
        return len(values) + ("logger" not in values)

    def __contains__(self, key: object) -> bool:
        return key == "logger" or key in _frame.get().values

    def to_dict(self) -> dict[str, Any]:
        """Return a copy of the current context's keys and values (Prefect 1's ``to_dict()``)."""
        return {key: self[key] for key in self}

    def get(self, key: str, default: Any = None) -> Any:
        """
        Return the value of *key* in the current context, or *default*.

        ``get("logger")`` is never None: outside a run it is the root logger.
        """
        values = _frame.get().values
        if key in values:
            return values[key]
        return _root_logger() if key == "logger" else default

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
        return MappingProxyType(dict(self))

    def __repr__(self) -> str:
        # The explicitly set keys: a repr does not read the configuration.
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
