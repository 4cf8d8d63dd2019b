"""
structflow's loggers and the two paths that make records.

* structflow's own loggers (:class:`Logger`, the class of every logger under
  ``structflow``) build the record directly, which is what makes them cheaper
  than stdlib's ``Logger._log``;
* every other logger goes through stdlib's ``makeRecord`` and the record
  factory installed by :func:`install_record_factory`, which stamps the same
  fields.

The public names are re-exported by :mod:`structflow.loggers`;
:func:`structflow.get_logger` lives with the configuration it applies first
(``structflow._setup``), as structlog keeps its ``get_logger`` in its
``_config`` module.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any, Protocol, TypeVar

from structflow._context import _frame
from structflow._context import log_attributes as _log_attributes
from structflow._records import (
    RECORD_ATTRS,
    RESERVED,
    ExcInfo,
    LogRecord,
    normalize_exc_info,
)

__all__ = [
    "ROOT_NAME",
    "BoundLogger",
    "Logger",
    "install_record_factory",
    "on_root_level",
    "set_configured_level",
]

#: The name of the root of structflow's logger tree.
ROOT_NAME = "structflow"

# The configured level, while structflow is configured: what NOTSET on the
# structflow logger stands for (see Logger.getEffectiveLevel).
_configured_level: int | None = None


def set_configured_level(level: int | None) -> None:
    """Record the configured level (``None``: structflow is not configured)."""
    global _configured_level
    _configured_level = level
    _root_level_changed()


# Called when the level the ``structflow`` logger logs at may have changed:
# its own level set (``setLevel``, pytest's ``caplog.set_level``,
# ``structflow.testing.capture_logs(level=...)``) or the configured level.
# The structlog integration registers one, so that its bound loggers' level
# methods follow.
_root_level_hooks: list[Callable[[], None]] = []


def on_root_level(hook: Callable[[], None]) -> None:
    """Call *hook* whenever the level of the ``structflow`` logger may have changed."""
    if hook not in _root_level_hooks:
        _root_level_hooks.append(hook)


def _root_level_changed() -> None:
    for hook in _root_level_hooks:
        hook()


# --- record factory for loggers that are not structflow's ---------------------

_previous_factory: Any = None
_fast_records = False


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    prev = _previous_factory
    if prev is None or prev is logging.LogRecord:
        record: logging.LogRecord = LogRecord(*args, **kwargs)
    else:
        record = prev(*args, **kwargs)
    frame = _frame.get()
    stamp = frame.stamp
    if stamp[0] is not _log_attributes[0]:
        stamp = frame.restamp()
    fields = stamp[1]
    names = stamp[2]
    if names:
        d = record.__dict__
        stored = _stored_names(names)
        extra = _pending_extra()
        if extra:
            # stdlib's makeRecord refuses an `extra` key already on the record;
            # the caller's own value is the more specific one, so it wins.
            keep = [i for i, name in enumerate(stored) if name not in extra]
            values = list(fields.values())
            for i in keep:
                d[stored[i]] = values[i]
            d["structflow_fields"] = tuple(stored[i] for i in keep) + tuple(
                k for k in extra if k not in RESERVED
            )
            return record
        if stored is names or stored == names:
            d.update(fields)
        else:
            for name, value in zip(stored, fields.values(), strict=True):
                d[name] = value
        d["structflow_fields"] = stored
    elif "structflow_fields" not in record.__dict__:
        record.structflow_fields = ()
    return record


_MAKE_RECORD_CODE = logging.Logger.makeRecord.__code__


def _pending_extra() -> Mapping[str, Any] | None:
    """
    Return the ``extra=`` mapping of the stdlib ``makeRecord`` call in progress.

    The factory runs inside ``Logger.makeRecord``, which then adds ``extra``
    and raises ``KeyError`` for any key already on the record. Only that one
    caller is looked at; any other caller has no pending ``extra``.
    """
    try:
        caller = _getframe(2)
    except ValueError:
        return None
    if caller.f_code is not _MAKE_RECORD_CODE:
        return None
    extra = caller.f_locals.get("extra")
    return extra if isinstance(extra, Mapping) and extra else None


def install_record_factory() -> None:
    """
    Chain structflow's record factory in front of the current one (idempotent).

    It adds the run context and bound keys to records from every logger, which
    is how ``logging.getLogger("anything")`` inside a task carries them.
    """
    global _previous_factory, _fast_records
    current = logging.getLogRecordFactory()
    if current is _factory:
        return
    _previous_factory = current
    # With stdlib's own factory underneath, structflow's loggers may build
    # records directly; a user's factory is called instead.
    _fast_records = current is logging.LogRecord
    logging.setLogRecordFactory(_factory)


_names_cache: dict[tuple[str, ...], tuple[str, ...]] = {}


def _stored_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Map field names to the attribute names they are stored under."""
    try:
        return _names_cache[names]
    except KeyError:
        stored = names
        if any(k in RESERVED for k in names):
            stored = tuple(k + "_" if k in RESERVED else k for k in names)
        if len(_names_cache) < 4096:
            _names_cache[names] = stored
        return stored


