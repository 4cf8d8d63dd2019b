"""
Rendering cases: one record with four run-context fields and one ``%s``
argument, rendered and written to ``/dev/null``.

Each set-up supplies the run context the way its users would: structflow
through ``structflow.context(...)``, stdlib and python-json-logger through
``extra=``, structlog and loguru through ``bind``. Each set-up has two
variants: ``info`` (an enabled call) and ``debug-off`` (a ``debug`` call
filtered out by an INFO level).

The structlog comparison logs a record with two bound keys on top of the run
context, three ways: structlog's own logger routed through structflow,
structflow's own bound logger, and structlog's documented stdlib set-up.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO, cast

from benchmarks._common import (
    ARG,
    BIND_KEY,
    BIND_TWO,
    BIND_VALUE,
    CLASSIC_DATEFMT,
    CLASSIC_FORMAT,
    CONTEXT,
    MESSAGE,
    MESSAGE_BRACES,
    BenchmarkError,
    Sinks,
    capture,
    check_rendered,
    measure,
)

Loop = Callable[[int], None]


@dataclass(frozen=True)
class Loops:
    """The two timed loops of a set-up and what its output must contain."""

    info: Loop
    debug_off: Loop
    style: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Setup:
    """A logging set-up measured by the rendering cases."""

    name: str
    label: str
    peer: str
    build: Callable[[Sinks], Loops]
    #: The variants measured; the set-ups added for one comparison skip the rest.
    variants: tuple[str, ...] = ("info", "debug-off")

    @property
    def is_structflow(self) -> bool:
        return self.peer == "structflow"


def _stdlib_logger(name: str, sinks: Sinks, formatter: logging.Formatter) -> logging.Logger:
    """Return a logger writing to the text sink with *formatter*, not propagating."""
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(sinks.text)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _stdlib_loops(logger: logging.Logger, style: str, fields: Mapping[str, str]) -> Loops:
    extra = dict(CONTEXT)
    info, debug = logger.info, logger.debug

    def run_info(n: int) -> None:
        for _ in range(n):
            info(MESSAGE, ARG, extra=extra)

    def run_debug(n: int) -> None:
        for _ in range(n):
            debug(MESSAGE, ARG, extra=extra)

    return Loops(run_info, run_debug, style, fields)


# --- structflow ----------------------------------------------------------------


def _structflow_logger(
    sinks: Sinks, formatter: logging.Formatter, renderer: str, name: str = "Task B"
) -> Any:
    import structflow

    structflow.configure(renderer=renderer, stream="none", level="INFO")
    logger = structflow.get_logger(name)
    handler = logging.StreamHandler(sinks.text)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False
    return logger


def _structflow_loops(logger: Any, style: str, fields: Mapping[str, str]) -> Loops:
    import structflow

    info, debug = logger.info, logger.debug

    def run_info(n: int) -> None:
        with structflow.context(**CONTEXT):
            for _ in range(n):
                info(MESSAGE, ARG)

    def run_debug(n: int) -> None:
        with structflow.context(**CONTEXT):
            for _ in range(n):
                debug(MESSAGE, ARG)

    return Loops(run_info, run_debug, style, fields)


def structflow_classic(sinks: Sinks) -> Loops:
    from structflow.formatters import ClassicFormatter

    logger = _structflow_logger(sinks, ClassicFormatter(), "classic")
    return _structflow_loops(logger, "text", {})


def structflow_json(sinks: Sinks) -> Loops:
    from structflow.formatters import JsonFormatter

    logger = _structflow_logger(sinks, JsonFormatter(), "json")
    return _structflow_loops(logger, "json", CONTEXT)


def structflow_json_bind(sinks: Sinks) -> Loops:
    from structflow.formatters import JsonFormatter

    logger = _structflow_logger(sinks, JsonFormatter(), "json").bind(**{BIND_KEY: BIND_VALUE})
    return _structflow_loops(logger, "json", {**CONTEXT, BIND_KEY: BIND_VALUE})


def structflow_json_bind_two(sinks: Sinks) -> Loops:
    from structflow.formatters import JsonFormatter

    logger = _structflow_logger(sinks, JsonFormatter(), "json").bind(**BIND_TWO)
    return _structflow_loops(logger, "json", {**CONTEXT, **BIND_TWO})


def structlog_through_structflow(sinks: Sinks) -> Loops:
    """structlog's own logger, configured by structflow (structlog = "auto")."""
    import structlog

    from structflow.formatters import JsonFormatter

    # A library's logger: its name is not structflow's, so its records go to
    # the handlers of the structflow logger.
    _structflow_logger(sinks, JsonFormatter(), "json", name="")
    logger = structlog.get_logger("bench.structlog").bind(**BIND_TWO)
    return _structflow_loops(logger, "json", {**CONTEXT, **BIND_TWO})


