"""
Applying the configuration to loggers.

structflow touches only what it owns: the ``structflow`` logger tree, the
loggers named in ``extra_loggers`` (which the user asked it to manage), and
the handlers it added itself. Configuration is read at first use and
``configure()`` re-reads and re-applies it idempotently.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from structflow import _capture, _context, _loggers
from structflow._config import (
    HANDLER_SECTIONS,
    Config,
    ConfigError,
    level_number,
    load_config,
    set_applied,
)
from structflow._loggers import ROOT_NAME, Logger, _get, install_record_factory
from structflow.handlers.stream import StreamHandler
from structflow.integrations import _structlog_setup
from structflow.processors import resolve_processor

__all__ = ["config", "configure", "ensure_configured", "get_logger"]

_lock = threading.RLock()
_current: Config | None = None
# The keyword arguments of the configure() call in force ({} before any).
_overrides: dict[str, Any] = {}
# Every handler structflow added, with the logger it was added to.
_owned: list[tuple[logging.Logger, logging.Handler]] = []
# Shipping handlers by (section, their settings), reused while settings stay equal.
_shipping: dict[str, tuple[Any, logging.Handler]] = {}
# extra logger name -> (level, propagate) it had before structflow managed it
_extra_saved: dict[str, tuple[int, bool]] = {}
_root_saved_propagate: bool | None = None

OWNED_ATTR = "_structflow_owned"


def _formatter_options(cfg: Config) -> dict[str, Any]:
    lg = cfg.logging
    processors = []
    for i, spec in enumerate(lg.processors):
        try:
            processors.append(resolve_processor(spec, f"processors[{i}]"))
        except ValueError as exc:
            source = cfg.logging.source("processors")
            raise ConfigError(
                f"{source.subject('logging.processors', lg.processors)}: {exc}."
            ) from None
    return {
        "fmt": lg.format,
        "datefmt": lg.datefmt,
        "json_schema": lg.json_schema,
        "redact_keys": list(lg.redact_keys),
        "max_message_bytes": lg.max_message_bytes,
        "processors": processors,
    }


def _stream_formatter(cfg: Config, options: dict[str, Any]) -> logging.Formatter:
    """The formatter of the stream handler: the configured renderer."""
    renderer = cfg.logging.renderer
    stream_options = dict(options)
    if renderer == "console":
        # Colours only on a terminal; and the console keeps its own
        # millisecond clock unless the user chose a datefmt.
        stream_options["stream"] = cfg.logging.stream
        if cfg.logging.source("datefmt").kind == "default":
            stream_options.pop("datefmt")
    return _formatter(cfg, renderer, stream_options)


def _shipping_formatter(
    cfg: Config, options: dict[str, Any], *, store: bool = False
) -> logging.Formatter:
    """
    The formatter of a shipping handler: JSON, without format and datefmt.

    A store's is always the default JSON layout, which its entries are made of.
    """
    json_options = {k: v for k, v in options.items() if k not in ("fmt", "datefmt")}
    if store:
        json_options["json_schema"] = "default"
    return _formatter(cfg, "json", json_options)


def _formatter(cfg: Config, renderer: str, options: dict[str, Any]) -> logging.Formatter:
    """
    Make a formatter of *renderer* from the configuration's *options*.

    Raises:
        ConfigError: the formatter refused them, naming where ``format`` and
            ``datefmt`` came from.
    """
    from structflow.formatters import formatter_for

    try:
        return formatter_for(renderer, **options)
    except (TypeError, ValueError) as exc:
        lg = cfg.logging
        subjects = [lg.source(k).subject(f"logging.{k}", lg[k]) for k in ("format", "datefmt")]
        raise ConfigError(
            f"{'; '.join(subjects)}: the {renderer} formatter cannot be made ({exc})."
        ) from None


def check_formatters(cfg: Config) -> None:
    """
    Make every formatter :func:`configure` would use with *cfg*, attaching nothing.

    Raises:
        ConfigError: one of them cannot be made.
    """
    options = _formatter_options(cfg)
    if cfg.logging.stream != "none":
        _stream_formatter(cfg, options)
    if any(name in cfg.logging for name in HANDLER_SECTIONS):
        _shipping_formatter(cfg, options)


def _make_stream_handler(cfg: Config, options: dict[str, Any]) -> logging.Handler | None:
    if cfg.logging.stream == "none":
        return None
    handler = StreamHandler(cfg.logging.stream)
    handler.setFormatter(_stream_formatter(cfg, options))
    return handler


def _shipping_handlers(cfg: Config, options: dict[str, Any]) -> list[logging.Handler]:
    """Build (or reuse, when their settings did not change) the shipping handlers."""
    wanted: dict[str, tuple[Any, Callable[..., logging.Handler]]] = {}
    section: Mapping[str, Any]
    if "http" in cfg.logging:
        from structflow.handlers import HTTPHandler

        section = cfg.logging.http
        wanted["http"] = (dict(section), HTTPHandler)
    if "syslog" in cfg.logging:
        from structflow.handlers import SyslogHandler

        section = cfg.logging.syslog
        wanted["syslog"] = (dict(section), SyslogHandler)
    if "store" in cfg.logging:
        from structflow.handlers import StoreHandler

        section = cfg.logging.store
        wanted["store"] = (dict(section), StoreHandler)
    result = []
    for name in list(_shipping):
        settings, handler = _shipping[name]
        if name not in wanted or wanted[name][0] != settings:
            del _shipping[name]
            handler.close()
    for name, (settings, cls) in wanted.items():
        # A store reads structflow's own JSON layout, whatever json_schema says.
        formatter = _shipping_formatter(cfg, options, store=name == "store")
        if name in _shipping:
            handler = _shipping[name][1]
        else:
            handler = build_handler(cfg, name, cls, settings)
            setattr(handler, OWNED_ATTR, True)
            _shipping[name] = (settings, handler)
        handler.setFormatter(formatter)
        result.append(handler)
    return result


def _required(cls: Callable[..., Any]) -> set[str]:
    """The keyword arguments *cls* cannot do without."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return set()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.default is p.empty and p.kind in named}