# --- the fast path of structflow's own loggers --------------------------------

_pid = os.getpid()


def _after_fork() -> None:
    global _pid, _process_name_cache
    _pid = os.getpid()
    _process_name_cache = None


os.register_at_fork(after_in_child=_after_fork)

# id(code) -> (code, (pathname, filename, module, funcName)). Keyed by id
# because hashing a code object hashes its contents; the entry keeps the code
# object alive, so an id is never reused while it is cached.
_code_cache: dict[int, tuple[CodeType, tuple[str, str, str, str]]] = {}


def _code_info(code: CodeType) -> tuple[str, str, str, str]:
    """Return (pathname, filename, module, funcName) for a code object, cached."""
    pathname = code.co_filename
    filename = os.path.basename(pathname)
    module = os.path.splitext(filename)[0]
    info = (pathname, filename, module, code.co_name)
    if len(_code_cache) < 8192:
        _code_cache[id(code)] = (code, info)
    return info


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
# The attributes every record has, with stdlib's values for those that do not
# vary; copying it is cheaper than building a new dict key by key.
_TEMPLATE: dict[str, Any] = dict.fromkeys(RECORD_ATTRS)


_UNKNOWN_CALLER = ("(unknown file)", "(unknown file)", "Unknown module", "(unknown function)")
_new = object.__new__
_getframe = sys._getframe
_time = time.time
_time_ns = time.time_ns
# Python 3.13 keeps logging's clock in nanoseconds (logging._startTime is an
# int) and derives created, msecs and relativeCreated from one time_ns();
# records follow whichever arithmetic this Python's stdlib uses.
_NS_CLOCK = isinstance(logging._startTime, int)  # type: ignore[attr-defined]
_get_ident = threading.get_ident
_current_thread = threading.current_thread
_level_names = logging._levelToName  # stdlib's table, so addLevelName is honoured
_has_task_name = sys.version_info >= (3, 12)


_process_name_cache: str | None = None


def _process_name() -> str | None:
    """
    stdlib's processName, cached per process once multiprocessing is loaded.

    multiprocessing names a child before its target runs and the cache is
    cleared at fork, so the cached name is the one stdlib would report unless
    the application renames the current process later.
    """
    global _process_name_cache
    if not logging.logMultiprocessing:
        return None
    if _process_name_cache is not None:
        return _process_name_cache
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return "MainProcess"
    try:
        name = str(mp.current_process().name)
    except Exception:
        return "MainProcess"
    _process_name_cache = name
    return name


def _task_name() -> str | None:
    if not getattr(logging, "logAsyncioTasks", False):
        return None
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        task = asyncio.current_task()
    except Exception:
        return None
    return task.get_name() if task is not None else None