def structflow_logfmt(sinks: Sinks) -> Loops:
    from structflow.formatters import LogfmtFormatter

    logger = _structflow_logger(sinks, LogfmtFormatter(), "logfmt")
    return _structflow_loops(logger, "logfmt", CONTEXT)


# --- stdlib ----------------------------------------------------------------------


class MessageOnlyFormatter(logging.Formatter):
    """The cheapest useful formatter: the message and nothing else."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def stdlib_classic(sinks: Sinks) -> Loops:
    formatter = logging.Formatter(CLASSIC_FORMAT, CLASSIC_DATEFMT)
    return _stdlib_loops(_stdlib_logger("bench.stdlib", sinks, formatter), "text", {})


def stdlib_trivial(sinks: Sinks) -> Loops:
    logger = _stdlib_logger("bench.trivial", sinks, MessageOnlyFormatter())
    return _stdlib_loops(logger, "text", {})


# --- python-json-logger ---------------------------------------------------------

_PJL_FIELDS = "%(levelname)s %(name)s %(message)s"


def pjl_json(sinks: Sinks) -> Loops:
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(_PJL_FIELDS, timestamp=True)
    return _stdlib_loops(_stdlib_logger("bench.pjl", sinks, formatter), "json", CONTEXT)


def pjl_orjson(sinks: Sinks) -> Loops:
    from pythonjsonlogger.orjson import OrjsonFormatter

    formatter = OrjsonFormatter(_PJL_FIELDS, timestamp=True)
    return _stdlib_loops(_stdlib_logger("bench.pjlo", sinks, formatter), "json", CONTEXT)


# --- structlog ------------------------------------------------------------------


def _orjson_str(obj: Any, **kw: Any) -> str:
    import orjson

    return orjson.dumps(obj, default=kw.get("default")).decode()


def structlog_processor_formatter(sinks: Sinks) -> Loops:
    """structlog's documented stdlib integration, rendering JSON with orjson."""
    return _structlog_stdlib(sinks, CONTEXT)


def structlog_processor_formatter_bind_two(sinks: Sinks) -> Loops:
    """The same, with two more bound keys: the record of the structlog comparison."""
    return _structlog_stdlib(sinks, {**CONTEXT, **BIND_TWO})


def _structlog_stdlib(sinks: Sinks, bound: Mapping[str, str]) -> Loops:
    import structlog

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(serializer=_orjson_str),
        ],
    )
    _stdlib_logger("bench.structlog", sinks, formatter)
    log = structlog.get_logger("bench.structlog").bind(**bound)
    info, debug = log.info, log.debug

    def run_info(n: int) -> None:
        for _ in range(n):
            info(MESSAGE, ARG)

    def run_debug(n: int) -> None:
        for _ in range(n):
            debug(MESSAGE, ARG)

    return Loops(run_info, run_debug, "json", bound)


def structlog_native(sinks: Sinks) -> Loops:
    """structlog without stdlib: filtering bound logger, orjson, BytesLogger."""
    import orjson
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.BytesLoggerFactory(cast("BinaryIO", sinks.binary)),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger().bind(logger="bench.structlog", **CONTEXT)
    info, debug = log.info, log.debug

    def run_info(n: int) -> None:
        for _ in range(n):
            info(MESSAGE, ARG)

    def run_debug(n: int) -> None:
        for _ in range(n):
            debug(MESSAGE, ARG)

    return Loops(run_info, run_debug, "json", CONTEXT)


# --- loguru ---------------------------------------------------------------------


def loguru_serialize(sinks: Sinks) -> Loops:
    from loguru import logger

    logger.remove()
    logger.add(
        cast("TextIO", sinks.text), serialize=True, level="INFO", colorize=False, diagnose=False
    )
    log = logger.bind(**CONTEXT)
    info, debug = log.info, log.debug

    def run_info(n: int) -> None:
        for _ in range(n):
            info(MESSAGE_BRACES, ARG)

    def run_debug(n: int) -> None:
        for _ in range(n):
            debug(MESSAGE_BRACES, ARG)

    return Loops(run_info, run_debug, "json", CONTEXT)


