"""
Wire formats of :class:`~structflow.handlers.HTTPHandler`.

An encoder turns one record into an *entry* (bytes, on the worker's writer
thread, possibly spooled to disk) and a list of entries into a request body
(on the sender thread). Entries hold everything the body needs, so a spool
written by one process can be delivered by the next.

========================  ===========================  ==============================
encoding                  default path (url has none)  body
========================  ===========================  ==============================
``ndjson``                (the url as given)           one JSON object per line
``json``                  (the url as given)           a JSON array of objects
``loki``                  ``/loki/api/v1/push``        Loki push API (JSON)
``elasticsearch``         ``/_bulk``                   bulk ``create`` actions
``splunk-hec``            ``/services/collector/event``  HEC event objects
``datadog``               ``/api/v2/logs``             a JSON array (≤ 1000, ≤ 5 MB)
``otlp``                  ``/v1/logs``                 OTLP/JSON ``resourceLogs``
========================  ===========================  ==============================
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, cast

import orjson

from structflow._levels import otel_severity_number, otel_severity_text
from structflow._records import SecondCache, epoch_ns, utc_second
from structflow._values import safe_str, unrepresentable
from structflow.formatters import to_json_bytes
from structflow.handlers._record_ids import RecordIds
from structflow.handlers.shipping.settings import default_service
from structflow.handlers.shipping.sink import EntryTooLarge, Outcome, Sink
from structflow.handlers.shipping.snapshot import fit_exceptions

__all__ = [
    "ENCODINGS",
    "Encoder",
    "EncoderOptions",
    "EncodingSink",
    "EntryTooLarge",
    "check_record_formatter",
    "make_encoder",
]


class RecordFormatter(Protocol):
    """What an encoder needs from a formatter (``structflow.formatters.JsonFormatter``)."""

    def format_bytes(self, record: logging.LogRecord) -> bytes: ...

    def event_dict(self, record: logging.LogRecord) -> dict[str, Any]: ...


def check_record_formatter(owner: str, formatter: object) -> None:
    """Raise TypeError, naming *owner*, unless *formatter* is None or a :class:`RecordFormatter`."""
    if formatter is not None and not (
        hasattr(formatter, "format_bytes") and hasattr(formatter, "event_dict")
    ):
        raise TypeError(
            f"{owner} renders records as JSON objects and needs a formatter with "
            f"format_bytes() and event_dict(), such as structflow.formatters.JsonFormatter; "
            f"got {type(formatter).__name__}"
        )


@dataclass(frozen=True)
class EncoderOptions:
    """Destination details some encodings put in their payload."""

    index: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    service: str = ""
    hostname: str = ""

    @classmethod
    def of_this_process(cls, index: str, labels: Mapping[str, str], service: str) -> EncoderOptions:
        """Options as a handler gives them: *service* defaults to the program, host to this one."""
        return cls(index, labels, service or default_service(), socket.gethostname())


class Encoder:
    """
    Base of the encodings: entry rendering, body building, limits.

    .. versionadded:: 0.1.0
    """

    name: ClassVar[str] = ""
    content_type: ClassVar[str] = "application/json"
    #: Path used when the handler's url has none (or just ``/``).
    default_path: ClassVar[str] = ""
    #: Hard limits of the destination (None: none of its own).
    max_records: ClassVar[int | None] = None
    max_body_bytes: ClassVar[int | None] = None
    max_entry_bytes: ClassVar[int | None] = None
    #: Bytes the body adds per entry (separators, action lines).
    entry_overhead: int = 1

    def __init__(self, options: EncoderOptions) -> None:
        self.options = options

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        """Render one record into an entry."""
        return formatter.format_bytes(record)

    def entries(
        self, records: Sequence[logging.LogRecord], formatter: RecordFormatter
    ) -> list[bytes]:
        """Render records into entries (the formatter's lines themselves, unless overridden)."""
        if type(self).entry is Encoder.entry:
            format_bytes = formatter.format_bytes
            return [format_bytes(record) for record in records]
        entry = self.entry
        return [entry(record, formatter) for record in records]

    def body(self, entries: Sequence[bytes]) -> bytes:
        """Build a request body from entries."""
        raise NotImplementedError

    def auth_headers(self, token: str) -> dict[str, str]:
        """Headers carrying *token* the way the destination expects."""
        return {"Authorization": f"Bearer {token}"}

    def check(self, body: bytes, count: int) -> Outcome | None:
        """Inspect a 2xx response body; return an outcome when not every entry was taken."""
        return None

    def after_fork_in_child(self) -> None:
        """Forget per-process state in a forked child (nothing, unless an encoding has some)."""


class NdjsonEncoder(Encoder):
    """
    One JSON object per line; the body ends with a newline.

    Each line carries ``_record_id``, a unique id made when the record is
    rendered (and ``_levelno`` for a custom level), so a receiver such as
    ``structflow serve`` stores a batch that was sent again only once.
    """

    name = "ndjson"
    content_type = "application/x-ndjson"

    def __init__(self, options: EncoderOptions) -> None:
        super().__init__(options)
        self._ids = RecordIds()

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        return self._ids.stamp(formatter.format_bytes(record), record)

    def entries(
        self, records: Sequence[logging.LogRecord], formatter: RecordFormatter
    ) -> list[bytes]:
        format_bytes = formatter.format_bytes
        return self._ids.stamp_all([format_bytes(record) for record in records], records)

    def after_fork_in_child(self) -> None:
        self._ids.renew()

    def check(self, body: bytes, count: int) -> Outcome | None:
        # structflow serve answers {"stored": .., "rejected": n, "errors": [..]};
        # other receivers' bodies are not looked at.
        if not body.startswith(b'{"stored":'):
            return None
        try:
            answer = orjson.loads(body)
            rejected = int(answer.get("rejected", 0))
            errors = answer.get("errors") or []
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            return None
        if not 0 < rejected <= count:
            return None
        errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        # The body holds one entry per line: line n is entry n - 1.
        lines = [e.get("line") for e in errors]
        at = tuple(n - 1 for n in lines if type(n) is int and 0 < n <= count)
        detail = f"{rejected} line(s) were refused"
        if errors:
            detail += f" (line {errors[0].get('line')}: {errors[0].get('reason')})"
        return Outcome("partial", detail, rejected=rejected, rejected_at=at)

    def body(self, entries: Sequence[bytes]) -> bytes:
        # One join: concatenating afterwards would hold two copies of the body.
        return b"\n".join([*entries, b""])


class JsonArrayEncoder(Encoder):
    """A JSON array of objects."""

    name = "json"

    def body(self, entries: Sequence[bytes]) -> bytes:
        if not entries:
            return b"[]"
        # One join (see NdjsonEncoder.body); only the ends are copied twice.
        parts = list(entries)
        parts[0] = b"[" + parts[0]
        parts[-1] = parts[-1] + b"]"
        return b",".join(parts)


# Run-context keys that are structured metadata in Loki (high cardinality),
# in the order they are shown.
_LOKI_METADATA = (
    "logger",
    "task_name",
    "flow_run_id",
    "task_run_id",
    "map_index",
    "task_run_count",
)
#: Loki's default per-line limit (``max_line_size``).
LOKI_MAX_LINE_BYTES = 256 * 1024


def _field(event: Mapping[str, Any], record: logging.LogRecord, key: str) -> Any:
    """A field from the rendered event (redaction applied), else from the record."""
    if key in event:
        return event[key]
    return record.__dict__.get(key)


class LokiEncoder(Encoder):
    """
    Grafana Loki's push API.

    Labels (indexed, so low-cardinality): ``service_name``, ``level``,
    ``flow_name`` when present, and the handler's ``labels``. Run ids, the
    task name and the logger name go to structured metadata (Loki 3, or 2.9+
    with ``allow_structured_metadata``). Timestamps are nanosecond strings.
    An entry is ``<stream labels JSON>\\n<value JSON>``.
    """

    name = "loki"
    default_path = "/loki/api/v1/push"
    entry_overhead = 1

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        event = formatter.event_dict(record)
        line = to_json_bytes(event)
        if len(line) > LOKI_MAX_LINE_BYTES:
            raise EntryTooLarge(f"line of {len(line)} bytes exceeds Loki's {LOKI_MAX_LINE_BYTES}")
        labels: dict[str, str] = {}
        if self.options.service:
            labels["service_name"] = self.options.service
        labels["level"] = str(record.levelname).lower()
        flow = _field(event, record, "flow_name")
        if flow is not None:
            labels["flow_name"] = str(flow)
        labels.update(self.options.labels)
        meta: dict[str, str] = {}
        for key in _LOKI_METADATA:
            value = record.name if key == "logger" else _field(event, record, key)
            if value is not None:
                meta[key] = str(value)
        value_json = to_json_bytes([str(epoch_ns(record.created)), line.decode("utf-8"), meta])
        return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS) + b"\n" + value_json

    def body(self, entries: Sequence[bytes]) -> bytes:
        streams: dict[bytes, list[bytes]] = {}
        for entry in entries:
            labels, _, value = entry.partition(b"\n")
            streams.setdefault(labels, []).append(value)
        parts = [
            b'{"stream":' + labels + b',"values":[' + b",".join(values) + b"]}"
            for labels, values in streams.items()
        ]
        return b'{"streams":[' + b",".join(parts) + b"]}"