#: The message a level method was called without: stdlib's ``info(msg="...")``
#: spelling, whose message is then the keyword's. The message is positional
#: only, so that ``info("event", msg="...")`` makes a field, not a TypeError.
#: (``log(level, msg)`` keeps stdlib's signature: its level may be a keyword.)
_NO_MSG: Any = object()


class _LevelMethod(Protocol):
    """
    The signature of :class:`Logger`'s level methods (``debug`` ... ``critical``).

    stdlib's, plus ``**kw``: key/value fields of the record.
    """

    def __call__(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = ...,
        stack_info: bool = ...,
        stacklevel: int = ...,
        extra: Mapping[str, object] | None = ...,
        **kw: Any,
    ) -> None: ...


def _level_method(level: int, exc_info: ExcInfo) -> _LevelMethod:
    """
    Make a level method of :class:`Logger`, logging at *level*.

    The method itself checks the level and calls ``Logger._record``, exactly
    as a hand-written one would: no wrapper, so no extra stack frame (the
    caller location and ``stacklevel`` count frames). ``exc_info`` is the
    default of its ``exc_info=`` (``True`` for ``exception``).
    """
    default = exc_info

    def method(
        self: Logger,
        msg: object = _NO_MSG,
        /,
        *args: object,
        exc_info: ExcInfo = default,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kw: Any,
    ) -> None:
        if self.isEnabledFor(level):
            if msg is _NO_MSG:
                msg = kw.pop("msg", None)
            self._record(level, msg, args, exc_info, extra, stack_info, stacklevel, None, kw)

    return method  # type: ignore[return-value]  # self is bound on access


class _BoundLevelMethod(Protocol):
    """The signature of :class:`BoundLogger`'s level methods."""

    def __call__(self, msg: object, /, *args: object, **kw: Any) -> None: ...


def _bound_level_method(level: int, exc_info: ExcInfo) -> _BoundLevelMethod:
    """Make a level method of :class:`BoundLogger` (see :func:`_level_method`)."""
    default = exc_info

    def method(self: BoundLogger, msg: object = _NO_MSG, /, *args: object, **kw: Any) -> None:
        if self._logger.isEnabledFor(level):
            if msg is _NO_MSG:
                msg = kw.pop("msg", None)
            self._dispatch(level, msg, args, kw, default)

    return method  # type: ignore[return-value]  # self is bound on access


_Method = TypeVar("_Method", bound=Callable[..., None])
# The level methods: name, level, and the default of their exc_info=.
_LEVEL_METHODS: tuple[tuple[str, int, ExcInfo], ...] = (
    ("debug", logging.DEBUG, None),
    ("info", logging.INFO, None),
    ("warning", logging.WARNING, None),
    ("error", logging.ERROR, None),
    ("exception", logging.ERROR, True),
    ("critical", logging.CRITICAL, None),
)


def _level_methods(owner: str, make: Callable[[int, ExcInfo], _Method]) -> tuple[_Method, ...]:
    """
    Make the level methods of class *owner* with *make*, given each one's level and exc_info.

    Return ``debug``, ``info``, ``warning``, ``error``, ``exception`` and
    ``critical``, in that order, named as a ``def`` in the class would be.
    """
    methods = []
    for name, level, exc_info in _LEVEL_METHODS:
        method = make(level, exc_info)
        method.__name__ = name
        method.__qualname__ = f"{owner}.{name}"
        methods.append(method)
    return tuple(methods)