def _text_keys(cls: Callable[..., Any]) -> frozenset[str]:
    """
    The keyword arguments *cls* takes as text only (``str``, or ``str | None``).

    Keyword arguments typed by ``**options: Unpack[SomeTypedDict]`` count
    by the TypedDict's own annotations.
    """
    init = getattr(cls, "__init__", cls)
    try:
        hints = typing.get_type_hints(init)
        extra = inspect.signature(init).parameters.values()
        for p in extra:
            if p.kind is inspect.Parameter.VAR_KEYWORD and p.name in hints:
                (options,) = typing.get_args(hints.pop(p.name)) or (None,)
                if options is not None and typing.is_typeddict(options):
                    hints.update(typing.get_type_hints(options))
    except Exception:  # annotations it cannot evaluate: no key is taken as text
        return frozenset()
    text = {str, type(None)}
    return frozenset(
        key
        for key, hint in hints.items()
        if hint is str or (typing.get_args(hint) and set(typing.get_args(hint)) <= text)
    )


def build_handler(
    cfg: Config, name: str, cls: Callable[..., logging.Handler], settings: Mapping[str, Any]
) -> logging.Handler:
    """
    Make the handler of the ``[logging.<name>]`` table from its *settings*.

    Raises:
        ConfigError: the handler refused a value; the message names the
            source of that key (of every key of the table when the handler's
            message names none of them) and the handler's own words.
    """
    table = cfg.logging[name]
    missing = _required(cls) - set(settings)
    if missing:
        key = sorted(missing)[0]
        where = "; ".join(sorted({str(table.source(k)) for k in settings})) or "structflow"
        raise ConfigError(
            f"{where}: [logging.{name}] has no {key}, which {getattr(cls, '__name__', cls)} "
            f"needs; set {key} in [logging.{name}] or STRUCTFLOW__LOGGING__{name.upper()}__"
            f"{key.upper()}"
        )
    # An environment variable read as a number or a bool ("12345", "true")
    # for a key the handler takes as text: the text, as it was set.
    text = _text_keys(cls)
    for key, value in settings.items():
        source = table.source(key)
        if key in text and source.kind == "env" and not isinstance(value, str):
            settings = {**settings, key: source.text}
    try:
        return cls(**settings)
    except (TypeError, ValueError) as exc:
        # A handler's message starts "<Handler>: <key>=<value> ...".
        named = re.match(r"\w+: (\w+)[=\[ ]", str(exc))
        keys = [named.group(1)] if named and named.group(1) in settings else list(settings)
        where = "; ".join(sorted({str(table.source(k)) for k in keys}))
        raise ConfigError(f"{where}: [logging.{name}] {exc}") from None


def _detach_owned() -> None:
    for logger, handler in _owned:
        logger.removeHandler(handler)
        if handler not in [h for _, h in _shipping.values()]:
            handler.close()
    _owned.clear()