class ElasticsearchEncoder(Encoder):
    """
    Elasticsearch / OpenSearch ``_bulk`` with ``create`` actions.

    ``create`` is the only action data streams accept. Documents get an
    ``@timestamp`` (UTC, milliseconds) when the schema has none. A 200
    response listing per-item errors is read: items refused with 429 or 5xx
    are sent again, others are dropped as rejected, 409 (already there)
    counts as delivered.
    """

    name = "elasticsearch"
    content_type = "application/x-ndjson"
    default_path = "/_bulk"
    DEFAULT_INDEX = "logs-structflow-default"

    def __init__(self, options: EncoderOptions) -> None:
        super().__init__(options)
        index = options.index or self.DEFAULT_INDEX
        self.index = index
        self._rfc3339_millis = SecondCache(utc_second, "%s.%03dZ", 1e3).format
        self._action = to_json_bytes({"create": {"_index": index}}) + b"\n"
        self.entry_overhead = len(self._action) + 1

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        event = formatter.event_dict(record)
        if "@timestamp" not in event:
            event = {"@timestamp": self._rfc3339_millis(record.created), **event}
        return to_json_bytes(event)

    def body(self, entries: Sequence[bytes]) -> bytes:
        action = self._action
        parts: list[bytes] = []
        for entry in entries:
            parts.append(action)
            parts.append(entry)
            parts.append(b"\n")
        return b"".join(parts)

    def check(self, body: bytes, count: int) -> Outcome | None:
        if b'"errors":true' not in body[:200].replace(b" ", b""):
            return None
        try:
            items = orjson.loads(body).get("items") or []
        except (orjson.JSONDecodeError, AttributeError):
            return None
        retry: list[int] = []
        refused: list[int] = []
        reason = ""
        for index, item in enumerate(items[:count]):
            result: Any = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            status = result.get("status", 0) if isinstance(result, dict) else 0
            if 200 <= status < 300 or status == 409:
                continue
            if status == 429 or status >= 500:
                retry.append(index)
            else:
                refused.append(index)
                if not reason:
                    error = result.get("error") if isinstance(result, dict) else None
                    if isinstance(error, dict):
                        reason = f"{error.get('type')}: {error.get('reason')}"
                    else:
                        reason = str(error)
        if not retry and not refused:
            return None
        detail = f"bulk response: {len(refused)} refused ({reason[:200]}), {len(retry)} to retry"
        return Outcome(
            "partial", detail, retry=tuple(retry), rejected=len(refused), rejected_at=tuple(refused)
        )