class Logger(logging.Logger):
    """
    The class of every logger under ``structflow``.

    A :class:`logging.Logger` in every respect, plus:

    * ``logger.info("event", key=value)`` adds key/value fields to the record;
    * ``bind(**kw)``, ``unbind(*keys)`` and ``new(**kw)`` return a
      :class:`BoundLogger` whose records carry those keys;
    * records are built without stdlib's frame walk, which is most of the
      cost of an enabled call.

    .. versionadded:: 0.1.0
    """

    def bind(self, **kw: Any) -> BoundLogger:
        """Return a logger whose records carry *kw*."""
        return BoundLogger(self, kw)

    def new(self, **kw: Any) -> BoundLogger:
        """Return a logger whose records carry only *kw* (of its own keys)."""
        return BoundLogger(self, kw)

    def unbind(self, *keys: str) -> BoundLogger:
        """Return a logger without *keys* (a plain logger has none bound)."""
        return BoundLogger(self, {})

    def getChild(self, suffix: str) -> Logger:  # noqa: N802 - stdlib's name
        """Return the logger *suffix* levels below this one, a structflow logger like this one."""
        return _get(f"{self.name}.{suffix}")

    # The level methods take **kw, so they are redefined rather than inherited;
    # they are generated (see _level_method) and typed by _LevelMethod.
    debug, info, warning, error, exception, critical = _level_methods("Logger", _level_method)
    # stdlib's deprecated alias and its other name; kept so ported code runs.
    warn = warning
    fatal = critical

    def log(
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kw: Any,
    ) -> None:
        if not isinstance(level, int):
            if logging.raiseExceptions:
                raise TypeError("level must be an integer")
            return
        if self.isEnabledFor(level):
            self._record(level, msg, args, exc_info, extra, stack_info, stacklevel, None, kw)

    def setLevel(self, level: int | str) -> None:  # noqa: N802 - stdlib's name
        """Set the level, as stdlib does; for the ``structflow`` logger, tell who follows it."""
        super().setLevel(level)
        if self.name == ROOT_NAME:
            _root_level_changed()

    def getEffectiveLevel(self) -> int:  # noqa: N802 - stdlib's name
        """
        The level this logger logs at, found as stdlib finds it, with one difference.

        While structflow is configured, NOTSET on the ``structflow`` logger
        stands for the configured level rather than for the root logger's.
        A test tool that restores the ``structflow`` logger's level to NOTSET
        (pytest's ``caplog.set_level`` does, when the test set it before
        structflow configured itself) leaves structflow at its configured
        level, not at the root logger's ``WARNING``.
        """
        logger: logging.Logger | None = self
        while logger is not None:
            if logger.level:
                return logger.level
            if _configured_level is not None and logger.name == ROOT_NAME:
                return _configured_level
            logger = logger.parent
        return logging.NOTSET

    def callHandlers(self, record: logging.LogRecord) -> None:  # noqa: N802 - stdlib's name
        """
        Pass *record* to every handler, as stdlib does, but never raise.

        A handler whose ``emit`` raises (the seed page's ``requests.post``
        handler does when its receiver is down) is reported the way stdlib
        reports a handler error, through ``handler.handleError``, and the
        remaining handlers still get the record; the task that logged carries on.
        """
        logger: logging.Logger | None = self
        found = 0
        while logger is not None:
            for handler in logger.handlers:
                found += 1
                if record.levelno >= handler.level:
                    try:
                        handler.handle(record)
                    except RecursionError:
                        raise
                    except Exception:
                        handler.handleError(record)
            logger = logger.parent if logger.propagate else None
        if found == 0:
            last = logging.lastResort
            if last is not None:
                if record.levelno >= last.level:
                    last.handle(record)
            elif logging.raiseExceptions and not self.manager.emittedNoHandlerWarning:
                sys.stderr.write(f'No handlers could be found for logger "{self.name}"\n')
                self.manager.emittedNoHandlerWarning = True

    def _record(
        self,
        level: int,
        msg: object,
        args: tuple[object, ...],
        exc_info: ExcInfo,
        extra: Mapping[str, object] | None,
        stack_info: bool,
        stacklevel: int,
        bound: Mapping[str, Any] | None,
        kw: Mapping[str, Any] | None,
    ) -> None:
        """Build and handle one record; the caller has checked the level."""
        # Frames: caller -> level method -> _record -> build_record.
        self.handle(
            build_record(
                self.name, level, msg, args, exc_info, extra, stack_info, stacklevel + 1, bound, kw
            )
        )


# --- building a record ----------------------------------------------------------