def _apply(cfg: Config, first_use: bool = False) -> None:
    global _root_saved_propagate
    options = _formatter_options(cfg)
    stream = _make_stream_handler(cfg, options)
    shipping = _shipping_handlers(cfg, options)
    handlers = [h for h in (stream, *shipping) if h is not None]
    level = level_number(cfg.logging.level)

    _detach_owned()
    install_record_factory()
    _context.set_log_attributes(cfg.logging.log_attributes)
    root = _get(ROOT_NAME)
    _loggers.set_configured_level(level)
    if first_use and root.level != logging.NOTSET:
        # A level set on the structflow logger before structflow's first use
        # (pytest's caplog.set_level(..., logger="structflow"), or the
        # application's own setLevel) is kept; configure() sets it.
        root.setLevel(root.level)  # clears the loggers' level caches
    else:
        root.setLevel(level)
    if _root_saved_propagate is None:
        _root_saved_propagate = root.propagate
    # With a handler of our own, records stop here so they are not printed
    # twice by the application's root handlers; with stream = "none" and no
    # shipping they propagate as stdlib records normally do.
    root.propagate = _root_saved_propagate if not handlers else False
    targets: list[logging.Logger] = [root]

    wanted_extra = list(dict.fromkeys(cfg.logging.extra_loggers))
    for name in list(_extra_saved):
        if name not in wanted_extra:
            lg = logging.getLogger(name)
            lg.setLevel(_extra_saved[name][0])
            lg.propagate = _extra_saved[name][1]
            del _extra_saved[name]
    for name in wanted_extra:
        lg = logging.getLogger(name)
        if name not in _extra_saved:
            _extra_saved[name] = (lg.level, lg.propagate)
        lg.setLevel(level)
        if handlers:
            lg.propagate = False
        targets.append(lg)

    forward = bool(handlers) and _capture.under_pytest()
    for logger in targets:
        mine = list(handlers)
        if forward:
            # Records stop at this logger: pytest's log capture gets them all the same.
            mine.append(_capture.CaptureForwarder(logger, console=stream is not None))
        for handler in mine:
            logger.addHandler(handler)
            setattr(handler, OWNED_ATTR, True)
            _owned.append((logger, handler))
    _structlog_setup.apply(cfg)


def configure(**overrides: Any) -> Config:
    """
    Re-read the config file and environment, apply *overrides*, and re-apply.

    Keyword arguments are ``[logging]`` keys (``level="DEBUG"``,
    ``renderer="json"``, ...) plus ``http={...}``, ``syslog={...}`` and
    ``store={...}`` for the shipping handlers (``None`` removes one). Calling it again with the same
    values changes nothing and never duplicates handlers.

    Returns:
        The effective configuration (also ``structflow.config``).

    Raises:
        ConfigError: a value is invalid; nothing is changed.

    .. versionadded:: 0.1.0
    """
    return _configure(overrides, first_use=False)


def _configure(overrides: Mapping[str, Any], first_use: bool) -> Config:
    global _current, _overrides
    with _lock:
        cfg = load_config({**overrides})
        _apply(cfg, first_use)
        _current = cfg
        _overrides = dict(overrides)
        set_applied(cfg)
        return cfg


def configured_overrides() -> dict[str, Any]:
    """The keyword arguments of the :func:`configure` call in force ({} before any)."""
    with _lock:
        return dict(_overrides)


def ensure_configured() -> Config:
    """Read and apply the configuration on first use; afterwards a no-op."""
    cfg = _current
    if cfg is not None:
        return cfg
    with _lock:
        if _current is not None:
            return _current
        return _configure({}, first_use=True)


def reset() -> None:
    """
    Remove everything structflow added and forget the configuration.

    Used by tests and by :func:`structflow.testing` helpers; the next use
    reads the configuration again.
    """
    global _current, _overrides, _root_saved_propagate
    with _lock:
        _detach_owned()
        for _settings, handler in _shipping.values():
            handler.close()
        _shipping.clear()
        for name, (level, propagate) in _extra_saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.propagate = propagate
        _extra_saved.clear()
        root = logging.getLogger(ROOT_NAME)
        if _root_saved_propagate is not None:
            root.propagate = _root_saved_propagate
        _root_saved_propagate = None
        _loggers.set_configured_level(None)
        root.setLevel(logging.NOTSET)
        _context.set_log_attributes(())
        _structlog_setup.reset()
        _current = None
        _overrides = {}
        set_applied(None)


def get_logger(name: str | None = None) -> Logger:
    """
    Return the structflow root logger, or the logger of task or flow *name*.

    ``get_logger()`` is the logger ``structflow``; ``get_logger("Task B")`` is
    ``structflow.Task B``, the logger a task named "Task B" uses during its
    run, to which handlers can be added. The configuration is read and
    applied on the first call.

    .. versionadded:: 0.1.0
    """
    ensure_configured()
    if not name:
        return _get(ROOT_NAME)
    return _get(f"{ROOT_NAME}.{name}")


_context.set_root_logger_getter(get_logger)
_context.set_before_first_push(install_record_factory)


class _ConfigProxy(Mapping[str, Any]):
    """``structflow.config``: the effective configuration, read at first use."""

    def _cfg(self) -> Config:
        return ensure_configured()

    def __getitem__(self, key: str) -> Any:
        return self._cfg()[key]

    def __getattr__(self, key: str) -> Any:
        return getattr(self._cfg(), key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._cfg())

    def __len__(self) -> int:
        return len(self._cfg())

    def __repr__(self) -> str:
        return repr(self._cfg())


config: Any = _ConfigProxy()
