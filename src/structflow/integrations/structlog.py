"""
structlog's own loggers, producing structflow records.

Code that logs with ``structlog.get_logger()`` (an application's or a
library's) gets the same plain :class:`logging.LogRecord` as every other
logger: ``getMessage()`` is the event text, structlog's bound keys and
``structlog.contextvars`` keys are fields listed in ``structflow_fields``
next to the run context, and the record is rendered by the configured
renderer and sent to structflow's destinations once.

With ``[logging] structlog = "auto"`` (the default) structflow configures
structlog this way when nobody else did; :func:`configure` does the same
explicitly, and :func:`processors` is the chain to end one's own structlog
configuration with.

Which handlers see a structlog event: those of the stdlib logger of the same
name when that logger is structflow's (``structflow...``) or one of the
``extra_loggers`` (and their children); for any other name, those of the
``structflow`` logger, the record keeping its own name. From there it
propagates as structflow's own records do, so it reaches each destination
once.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from types import FrameType
from typing import Any, TypeAlias

import structlog

from structflow import _setup
from structflow._config import Config
from structflow._loggers import ROOT_NAME, _get, build_record, on_root_level
from structflow.processors import safe_str

__all__ = ["configure", "emit_record", "processors"]

# structlog's method names and the stdlib levels they log at.
_METHOD_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_LEVEL_METHODS: dict[int, str] = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}

# Keys of an event dict that are parts of the record rather than fields.
_META = frozenset(
    {"event", "positional_args", "exc_info", "exception", "stack_info", "stack", "logger", "level"}
)

_INTERNAL_PREFIXES = ("structlog.", "structflow.integrations.")

# structlog keeps one ContextVar per key bound with bind_contextvars; while it
# has none, no event can carry any and merging them is skipped.
_contextvars_table: Mapping[str, Any] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_async_calling_stack: Any = getattr(structlog.contextvars, "_ASYNC_CALLING_STACK", None)
_CONTEXTVAR_PREFIX_LEN = len("structlog_")


# --- where a structlog event goes -------------------------------------------------

_routes: dict[str, logging.Logger] = {}
_extra_loggers: tuple[str, ...] = ()
# The level under which structflow's bound logger methods do nothing.
_min_level = logging.INFO


def _route(name: str) -> logging.Logger:
    """Return the stdlib logger whose handlers receive the events of logger *name*."""
    target = _routes.get(name)
    if target is not None:
        return target
    if name == ROOT_NAME or name.startswith(ROOT_NAME + "."):
        target = _get(name)
    elif any(name == extra or name.startswith(extra + ".") for extra in _extra_loggers):
        target = logging.getLogger(name)
    else:
        target = _get(ROOT_NAME)
    if len(_routes) < 4096:
        _routes[name] = target
    return target


def _refresh(cfg: Config) -> None:
    """Take the extra loggers of *cfg* (structflow applies it), and the level it set."""
    global _extra_loggers
    _extra_loggers = tuple(cfg.logging.extra_loggers)
    _routes.clear()
    _follow_root_level()


def _follow_root_level() -> None:
    """Make the level methods follow the level the ``structflow`` logger logs at now."""
    _set_level(_get(ROOT_NAME).getEffectiveLevel())


def _level_of(method_name: str) -> int:
    level = _METHOD_LEVELS.get(method_name)
    if level is not None:
        return level
    found = logging.getLevelName(str(method_name).upper())  # levels added with addLevelName
    return found if isinstance(found, int) else logging.INFO


def _is_internal(module: str) -> bool:
    return module == "structlog" or module.startswith(_INTERNAL_PREFIXES)


def _app_frame() -> tuple[int, str, FrameType | None]:
    """
    Find the frame of the call that logged: the first outside structlog and this integration.

    Returns:
        (how many frames above the caller of this function it is, its
        module's name, and the frame itself when it is not on this thread's
        stack, else None). structlog's ``await log.ainfo(...)`` logs from a
        thread pool and remembers the calling frame; that frame is used then.
    """
    f: FrameType | None = sys._getframe(1)
    n = 0
    module = "?"
    while f is not None:
        name = f.f_globals.get("__name__")
        module = name if isinstance(name, str) else "?"
        if not _is_internal(module):
            break
        f = f.f_back
        n += 1
    calling = _async_calling_stack.get(None) if _async_calling_stack is not None else None
    if calling is not None:
        name = calling.f_globals.get("__name__")
        return n, name if isinstance(name, str) else "?", calling
    return n, module, None


def _caller_name(depth: int) -> str:
    """The module name of the frame *depth* frames above the caller."""
    try:
        module = sys._getframe(depth + 1).f_globals.get("__name__")
    except ValueError:
        return "?"
    return module if isinstance(module, str) else "?"


def _truthy(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:
        return False


# What an event dict holds besides its fields: (message, % arguments, exc_info,
# stack_info, exception text, stack text, logger name). A plain tuple: the
# fast path makes one per call.
_Parts: TypeAlias = tuple[Any, tuple[Any, ...], Any, bool, "str | None", "str | None", "str | None"]


def _take_parts(fields: dict[str, Any], level: int) -> _Parts:
    """
    Remove from *fields* the keys the record itself holds, as structlog means them.

    ``event`` is the message and ``positional_args`` its ``%`` arguments
    (structlog's stdlib logger puts them there); ``exc_info`` and
    ``stack_info`` are the record's; ``exception`` and ``stack`` texts
    (rendered by structlog's ``format_exc_info`` and ``StackInfoRenderer``)
    become its traceback and stack; a ``logger`` name names the record; a
    ``level`` equal to the call's level (``add_log_level``) is dropped.
    """
    pop = fields.pop
    msg = pop("event", None)
    if msg is None:
        # structlog's EventRenamer moved the event: to "msg" or "message", as
        # the common renames go.
        for key in ("message", "msg"):
            renamed = fields.get(key)
            if isinstance(renamed, str):
                msg = pop(key)
                break
    args = pop("positional_args", ())
    if not isinstance(args, tuple):
        args = tuple(args) if isinstance(args, list) else (args,)
    exc_info = pop("exc_info", None)
    if not _truthy(exc_info):
        exc_info = None
    stack_info = _truthy(pop("stack_info", False))
    exc_text = fields.get("exception")
    if isinstance(exc_text, str):
        del fields["exception"]
    else:
        exc_text = None
    stack_text = fields.get("stack")
    if isinstance(stack_text, str):
        del fields["stack"]
    else:
        stack_text = None
    name = fields.get("logger")
    if isinstance(name, str) and name:
        del fields["logger"]
    else:
        name = None
    shown = fields.get("level")
    if isinstance(shown, str) and shown.lower() == logging.getLevelName(level).lower():
        del fields["level"]
    return (msg, args, exc_info, stack_info, exc_text, stack_text, name)


def _as_fields(event_dict: Any) -> dict[str, Any]:
    """Return what the processor chain produced as a fresh dict of string keys."""
    if isinstance(event_dict, Mapping):
        items = list(event_dict.items())
    elif isinstance(event_dict, bytes | bytearray):
        items = [("event", bytes(event_dict).decode("utf-8", "replace"))]
    elif isinstance(event_dict, tuple) and len(event_dict) == 2:
        # A processor returned (args, kwargs) for the wrapped logger.
        args, kwargs = event_dict
        items = list(kwargs.items()) if isinstance(kwargs, Mapping) else []
        if isinstance(args, tuple) and args:
            items.append(("event", args[0]))
            if len(args) > 1:
                items.append(("positional_args", args[1:]))
    else:
        items = [("event", event_dict)]
    return {k if type(k) is str else safe_str(k): v for k, v in items}


def _merge_contextvars(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``structlog.contextvars`` keys that *fields* lacks, as ``merge_contextvars`` does."""
    merged = dict(fields)
    table = _contextvars_table
    if table is None:
        structlog.contextvars.merge_contextvars(None, "", merged)
        return merged
    for key, var in list(table.items()):
        value = var.get()
        if value is not Ellipsis and key[_CONTEXTVAR_PREFIX_LEN:] not in merged:
            merged[key[_CONTEXTVAR_PREFIX_LEN:]] = value
    return merged


def _deliver(
    name: str, level: int, parts: _Parts, fields: Mapping[str, Any], depth: int, frame: Any
) -> None:
    """Build the record and hand it to the handlers of its route (if its level passes)."""
    target = _routes.get(name) or _route(name)
    if not target.isEnabledFor(level):
        return
    msg, args, exc_info, stack_info, exc_text, stack_text, _ = parts
    # Frames: caller (depth above) -> ... -> _deliver's caller -> _deliver -> build_record.
    record = build_record(
        name, level, msg, args, exc_info, None, stack_info, depth + 1, None, fields
    )
    if exc_text is not None:
        record.exc_text = exc_text
    if stack_text is not None:
        record.stack_info = stack_text
    if frame is not None:
        _set_call_site(record, frame)
    target.handle(record)


def _set_call_site(record: logging.LogRecord, frame: FrameType) -> None:
    code = frame.f_code
    record.pathname = code.co_filename
    record.filename = os.path.basename(code.co_filename)
    record.module = os.path.splitext(record.filename)[0]
    record.funcName = code.co_name
    record.lineno = frame.f_lineno or 0


def _emit_event(logger: Any, method_name: str, event_dict: Any, level: int | None = None) -> None:
    """Turn the result of a processor chain into a record and deliver it."""
    depth, module, frame = _app_frame()
    if level is None:
        level = _level_of(method_name)
    fields = _as_fields(event_dict)
    parts = _take_parts(fields, level)
    name = parts[6] or _name_of(logger) or module
    _deliver(name, level, parts, fields, depth, frame)


def _name_of(logger: Any) -> str | None:
    name = getattr(logger, "name", None)
    return name if isinstance(name, str) and name else None


def _internal_error() -> None:
    # As stdlib reports a handler's failure: the code that logged carries on.
    if logging.raiseExceptions:
        try:
            sys.stderr.write("--- structflow: a structlog event could not be logged ---\n")
            traceback.print_exc(file=sys.stderr)
        except Exception:
            pass


# --- the processor chain ------------------------------------------------------------


def emit_record(logger: Any, method_name: str, event_dict: Any) -> Any:
    """
    The last processor: build the structflow record of the event and deliver it.

    The record goes to the handlers of its logger's route (see the module
    documentation), filtered by structflow's levels; the event is then
    dropped (:class:`structlog.DropEvent`), so the wrapped logger is never
    called and the event is written once. Nothing else is ever raised.

    .. versionadded:: 0.1.0
    """
    try:
        if _setup._current is None:
            _setup.ensure_configured()
        _emit_event(logger, method_name, event_dict)
    except Exception:
        _internal_error()
    raise structlog.DropEvent


def processors() -> list[Callable[..., Any]]:
    """
    Return structflow's processor chain, to end a structlog configuration with.

    ``structlog.contextvars.merge_contextvars`` then :func:`emit_record`::

        structlog.configure(
            processors=[add_app_version, *structflow.integrations.structlog.processors()],
        )

    Processors that add what every record already has (``add_log_level``,
    ``add_logger_name``, ``TimeStamper``, ``format_exc_info``, a renderer)
    are not needed before it: structflow's formatters render those.

    .. versionadded:: 0.1.0
    """
    return [structlog.contextvars.merge_contextvars, emit_record]


# The chain of structflow's own configuration; its bound logger recognises it
# and builds the record without running the processors one by one.
_chain = processors()


# --- structflow's bound logger and logger factory ---------------------------------------


class _Target:
    """What structflow's logger factory makes: the name of a structlog logger."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<structflow logger {self.name!r}>"

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - stdlib's name
        """Whether an event at *level* would be delivered (``filter_by_level`` asks)."""
        return level >= _min_level and _route(self.name).isEnabledFor(level)

    def getEffectiveLevel(self) -> int:  # noqa: N802 - stdlib's name
        return max(_min_level, _route(self.name).getEffectiveLevel())

    @property
    def disabled(self) -> bool:
        """Whether the stdlib logger its events go to is disabled (``filter_by_level`` asks)."""
        return _route(self.name).disabled

    def __getattr__(self, method_name: str) -> Callable[..., None]:
        # A level method, asked for only when a chain without emit_record
        # hands its rendered output to the wrapped logger: that output
        # becomes the message.
        if method_name not in _METHOD_LEVELS and not isinstance(
            logging.getLevelName(method_name.upper()), int
        ):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {method_name!r}")
        return functools.partial(_emit_rendered, self, method_name)


def _emit_rendered(target: _Target, method_name: str, *args: Any, **kw: Any) -> None:
    try:
        if len(args) == 1 and not kw and isinstance(args[0], str | bytes | bytearray):
            _write_rendered(args[0])
        else:
            _emit_event(target, method_name, (args, kw))
    except Exception:
        _internal_error()


_write_lock = threading.Lock()


def _write_rendered(rendered: str | bytes | bytearray) -> None:
    """
    Write an event the application's own processors rendered, as structlog's default logger does.

    A chain configured after structflow's (``structlog.configure(processors=
    [..., JSONRenderer()])``) wins: its text is one line on standard output
    (``PrintLogger``; ``BytesLogger`` for bytes), not the message of a record
    that structflow would render a second time.
    """
    with _write_lock:
        out = sys.stdout
        if isinstance(rendered, str):
            out.write(rendered + "\n")
        else:
            out.flush()
            out.buffer.write(bytes(rendered) + b"\n")
        out.flush()


class _LoggerFactory:
    """
    Name structlog loggers as ``structlog.stdlib.get_logger()`` does.

    ``structlog.get_logger("name")`` is *name*; ``structlog.get_logger()`` is
    the module that first uses it.
    """

    def __call__(self, *args: Any) -> _Target:
        if args and args[0] is not None:
            first = args[0]
            return _Target(first if isinstance(first, str) else safe_str(first))
        return _Target(_app_frame()[1])

    def __repr__(self) -> str:
        return "structflow.integrations.structlog._LoggerFactory()"


def _nop(self: Any, _e: Any = None, _a0: Any = None, _a1: Any = None, /, *a: Any, **k: Any) -> None:
    # Positional-only parameters: the common calls build no tuple, and no
    # keyword argument can clash with them.
    return None


async def _anop(
    self: Any, _e: Any = None, _a0: Any = None, _a1: Any = None, /, *a: Any, **k: Any
) -> None:
    return None


class _BoundLogger(structlog.BoundLoggerBase):
    """
    structlog's filtering bound logger, producing structflow records.

    The level methods of levels below structflow's ``level`` are no-ops (as
    in ``structlog.make_filtering_bound_logger``); they are reassigned on the
    class whenever structflow applies a configuration, so loggers already
    made follow a new level too. Enabled calls build the record directly
    when the processor chain is structflow's own.
    """

    def _emit(
        self, level: int, method_name: str, event: Any, args: tuple[Any, ...], kw: dict[str, Any]
    ) -> Any:
        # Frames: caller -> level method -> _emit -> _deliver.
        try:
            if _setup._current is None:
                _setup.ensure_configured()
            procs = self._processors
            if procs is not _chain or len(_chain) != 2:
                return self._run_chain(level, method_name, event, args, kw)
            ctx = self._context
            fields: Mapping[str, Any] = {**ctx, **kw} if kw else ctx
            if _contextvars_table is None or _contextvars_table:
                fields = _merge_contextvars(fields)
            parts: _Parts
            if _META.isdisjoint(fields):
                parts = (event, args, None, False, None, None, None)
            else:
                own = dict(fields)
                if event is not None:
                    own["event"] = event
                if args:
                    own["positional_args"] = args
                parts = _take_parts(own, level)
                fields = own
            try:
                name = parts[6] or self._logger.name
            except AttributeError:
                name = None
            if type(name) is not str or not name:
                name = _caller_name(2)
            _deliver(name, level, parts, fields, 2, None)
        except Exception:
            _internal_error()
        return None

    def _run_chain(
        self, level: int, method_name: str, event: Any, args: tuple[Any, ...], kw: dict[str, Any]
    ) -> Any:
        """
        Run a processor chain that is not structflow's own.

        What it makes is delivered as a structflow record, unless the bound
        logger wraps a logger of someone else's (``structlog.wrap_logger``):
        that logger is then called with it, as structlog does.
        """
        event_dict: Any = self._context.copy()
        event_dict.update(kw)
        if args:
            # As structlog's filtering loggers do before their processors run;
            # arguments that do not fit stay apart, and the record shows both.
            try:
                fit = args[0] if len(args) == 1 and isinstance(args[0], Mapping) else args
                event = event % fit
            except Exception:
                event_dict["positional_args"] = args
        if event is not None:
            event_dict["event"] = event
        proc: Any = None
        try:
            for proc in self._processors:
                event_dict = proc(self._logger, method_name, event_dict)
        except structlog.DropEvent:
            return None
        except Exception as exc:
            if not isinstance(event_dict, MutableMapping):
                event_dict = {"event": event}
            event_dict["processor_error"] = (
                f"{getattr(proc, '__qualname__', type(proc).__qualname__)} raised "
                f"{type(exc).__name__}: {safe_str(exc)}"
            )
        logger = self._logger
        if type(logger) is _Target:
            if isinstance(event_dict, str | bytes | bytearray):
                _write_rendered(event_dict)
            else:
                _emit_event(logger, method_name, event_dict, level)
            return None
        if isinstance(event_dict, str | bytes | bytearray):
            return getattr(logger, method_name)(event_dict)
        if isinstance(event_dict, tuple):
            return getattr(logger, method_name)(*event_dict[0], **event_dict[1])
        return getattr(logger, method_name)(**event_dict)

    def log(self, level: Any, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        """Log *event* at *level* (a number, or a level's name)."""
        number = _level_of(level.lower()) if isinstance(level, str) else level
        if type(number) is int and number >= _min_level:
            return self._emit(number, _LEVEL_METHODS.get(number, "log"), event, args, kw)
        return None

    async def alog(self, level: Any, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        """The ``await``-able :meth:`log`; it logs at once, as the other methods do."""
        number = _level_of(level.lower()) if isinstance(level, str) else level
        if type(number) is int and number >= _min_level:
            return self._emit(number, _LEVEL_METHODS.get(number, "log"), event, args, kw)
        return None

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at *level* would be delivered."""
        return level >= _min_level and _route(self._name()).isEnabledFor(level)

    def get_effective_level(self) -> int:
        """The lowest level that is delivered."""
        return max(_min_level, _route(self._name()).getEffectiveLevel())

    def _name(self) -> str:
        name = _name_of(self._logger)
        return name if name is not None else ROOT_NAME


def _make_methods(name: str, level: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    # Processors and wrapped loggers see the level's own method name, as with
    # structlog's filtering loggers (`exception` logs through `error`).
    method_name = _LEVEL_METHODS[level]
    exc_default = name == "exception"

    def meth(self: _BoundLogger, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        if exc_default:
            kw.setdefault("exc_info", True)
        return self._emit(level, method_name, event, args, kw)

    async def ameth(self: _BoundLogger, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        # Logging never blocks, so the await-able methods log at once, in the
        # caller's thread and context.
        if exc_default:
            kw.setdefault("exc_info", True)
        return self._emit(level, method_name, event, args, kw)

    meth.__name__, ameth.__name__ = name, f"a{name}"
    return meth, ameth


_ENABLED: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    name: _make_methods(name, level) for name, level in _METHOD_LEVELS.items()
}

_level_lock = threading.Lock()


def _set_level(min_level: int) -> None:
    """Make the level methods below *min_level* no-ops, on every bound logger at once."""
    global _min_level
    with _level_lock:
        _min_level = min_level
        for name, level in _METHOD_LEVELS.items():
            on = level >= min_level
            sync, coro = _ENABLED[name]
            setattr(_BoundLogger, name, sync if on else _nop)
            setattr(_BoundLogger, f"a{name}", coro if on else _anop)


_set_level(logging.INFO)
# A level set on the structflow logger (setLevel, pytest's caplog.set_level,
# structflow.testing.capture_logs(level=...)) reaches structlog's loggers too.
on_root_level(_follow_root_level)


# --- configuring structlog --------------------------------------------------------------

_STRUCTLOG_KEYS = (
    "processors",
    "wrapper_class",
    "context_class",
    "logger_factory",
    "cache_logger_on_first_use",
)
_config_lock = threading.RLock()
# What structflow passed to structlog.configure, while it is in effect.
_ours: dict[str, Any] | None = None
# Whether that came from configure() (kept when structflow re-applies its config).
_explicit = False
# structlog's configuration before structflow's: (was it configured, its settings).
_saved: tuple[bool, dict[str, Any]] | None = None
_factory = _LoggerFactory()


def _is_ours() -> bool:
    if _ours is None or not structlog.is_configured():
        return False
    current = structlog.get_config()
    return all(current.get(key) is value for key, value in _ours.items())


def _activate(force: bool, overrides: Mapping[str, Any] | None = None) -> None:
    """
    Configure structlog for structflow (structflow's set-up calls it).

    Without *force*, a configuration someone else made is left alone. A
    configuration of structflow's that is still in effect is kept, so
    applying structflow's configuration again stacks nothing.
    """
    global _ours, _saved, _explicit
    with _config_lock:
        ours = _is_ours()
        if overrides is None and ours:
            return
        if not force and not ours and structlog.is_configured():
            return
        settings: dict[str, Any] = {
            "processors": _chain,
            "wrapper_class": _BoundLogger,
            "logger_factory": _factory,
            "cache_logger_on_first_use": True,
        }
        given = dict(overrides or {})
        chain = given.pop("processors", None)
        # structlog.configure() reads None as "leave as it is"; here it means the default.
        settings.update({key: value for key, value in given.items() if value is not None})
        if chain is not None:
            chain = list(chain)
            if emit_record not in chain:
                chain.extend(processors())
            settings["processors"] = chain
        if not ours:
            _saved = (structlog.is_configured(), structlog.get_config())
        structlog.configure(**settings)
        _ours = settings
        _explicit = overrides is not None


def _deactivate(explicit_too: bool) -> None:
    """Give structlog back the configuration it had before structflow's."""
    global _ours, _saved, _explicit
    with _config_lock:
        if _explicit and not explicit_too:
            return
        if _is_ours() and _saved is not None:
            was_configured, settings = _saved
            if was_configured:
                structlog.configure(**settings)
            else:
                structlog.reset_defaults()
        _ours = None
        _saved = None
        _explicit = False
        _routes.clear()


def configure(**structlog_kwargs: Any) -> None:
    """
    Configure structlog so that its loggers produce structflow records.

    What ``[logging] structlog = true`` does, explicitly: structlog's
    processors, wrapper class and logger factory are replaced by
    structflow's. Keyword arguments are those of :func:`structlog.configure`
    and take precedence; ``processors`` given run first and structflow's
    chain (:func:`processors`) is appended unless they already end with it.
    structflow's own configuration is applied first if it was not yet. Made
    this way, the set-up stays when structflow applies its configuration
    again, whatever ``[logging] structlog`` says.

    Raises:
        TypeError: an argument that :func:`structlog.configure` does not take.

    .. versionadded:: 0.1.0
    """
    unknown = sorted(set(structlog_kwargs) - set(_STRUCTLOG_KEYS))
    if unknown:
        raise TypeError(
            f"structflow.integrations.structlog.configure() got {', '.join(map(repr, unknown))}; "
            f"it takes the arguments of structlog.configure(): {', '.join(_STRUCTLOG_KEYS)}"
        )
    _setup.ensure_configured()
    _activate(force=True, overrides=structlog_kwargs)