def build_record(
    name: str,
    level: int,
    msg: object,
    args: tuple[object, ...],
    exc_info: ExcInfo,
    extra: Mapping[str, object] | None,
    stack_info: bool,
    stacklevel: int,
    bound: Mapping[str, Any] | None,
    kw: Mapping[str, Any] | None,
) -> logging.LogRecord:
    """
    Build one record of logger *name* as structflow's loggers make them.

    The caller's caller, *stacklevel* frames up, is the call site recorded
    (``pathname``, ``lineno``, ``funcName``). The fields are the run context,
    then *bound*, *kw* and *extra* (later ones win), stored as attributes and
    listed in ``structflow_fields``. With stdlib's record factory underneath,
    the record is built directly; a user's record factory is called instead,
    as stdlib would. The caller has checked the level and hands the record on.
    """
    try:
        f = _getframe(stacklevel + 1)
        code = f.f_code
        lineno = f.f_lineno
        entry = _code_cache.get(id(code))
        code_info = entry[1] if entry is not None and entry[0] is code else _code_info(code)
    except ValueError:
        code_info = _UNKNOWN_CALLER
        lineno = 0
    if args and len(args) == 1:
        first = args[0]
        # stdlib's rule for %(key)s arguments; the type test skips the
        # (slow) ABC check for the common scalar arguments.
        if type(first) not in _SCALARS and isinstance(first, Mapping) and first:
            args = first  # type: ignore[assignment]
    frame = _frame.get()
    stamp = frame.stamp
    if stamp[0] is not _log_attributes[0]:
        # [logging] log_attributes changed since this context was entered.
        stamp = frame.restamp()
    if bound or kw or extra:
        fields = dict(stamp[1])
        if bound:
            fields.update(bound)
        if kw:
            fields.update(kw)
        if extra:
            fields.update(extra)
        given = tuple(fields)
    else:
        fields = stamp[1]
        given = stamp[2]
    names = _stored_names(given) if given else given
    if exc_info:
        exc_info = normalize_exc_info(exc_info)
    if _fast_records and logging._logRecordFactory is _factory:  # type: ignore[attr-defined]
        record: logging.LogRecord = _new(LogRecord)
        d = _TEMPLATE.copy()
        d["name"] = name
        d["msg"] = msg
        d["args"] = args
        d["levelname"] = _level_names.get(level) or f"Level {level}"
        d["levelno"] = level
        d["pathname"], d["filename"], d["module"], d["funcName"] = code_info
        d["exc_info"] = exc_info or None
        d["lineno"] = lineno
        if _NS_CLOCK:
            # stdlib's LogRecord.__init__ on 3.13+, msecs' rounding guard included.
            ns = _time_ns()
            ct = ns / 1e9
            msecs = (ns % 1_000_000_000) // 1_000_000 + 0.0
            if msecs == 999.0 and int(ct) != ns // 1_000_000_000:
                msecs = 0.0
            d["created"] = ct
            d["msecs"] = msecs
            d["relativeCreated"] = (ns - logging._startTime) / 1e6  # type: ignore[attr-defined]
        else:
            ct = _time()
            d["created"] = ct
            d["msecs"] = int((ct - int(ct)) * 1000) + 0.0
            d["relativeCreated"] = (ct - logging._startTime) * 1000  # type: ignore[attr-defined]
        if logging.logThreads:
            d["thread"] = _get_ident()
            d["threadName"] = _current_thread().name
        d["processName"] = _process_name()
        if logging.logProcesses:
            d["process"] = _pid
        if _has_task_name:
            d["taskName"] = _task_name()
        d["structflow_fields"] = names
        record.__dict__ = d
    else:
        # A user installed their own record factory: honour it, as stdlib would.
        record = logging.getLogRecordFactory()(
            name,
            level,
            code_info[0],
            lineno,
            msg,
            args,
            exc_info or None,
            code_info[3],
            None,
        )
        d = record.__dict__
        d["structflow_fields"] = names
    if stack_info:
        record.stack_info = _format_stack(stacklevel + 1)
    if given:
        if names is given or names == given:
            d.update(fields)
        else:
            for stored, value in zip(names, fields.values(), strict=True):
                d[stored] = value
    return record