# --- the floor of any Python call -------------------------------------------------


def _noop(msg: object, *args: object, **kw: object) -> None:
    return None


def noop_call(sinks: Sinks) -> Loops:
    """A call to a Python function that does nothing: the cost no logger avoids."""

    def run(n: int) -> None:
        for _ in range(n):
            _noop(MESSAGE, ARG)

    return Loops(run, run, "none")


SETUPS: dict[str, Setup] = {
    s.name: s
    for s in (
        Setup("structflow.classic", "structflow classic", "structflow", structflow_classic),
        Setup("structflow.json", "structflow JSON", "structflow", structflow_json),
        Setup(
            "structflow.json-bind", "structflow JSON via bind", "structflow", structflow_json_bind
        ),
        Setup("structflow.logfmt", "structflow logfmt", "structflow", structflow_logfmt),
        Setup(
            "structflow.json-bind2",
            "structflow JSON via bind, 2 keys",
            "structflow",
            structflow_json_bind_two,
            ("info",),
        ),
        Setup(
            "structlog.structflow",
            "structlog logger through structflow, 2 keys",
            "structflow",
            structlog_through_structflow,
        ),
        Setup("stdlib.classic", "stdlib logging.Formatter classic", "stdlib", stdlib_classic),
        Setup("stdlib.trivial", "stdlib trivial formatter (floor)", "stdlib", stdlib_trivial),
        Setup("pjl.json", "python-json-logger JsonFormatter", "python-json-logger", pjl_json),
        Setup("pjl.orjson", "python-json-logger OrjsonFormatter", "python-json-logger", pjl_orjson),
        Setup(
            "structlog.stdlib",
            "structlog ProcessorFormatter + orjson",
            "structlog",
            structlog_processor_formatter,
        ),
        Setup(
            "structlog.stdlib-bind2",
            "structlog ProcessorFormatter + orjson, 2 keys",
            "structlog",
            structlog_processor_formatter_bind_two,
            ("info",),
        ),
        Setup(
            "structlog.native",
            "structlog native BytesLogger + orjson",
            "structlog",
            structlog_native,
        ),
        Setup("loguru.serialize", "loguru serialize=True", "loguru", loguru_serialize),
        Setup("floor.noop", "no-op Python call", "reference", noop_call, ("info",)),
    )
}


def case_ids() -> list[str]:
    """Return every rendering case id, ``<set-up>:<variant>``."""
    return [f"{name}:{variant}" for name, setup in SETUPS.items() for variant in setup.variants]


def _check(setup: Setup, loops: Loops, sinks: Sinks, variant: str) -> None:
    """Run one call into a capture file and check what it wrote."""
    if loops.style == "none":
        return
    with capture(sinks) as read:
        if variant == "info":
            loops.info(1)
        else:
            loops.debug_off(1)
            if read():
                raise BenchmarkError(f"{setup.name}: a filtered-out debug call wrote {read()!r}")
            # The logger must still be live, or the disabled figure means nothing.
            loops.info(1)
        check_rendered(read(), case=setup.name, style=loops.style, fields=loops.fields)


def run(case: str, quick: bool) -> dict[str, Any]:
    """
    Measure one rendering case in this process.

    Returns:
        ``ns_per_call`` (median of this process's samples) and the samples.
    """
    name, _, variant = case.partition(":")
    try:
        setup = SETUPS[name]
    except KeyError:
        raise BenchmarkError(
            f"unknown rendering set-up {name!r}; expected one of {list(SETUPS)}"
        ) from None
    if variant not in setup.variants:
        raise BenchmarkError(
            f"unknown variant {variant!r} of {name}; expected one of {setup.variants}"
        )
    sinks = Sinks.open()
    loops = setup.build(sinks)
    _check(setup, loops, sinks, variant)
    loop = loops.info if variant == "info" else loops.debug_off
    samples, calls = measure(loop, min_time=0.01 if quick else 0.1, samples=2 if quick else 5)
    return {
        "ns_per_call": statistics.median(samples),
        "samples": samples,
        "calls_per_sample": calls,
    }