class SplunkHecEncoder(Encoder):
    """
    Splunk HTTP Event Collector events, ``Authorization: Splunk <token>``.

    Each entry is ``{"time", "host", "source", "sourcetype": "_json",
    "index"?, "fields"?, "event": {...}}`` (``fields`` holds the handler's
    ``labels`` as indexed fields); entries are separated by newlines.
    """

    name = "splunk-hec"
    default_path = "/services/collector/event"

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        opts = self.options
        out: dict[str, Any] = {
            "time": round(record.created, 6),
            "host": opts.hostname,
            "source": opts.service,
            "sourcetype": "_json",
        }
        if opts.index:
            out["index"] = opts.index
        if opts.labels:
            out["fields"] = dict(opts.labels)
        out["event"] = formatter.event_dict(record)
        return to_json_bytes(out)

    def body(self, entries: Sequence[bytes]) -> bytes:
        return b"\n".join(entries)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Splunk {token}"}


class DatadogEncoder(JsonArrayEncoder):
    """
    Datadog's logs intake (v2): a JSON array, ``DD-API-KEY`` header.

    At most 1000 entries and 5,000,000 bytes per request and 1,000,000 bytes
    per log, as the intake documents. ``ddsource``, ``service``,
    ``hostname`` and ``ddtags`` (from the handler's ``labels``) are added
    unless the rendered event has them.
    """

    name = "datadog"
    default_path = "/api/v2/logs"
    max_records = 1000
    max_body_bytes = 5_000_000
    max_entry_bytes = 1_000_000

    def __init__(self, options: EncoderOptions) -> None:
        super().__init__(options)
        self._tags = ",".join(f"{k}:{v}" for k, v in options.labels.items())

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        event = formatter.event_dict(record)
        event.setdefault("ddsource", "python")
        opts = self.options
        if opts.service:
            event.setdefault("service", opts.service)
        if opts.hostname:
            event.setdefault("hostname", opts.hostname)
        if self._tags:
            event.setdefault("ddtags", self._tags)
        return to_json_bytes(event)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"DD-API-KEY": token}