def _format_stack(skip: int) -> str:
    import traceback

    try:
        f = _getframe(skip + 1)
    except ValueError:
        return "Stack (most recent call last):\n"
    lines = traceback.format_stack(f)
    return "Stack (most recent call last):\n" + "".join(lines).rstrip("\n")


class BoundLogger:
    """
    A logger with keys bound to it, as returned by ``Logger.bind``.

    Supports the level methods of :class:`logging.Logger` (including ``%``
    arguments and ``exc_info``), ``bind``, ``unbind``, ``new``, and forwards
    every other attribute (``addHandler``, ``setLevel``, ``handlers``,
    ``isEnabledFor`` ...) to the underlying stdlib logger.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_context", "_logger")

    def __init__(self, logger: Logger, context: Mapping[str, Any]) -> None:
        self._logger = logger
        self._context = dict(context)

    def __repr__(self) -> str:
        return f"<BoundLogger {self._logger.name!r} {self._context!r}>"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)

    @property
    def name(self) -> str:
        return self._logger.name

    def bind(self, **kw: Any) -> BoundLogger:
        """Return a logger with *kw* bound in addition to the current keys."""
        return BoundLogger(self._logger, {**self._context, **kw})

    def unbind(self, *keys: str) -> BoundLogger:
        """Return a logger without *keys*; a key that is not bound is ignored."""
        return BoundLogger(self._logger, {k: v for k, v in self._context.items() if k not in keys})

    def try_unbind(self, *keys: str) -> BoundLogger:
        """Same as :meth:`unbind` (structlog's spelling for the forgiving form)."""
        return self.unbind(*keys)

    def new(self, **kw: Any) -> BoundLogger:
        """Return a logger with only *kw* bound."""
        return BoundLogger(self._logger, kw)

    def getChild(self, suffix: str) -> BoundLogger:  # noqa: N802 - stdlib's name
        """Return the logger *suffix* levels below, with the same keys bound."""
        return BoundLogger(self._logger.getChild(suffix), self._context)

    debug, info, warning, error, exception, critical = _level_methods(
        "BoundLogger", _bound_level_method
    )
    warn = warning
    fatal = critical

    def log(self, level: int, msg: object, *args: object, **kw: Any) -> None:
        if self._logger.isEnabledFor(level):
            self._dispatch(level, msg, args, kw, None)

    def _dispatch(
        self,
        level: int,
        msg: object,
        args: tuple[object, ...],
        kw: dict[str, Any],
        exc_info: ExcInfo,
    ) -> None:
        # Frames: caller -> level method -> _dispatch -> Logger._record.
        self._logger._record(
            level,
            msg,
            args,
            kw.pop("exc_info", exc_info),
            kw.pop("extra", None),
            kw.pop("stack_info", False),
            kw.pop("stacklevel", 1) + 1,
            self._context,
            kw,
        )


def _upgrade(logger: logging.Logger) -> Logger:
    if not isinstance(logger, Logger):
        # A plain Logger made under our name before structflow was used (for
        # example by `logging.getLogger("structflow.x")`): give it our class.
        # Handlers, level and filters stay as they are.
        logger.__class__ = Logger
    return logger  # type: ignore[return-value]


def _get(name: str) -> Logger:
    manager = logging.Logger.manager
    existing = manager.loggerDict.get(name)
    if isinstance(existing, Logger):
        return existing
    if isinstance(existing, logging.Logger):
        return _upgrade(existing)
    # Create it with our class without changing the class of anyone else's
    # loggers: the swap happens under logging's own lock, which getLogger
    # (re-entrantly) takes too.
    with logging._lock:  # type: ignore[attr-defined]
        saved = manager.loggerClass
        manager.loggerClass = Logger
        try:
            made = manager.getLogger(name)
        finally:
            manager.loggerClass = saved
    return _upgrade(made)
