"""
:class:`JsonFormatter`: one JSON object per line, in structflow's layout or a backend's.

``json_schema`` chooses the key names and level spellings: structflow's own
(``default``), Elastic Common Schema, Google Cloud Logging, Datadog or the
OpenTelemetry log data model. Severities come from the one level table
(``structflow._levels``), so they match the HTTP handler's encodings.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Unpack

import orjson

from structflow._context import RUN_KEYS
from structflow._levels import gcp_severity, otel_severity_number, otel_severity_text
from structflow._records import SecondCache, epoch_ns, safe_message, utc_second
from structflow._values import (
    JSON_OPTIONS,
    json_default,
    one_line,
    safe_str,
    sanitize,
    to_json_bytes,
    truncate,
)
from structflow.formatters._event import (
    EventFormatter,
    FormatterOptions,
    takes_formatter_options,
)

__all__ = ["ECS_VERSION", "JSON_SCHEMAS", "JsonFormatter"]

#: Accepted values of ``JsonFormatter(json_schema=...)``.
JSON_SCHEMAS: tuple[str, ...] = ("default", "ecs", "gcp", "datadog", "otel")
#: The ECS version the ``ecs`` schema declares (the field set of ecs-logging).
ECS_VERSION = "1.6.0"

_dumps = orjson.dumps


class JsonFormatter(EventFormatter):
    """
    Render each record as one JSON object on one line (UTF-8, via orjson).

    With ``json_schema="default"`` the keys are, in order: ``timestamp``
    (RFC 3339, UTC, microseconds, ``Z``), ``level`` (lower case), ``logger``,
    ``message``, the run context, bound and ``extra=`` fields, then
    ``exception`` (``type``, ``message``, ``traceback``) and ``stack`` when
    present. ``ecs``, ``gcp``, ``datadog`` and ``otel`` use the key names and
    level spellings of Elastic Common Schema, Google Cloud Logging, Datadog
    and the OpenTelemetry log data model.

    Rendering never raises and never writes invalid JSON: values JSON cannot
    hold render as their ``repr``.

    Of the options every formatter takes (see "Common options" above),
    ``fmt`` is ignored and ``datefmt`` is the strftime format of
    ``record.asctime`` only, which every formatter leaves set as stdlib's
    does: the ``timestamp`` key is RFC 3339 whatever it is.

    Args:
        json_schema: ``default``, ``ecs``, ``gcp``, ``datadog`` or ``otel``.
        service_name: ``service`` (datadog) or ``Resource["service.name"]``
            (otel); defaults to ``DD_SERVICE`` / ``OTEL_SERVICE_NAME``.

    .. versionadded:: 0.1.0
    """

    _renderer = "json"

    @takes_formatter_options
    def __init__(
        self,
        *args: Any,
        json_schema: str = "default",
        service_name: str | None = None,
        **options: Unpack[FormatterOptions],
    ) -> None:
        super().__init__(*args, **options)
        if json_schema not in JSON_SCHEMAS:
            raise ValueError(
                f"json_schema={json_schema!r} is not a JSON schema; expected one of "
                f"{', '.join(JSON_SCHEMAS)}"
            )
        self.json_schema = json_schema
        self._service_given = service_name
        if service_name is None:
            if json_schema == "otel":
                service_name = os.environ.get("OTEL_SERVICE_NAME") or "unknown_service:python"
            elif json_schema == "datadog":
                service_name = os.environ.get("DD_SERVICE") or None
        self.service_name = service_name
        self._default = json_default(self._redact)
        self._rfc3339_millis = SecondCache(utc_second, "%s.%03dZ", 1e3).format
        self._plain = not self._processors and json_schema == "default"
        self._transform: Callable[[dict[str, Any], logging.LogRecord, str], dict[str, Any]] | None
        self._transform = {
            "default": None,
            "ecs": self._ecs,
            "gcp": self._gcp,
            "datadog": self._datadog,
            "otel": self._otel,
        }[json_schema]

    def event_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """
        Return the dict that would be serialised for *record*.

        Keys are those of the schema; processors, redaction and truncation
        have been applied. Values may still be objects JSON cannot hold
        (:func:`to_json_bytes` renders them).

        .. versionadded:: 0.1.0
        """
        try:
            event, ts = self._event(record)
            if self._transform is not None:
                event = self._transform(event, record, ts)
            return event
        except Exception as exc:
            return self._emergency_dict(record, exc)

    def format_bytes(self, record: logging.LogRecord) -> bytes:
        """
        Render *record* as one line of UTF-8 JSON, without the newline.

        The fast path, for handlers that write bytes. Never raises.

        .. versionadded:: 0.1.0
        """
        try:
            if self._processors or self._transform is not None:
                event = self.event_dict(record)
            else:
                event = self._build(record)
            try:
                return one_line(_dumps(event, default=self._default, option=JSON_OPTIONS))
            except Exception:
                return one_line(_dumps(sanitize(event), option=JSON_OPTIONS))
        except Exception as exc:
            return to_json_bytes(self._emergency_dict(record, exc))

    def format(self, record: logging.LogRecord) -> str:
        """
        Render *record* as one line of JSON, without the newline.

        .. versionadded:: 0.1.0
        """
        if self._plain:
            # format_bytes inlined: handlers call this once per record.
            try:
                line = _dumps(self._build(record), default=self._default, option=JSON_OPTIONS)
                return (line if line.isascii() else one_line(line)).decode()
            except Exception:
                pass
        return self.format_bytes(record).decode("utf-8")

    def _emergency_dict(self, record: logging.LogRecord, exc: BaseException) -> dict[str, Any]:
        # Rendering failed in a way the normal path did not foresee (a bug, or
        # a record mutated by another thread): keep the essentials.
        out: dict[str, Any] = {"timestamp": None, "level": None, "logger": None, "message": None}
        getters: tuple[tuple[str, Callable[[], Any]], ...] = (
            ("timestamp", lambda: self._rfc3339(record.created)),
            ("level", lambda: safe_str(record.levelname).lower()),
            ("logger", lambda: safe_str(record.name)),
            ("message", lambda: truncate(safe_message(record), self._max_bytes)),
        )
        for key, get in getters:
            with contextlib.suppress(Exception):
                out[key] = get()
        out["structflow_error"] = (
            f"record could not be rendered: {type(exc).__name__}: " + safe_str(exc)
        )
        return out

    # -- schemas --

    @staticmethod
    def _split(event: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any, Any]:
        pop = event.pop
        return (
            pop("timestamp", None),
            pop("level", None),
            pop("logger", None),
            pop("message", None),
            pop("exception", None),
            pop("stack", None),
        )

    def _head(
        self,
        event: dict[str, Any],
        record: logging.LogRecord,
        ts: str,
        time_key: str,
        level_key: str,
    ) -> tuple[dict[str, Any], Any, Any, Any]:
        """
        Begin the dict of a schema with a millisecond time: its time, level and message.

        Return it with the logger name, the exception and the stack, all
        taken out of *event*, which keeps the fields. The time is the
        record's in milliseconds unless a processor replaced it.
        """
        pop = event.pop
        stamp = pop("timestamp", None)
        out = {
            time_key: self._rfc3339_millis(record.created) if stamp is ts else stamp,
            level_key: pop("level", None),
            "message": pop("message", None),
        }
        return out, pop("logger", None), pop("exception", None), pop("stack", None)

    def _ecs(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        out, logger_name, exc, stack = self._head(event, record, ts, "@timestamp", "log.level")
        out["ecs.version"] = ECS_VERSION
        out["log"] = {
            "logger": logger_name,
            "origin": {
                "file": {"name": record.filename, "line": record.lineno},
                "function": record.funcName,
            },
        }
        process: dict[str, Any] = {}
        if record.process is not None:
            process["pid"] = record.process
        if record.processName is not None:
            process["name"] = record.processName
        thread: dict[str, Any] = {}
        if record.thread is not None:
            thread["id"] = record.thread
        if record.threadName is not None:
            thread["name"] = record.threadName
        if thread:
            process["thread"] = thread
        if process:
            out["process"] = process
        return _finish(out, event, _ECS_KEYS, exc, ("type", "message", "stack_trace"), stack)

    def _gcp(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        stamp, _level, logger_name, message, exc, stack = self._split(event)
        out: dict[str, Any] = {
            "severity": gcp_severity(record.levelno),
            "message": message,
            "time": stamp,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
            "logger": logger_name,
        }
        # Labels are strings; an unset run key (map_index outside a map) is left out.
        labels = {k: safe_str(v) for k in RUN_KEYS if (v := event.pop(k, None)) is not None}
        if labels:
            out["logging.googleapis.com/labels"] = labels
        _merge(out, event, _GCP_KEYS)
        if exc is not None:
            # Error Reporting picks up a Python traceback from stack_trace.
            out["stack_trace"] = exc.get("traceback")
        if stack is not None:
            out["stack"] = stack
        return out

    def _datadog(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        out, logger_name, exc, stack = self._head(event, record, ts, "timestamp", "status")
        out["logger"] = {
            "name": logger_name,
            "thread_name": record.threadName,
            "method_name": record.funcName,
        }
        if self.service_name:
            out["service"] = self.service_name
        return _finish(out, event, _DATADOG_KEYS, exc, ("kind", "message", "stack"), stack)

    def _otel(self, event: dict[str, Any], record: logging.LogRecord, ts: str) -> dict[str, Any]:
        stamp, _level, logger_name, message, exc, stack = self._split(event)
        if stamp is ts:
            stamp = str(epoch_ns(record.created))
        levelname = safe_str(record.levelname)
        attributes = event
        for key, value in (
            ("code.file.path", record.pathname),
            ("code.function.name", record.funcName),
            ("code.line.number", record.lineno),
        ):
            _put(attributes, key, value)
        if exc is not None:
            for key, value in (
                ("exception.type", exc.get("type")),
                ("exception.message", exc.get("message")),
                ("exception.stacktrace", exc.get("traceback")),
            ):
                _put(attributes, key, value)
        if stack is not None:
            _put(attributes, "code.stacktrace", stack)
        resource: dict[str, Any] = {"service.name": self.service_name}
        if record.process is not None:
            resource["process.pid"] = record.process
        return {
            "Timestamp": stamp,
            "SeverityText": otel_severity_text(levelname),
            "SeverityNumber": otel_severity_number(record.levelno),
            "Body": message,
            "Resource": resource,
            "InstrumentationScope": {"Name": logger_name},
            "Attributes": attributes,
        }

    def __repr__(self) -> str:
        options = [f"json_schema={self.json_schema!r}"]
        if self.datefmt is not None:
            options.append(f"datefmt={self.datefmt!r}")
        options.extend(self._repr_options())
        if self._service_given is not None:
            options.append(f"service_name={self._service_given!r}")
        return f"JsonFormatter({', '.join(options)})"


_ECS_KEYS = frozenset(
    {"@timestamp", "log.level", "message", "ecs.version", "log", "process", "error"}
)
_GCP_KEYS = frozenset(
    {
        "severity",
        "message",
        "time",
        "logger",
        "stack_trace",
        "logging.googleapis.com/sourceLocation",
        "logging.googleapis.com/labels",
    }
)
_DATADOG_KEYS = frozenset({"timestamp", "status", "message", "logger", "service", "error"})


def _finish(
    out: dict[str, Any],
    fields: Mapping[str, Any],
    taken: frozenset[str],
    exc: Mapping[str, Any] | None,
    error_keys: tuple[str, str, str],
    stack: Any,
) -> dict[str, Any]:
    """
    Complete a schema's dict: the fields, then ``error`` and ``stack``.

    *error_keys* are the schema's names for the exception's type, message
    and traceback.
    """
    _merge(out, fields, taken)
    if exc is not None:
        values = (exc.get("type"), exc.get("message"), exc.get("traceback"))
        out["error"] = dict(zip(error_keys, values, strict=True))
    if stack is not None:
        out["stack"] = stack
    return out


def _merge(out: dict[str, Any], fields: Mapping[str, Any], taken: frozenset[str]) -> None:
    for key, value in fields.items():
        _put(out, key + "_" if key in taken else key, value)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    while key in out:
        key += "_"
    out[key] = value