# Keys of structflow's event layouts that OTLP carries elsewhere than attributes.
_OTLP_ENVELOPE = frozenset(
    {
        "timestamp",
        "@timestamp",
        "level",
        "log.level",
        "status",
        "severity",
        "time",
        "logger",
        "message",
    }
)
_HEX = frozenset("0123456789abcdef")


def otlp_value(value: Any, depth: int = 0) -> dict[str, Any]:
    """Return *value* as an OTLP ``AnyValue`` (64-bit integers as decimal strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"stringValue": repr(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if depth < 16:
        if isinstance(value, Mapping):
            return {
                "kvlistValue": {
                    "values": [
                        {"key": str(k), "value": otlp_value(v, depth + 1)} for k, v in value.items()
                    ]
                }
            }
        if isinstance(value, list | tuple):
            return {"arrayValue": {"values": [otlp_value(v, depth + 1) for v in value]}}
    if value is None:
        return {}
    try:
        return {"stringValue": repr(value)}
    except Exception:
        return {"stringValue": unrepresentable(value)}


def _hex_id(value: Any, length: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = format(value, f"0{length}x")
    if isinstance(value, str):
        text = value.lower()
        if len(text) == length and _HEX.issuperset(text) and text.strip("0"):
            return text
    return None


class OtlpEncoder(Encoder):
    """
    OTLP/JSON logs (``POST /v1/logs``), as an OpenTelemetry Collector takes them.

    Records are grouped by resource (``service.name``, ``host.name``,
    ``process.pid`` and the handler's ``labels``) and by scope (the logger
    name). The event's fields become attributes; the exception becomes
    ``exception.type``, ``exception.message`` and ``exception.stacktrace``;
    ``trace_id``/``span_id`` fields (or OpenTelemetry's ``otelTraceID``/
    ``otelSpanID``) become ``traceId``/``spanId``. An entry is
    ``<[resource, scope] JSON>\\n<logRecord JSON>``.
    """

    name = "otlp"
    default_path = "/v1/logs"

    def __init__(self, options: EncoderOptions) -> None:
        super().__init__(options)
        self._resources: dict[int | None, list[dict[str, Any]]] = {}

    def _resource(self, pid: int | None) -> list[dict[str, Any]]:
        cached = self._resources.get(pid)
        if cached is not None:
            return cached
        attrs: dict[str, Any] = {"service.name": self.options.service or "unknown_service:python"}
        if self.options.hostname:
            attrs["host.name"] = self.options.hostname
        if pid is not None:
            attrs["process.pid"] = pid
        attrs.update(self.options.labels)
        out = [{"key": k, "value": otlp_value(v)} for k, v in attrs.items()]
        if len(self._resources) < 64:
            self._resources[pid] = out
        return out

    def entry(self, record: logging.LogRecord, formatter: RecordFormatter) -> bytes:
        event = formatter.event_dict(record)
        if "Body" in event and "Attributes" in event:
            # The formatter renders the OpenTelemetry data model already.
            body: Any = event.get("Body")
            attributes = dict(event.get("Attributes") or {})
        else:
            body = event.get("message", record.getMessage())
            attributes = {k: v for k, v in event.items() if k not in _OTLP_ENVELOPE}
            exc = attributes.pop("exception", None)
            if isinstance(exc, Mapping):
                for key, name in (
                    ("type", "exception.type"),
                    ("message", "exception.message"),
                    ("traceback", "exception.stacktrace"),
                ):
                    if exc.get(key) is not None:
                        attributes[name] = exc[key]
            stack = attributes.pop("stack", None)
            if stack is not None:
                attributes["code.stacktrace"] = stack
        ns = str(epoch_ns(record.created))
        out: dict[str, Any] = {
            "timeUnixNano": ns,
            "observedTimeUnixNano": ns,
            "severityNumber": otel_severity_number(record.levelno),
            "severityText": otel_severity_text(safe_str(record.levelname)),
            "body": otlp_value(body),
        }
        trace = _hex_id(attributes.pop("trace_id", None) or record.__dict__.get("otelTraceID"), 32)
        span = _hex_id(attributes.pop("span_id", None) or record.__dict__.get("otelSpanID"), 16)
        out["attributes"] = [{"key": str(k), "value": otlp_value(v)} for k, v in attributes.items()]
        if trace:
            out["traceId"] = trace
        if span:
            out["spanId"] = span
        group = to_json_bytes([self._resource(record.process), record.name])
        return group + b"\n" + to_json_bytes(out)

    def body(self, entries: Sequence[bytes]) -> bytes:
        resources: dict[bytes, dict[bytes, list[bytes]]] = {}
        groups: dict[bytes, tuple[bytes, bytes]] = {}
        for entry in entries:
            group, _, log_record = entry.partition(b"\n")
            split = groups.get(group)
            if split is None:
                split = groups[group] = _split_group(group)
            resource, scope = split
            resources.setdefault(resource, {}).setdefault(scope, []).append(log_record)
        parts = []
        for resource, scopes in resources.items():
            scope_parts = [
                b'{"scope":{"name":' + scope + b'},"logRecords":[' + b",".join(records) + b"]}"
                for scope, records in scopes.items()
            ]
            parts.append(
                b'{"resource":{"attributes":'
                + resource
                + b'},"scopeLogs":['
                + b",".join(scope_parts)
                + b"]}"
            )
        return b'{"resourceLogs":[' + b",".join(parts) + b"]}"


def _split_group(group: bytes) -> tuple[bytes, bytes]:
    """Split ``[<resource attrs>,<scope name>]`` into its two JSON values."""
    try:
        resource, scope = orjson.loads(group)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return b"[]", b'"structflow"'
    return orjson.dumps(resource), orjson.dumps(scope)


ENCODINGS: dict[str, type[Encoder]] = {
    cls.name: cls
    for cls in (
        NdjsonEncoder,
        JsonArrayEncoder,
        LokiEncoder,
        ElasticsearchEncoder,
        SplunkHecEncoder,
        DatadogEncoder,
        OtlpEncoder,
    )
}


def make_encoder(name: str, options: EncoderOptions) -> Encoder:
    """Return the encoder called *name*."""
    return ENCODINGS[name](options)


class EncodingSink(Sink):
    """
    The rendering half of a sink that sends an encoding's request bodies.

    Records become entries through the formatter and the :class:`Encoder`;
    the encoder's limits are the sink's. Subclasses send: ``HTTPHandler``'s
    sink POSTs ``encoder.body(entries)``, :class:`structflow.testing.MockSink`
    keeps the entries.
    """

    def __init__(self, encoder: Encoder, kind: str) -> None:
        self.encoder = encoder
        #: A spool is adopted only by a sink of the same kind and encoding.
        self.identity = f"{kind} {encoder.name}"
        self.max_batch_records = encoder.max_records
        self.max_batch_bytes = encoder.max_body_bytes
        self.max_entry_bytes = encoder.max_entry_bytes
        self.entry_overhead = encoder.entry_overhead

    def check_formatter(self, owner: str, formatter: logging.Formatter | None) -> None:
        check_record_formatter(owner, formatter)

    def render(self, record: logging.LogRecord) -> bytes:
        formatter = cast(RecordFormatter, self.record_formatter())
        if record.exc_info:
            fit_exceptions(formatter, (record,))
        return self.encoder.entry(record, formatter)

    def render_all(self, records: Sequence[logging.LogRecord]) -> list[bytes]:
        formatter = cast(RecordFormatter, self.record_formatter())
        fit_exceptions(formatter, records)
        return self.encoder.entries(records, formatter)
