"""
Wire formats of HTTPHandler: golden request bodies, and each destination's limits.

The golden bodies were checked by hand against each receiver's documented
format (see the project's reference notes); a change to any of them is a
change of wire format and must be deliberate.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from receivers import (
    NO_DROPS,
    HTTPReceiver,
    Respond,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
)
from structflow.formatters import JsonFormatter
from structflow.handlers import HTTPHandler
from structflow.handlers._record_ids import RecordIds
from structflow.handlers.encoders import (
    ENCODINGS,
    DatadogEncoder,
    ElasticsearchEncoder,
    EncoderOptions,
    NdjsonEncoder,
    make_encoder,
    otlp_value,
)
from structflow.handlers.http import _HTTPSink
from structflow.handlers.shipping.snapshot import snapshot

pytestmark = pytest.mark.timeout(60)

RUN = {"flow_name": "etl-flow", "flow_run_id": "fr-1", "task_name": "Task B", "task_run_id": "tr-1"}
OPTIONS = EncoderOptions(labels={"env": "prod"}, service="etl", hostname="host-1")


def record(
    msg: str, args: tuple[Any, ...], level: int, created: float, **fields: Any
) -> logging.LogRecord:
    """A snapshot record as the worker renders it, with a fixed time and pid."""
    r = logging.LogRecord("structflow.Task B", level, "/app/flow.py", 12, msg, args, None, "task_b")
    r.created = created
    r.process = 4242
    for key, value in fields.items():
        setattr(r, key, value)
    r.structflow_fields = tuple(fields)
    return snapshot(r)[0]


def two_records() -> list[logging.LogRecord]:
    return [
        record("Beginning to run Task B with input %s", (3,), logging.INFO, 1714564801.5, **RUN),
        record("Returning the value %s", (10,), logging.WARNING, 1714564802.25, **RUN, rows=2),
    ]


def body(
    encoding: str,
    records: list[logging.LogRecord],
    formatter: logging.Formatter | None = None,
    **options: Any,
) -> bytes:
    """Render *records* as the handler's writer does, and build the request body."""
    encoder = make_encoder(encoding, EncoderOptions(**{**OPTIONS.__dict__, **options}))
    sink = _HTTPSink("http://127.0.0.1:1/", encoder, False, {}, 1.0, True)
    sink.formatter = formatter
    return encoder.body([sink.render(r) for r in records])


DOC_A = (
    '{"timestamp":"2024-05-01T12:00:01.500000Z","level":"info","logger":"structflow.Task B",'
    '"message":"Beginning to run Task B with input 3","flow_name":"etl-flow","flow_run_id":"fr-1",'
    '"task_name":"Task B","task_run_id":"tr-1"'
)
DOC_B = (
    '{"timestamp":"2024-05-01T12:00:02.250000Z","level":"warning","logger":"structflow.Task B",'
    '"message":"Returning the value 10","flow_name":"etl-flow","flow_run_id":"fr-1",'
    '"task_name":"Task B","task_run_id":"tr-1","rows":2'
)


def test_ndjson_body_is_one_object_per_line_ending_with_a_newline() -> None:
    """Each line is the JSON renderer's object plus the record id a receiver deduplicates by."""
    got = body("ndjson", two_records())
    first, _second, end = got.split(b"\n")
    prefix = json.loads(first)["_record_id"].split("-")[0]
    assert got == (
        f'{DOC_A},"_record_id":"{prefix}-000000000000"}}\n{DOC_B},"_record_id":"{prefix}-000000000001"}}\n'.encode()
    )
    assert end == b""


def test_one_handlers_record_ids_sort_in_the_order_they_were_made() -> None:
    """A store's unique index on the ids then grows at its end (see RecordIds)."""
    records = two_records() * 10
    lines = body("ndjson", records).splitlines()
    stamped = [json.loads(line)["_record_id"] for line in lines]
    ids = RecordIds()
    made = [ids.new_id() for _ in range(300)]
    assert (stamped, made) == (sorted(stamped), sorted(made))
    assert (len(set(stamped)), len(set(made))) == (20, 300)


def test_ndjson_marks_a_custom_level_with_its_number() -> None:
    (line,) = body("ndjson", [record("fine detail", (), 5, 1714564801.5)]).splitlines()
    assert (json.loads(line)["level"], json.loads(line)["_levelno"]) == ("level 5", 5)


def test_ndjson_ids_differ_between_encoders() -> None:
    """Two handlers (or a forked child, which renews its ids) never repeat each other's ids."""
    lines = [
        *body("ndjson", two_records()).splitlines(),
        *body("ndjson", two_records()).splitlines(),
    ]
    assert len({json.loads(line)["_record_id"] for line in lines}) == 4


def test_json_body_is_an_array() -> None:
    assert body("json", two_records()) == f"[{DOC_A}}},{DOC_B}}}]".encode()


def test_loki_body_has_low_cardinality_labels_ns_timestamps_and_run_ids_as_metadata() -> None:
    line_a = json.dumps(DOC_A + "}", separators=(",", ":"))
    line_b = json.dumps(DOC_B + "}", separators=(",", ":"))
    meta = (
        '{"logger":"structflow.Task B","task_name":"Task B",'
        '"flow_run_id":"fr-1","task_run_id":"tr-1"}'
    )
    expected = (
        '{"streams":['
        '{"stream":{"env":"prod","flow_name":"etl-flow","level":"info","service_name":"etl"},'
        f'"values":[["1714564801500000000",{line_a},{meta}]]}},'
        '{"stream":{"env":"prod","flow_name":"etl-flow","level":"warning","service_name":"etl"},'
        f'"values":[["1714564802250000000",{line_b},{meta}]]}}'
        "]}"
    )
    assert body("loki", two_records()) == expected.encode()


def test_loki_groups_records_of_one_stream() -> None:
    records = [record("m%s", (i,), logging.INFO, 1714564801.0 + i, **RUN) for i in range(3)]
    streams = json.loads(body("loki", records))["streams"]
    assert [len(s["values"]) for s in streams] == [3]
    assert [v[0] for v in streams[0]["values"]] == [
        "1714564801000000000",
        "1714564802000000000",
        "1714564803000000000",
    ]


def test_elasticsearch_body_is_bulk_create_with_timestamp_and_trailing_newline() -> None:
    action = '{"create":{"_index":"logs-structflow-default"}}'
    expected = (
        f'{action}\n{{"@timestamp":"2024-05-01T12:00:01.500Z",{DOC_A[1:]}}}\n'
        f'{action}\n{{"@timestamp":"2024-05-01T12:00:02.250Z",{DOC_B[1:]}}}\n'
    )
    assert body("elasticsearch", two_records()) == expected.encode()


def test_elasticsearch_index_option() -> None:
    data = body("elasticsearch", two_records()[:1], index="logs-app-prod")
    assert data.startswith(b'{"create":{"_index":"logs-app-prod"}}\n')


def test_splunk_hec_body_is_event_objects() -> None:
    head = '{"time":%s,"host":"host-1","source":"etl","sourcetype":"_json","fields":{"env":"prod"},'
    expected = (
        (head % "1714564801.5")
        + f'"event":{DOC_A}}}}}\n'
        + (head % "1714564802.25")
        + f'"event":{DOC_B}}}}}'
    )
    assert body("splunk-hec", two_records()) == expected.encode()


def test_splunk_hec_index_option() -> None:
    event = json.loads(body("splunk-hec", two_records()[:1], index="main"))
    assert event["index"] == "main"


def test_datadog_body_is_an_array_with_source_service_host_and_tags() -> None:
    extra = '"ddsource":"python","service":"etl","hostname":"host-1","ddtags":"env:prod"'
    expected = f"[{DOC_A},{extra}}},{DOC_B},{extra}}}]"
    assert body("datadog", two_records()) == expected.encode()


def test_otlp_body_is_resource_logs_with_scope_severity_and_attributes() -> None:
    def attr(key: str, kind: str, value: str) -> str:
        return f'{{"key":"{key}","value":{{"{kind}":"{value}"}}}}'

    run = ",".join(attr(k, "stringValue", v) for k, v in RUN.items())
    resource = ",".join(
        [
            attr("service.name", "stringValue", "etl"),
            attr("host.name", "stringValue", "host-1"),
            attr("process.pid", "intValue", "4242"),
            attr("env", "stringValue", "prod"),
        ]
    )
    log_a = (
        '{"timeUnixNano":"1714564801500000000","observedTimeUnixNano":"1714564801500000000",'
        '"severityNumber":9,"severityText":"INFO",'
        '"body":{"stringValue":"Beginning to run Task B with input 3"},'
        f'"attributes":[{run}]}}'
    )
    log_b = (
        '{"timeUnixNano":"1714564802250000000","observedTimeUnixNano":"1714564802250000000",'
        '"severityNumber":13,"severityText":"WARN",'
        '"body":{"stringValue":"Returning the value 10"},'
        f'"attributes":[{run},{attr("rows", "intValue", "2")}]}}'
    )
    expected = (
        f'{{"resourceLogs":[{{"resource":{{"attributes":[{resource}]}},"scopeLogs":'
        f'[{{"scope":{{"name":"structflow.Task B"}},"logRecords":[{log_a},{log_b}]}}]}}]}}'
    )
    assert body("otlp", two_records()) == expected.encode()


def test_otlp_maps_exceptions_trace_ids_and_value_types() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        r = logging.LogRecord(
            "app", logging.ERROR, "/app.py", 1, "failed", (), (type(exc), exc, exc.__traceback__)
        )
    r.created = 1714564801.0
    for key, value in {
        "trace_id": "0AF7651916CD43DD8448EB211C80319C",
        "span_id": "b7ad6b7169203331",
        "ok": True,
        "ratio": 0.5,
        "nested": {"a": [1, "b"]},
        "huge": 2**70,
        "nothing": None,
    }.items():
        setattr(r, key, value)
    r.structflow_fields = ("trace_id", "span_id", "ok", "ratio", "nested", "huge", "nothing")
    data = json.loads(body("otlp", [snapshot(r)[0]]))
    (log,) = data["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    attributes = {a["key"]: a["value"] for a in log["attributes"]}

    assert (log["traceId"], log["spanId"]) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )
    assert (log["severityNumber"], log["severityText"]) == (17, "ERROR")
    stacktrace = attributes["exception.stacktrace"]["stringValue"]
    assert 'raise KeyError("missing")' in stacktrace
    assert stacktrace.endswith("KeyError: 'missing'")
    assert attributes["ok"] == {"boolValue": True}
    assert attributes["ratio"] == {"doubleValue": 0.5}
    assert attributes["nested"] == {
        "kvlistValue": {
            "values": [
                {
                    "key": "a",
                    "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "b"}]}},
                }
            ]
        }
    }
    assert {"stringValue": str(2**70)} == attributes["huge"]
    assert attributes["nothing"] == {}


def test_otlp_uses_the_otel_schema_of_the_formatter_when_it_has_it() -> None:
    data = json.loads(body("otlp", two_records()[1:], JsonFormatter(json_schema="otel")))
    (log,) = data["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    attributes = {a["key"]: a["value"] for a in log["attributes"]}
    assert log["body"] == {"stringValue": "Returning the value 10"}
    assert attributes["rows"] == {"intValue": "2"}
    assert attributes["code.file.path"] == {"stringValue": "/app/flow.py"}


def test_otlp_value_of_an_unrepresentable_object() -> None:
    class Bad:
        def __repr__(self) -> str:
            raise RuntimeError

    assert otlp_value(Bad()) == {"stringValue": "<unrepresentable Bad object>"}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_secret_fields_are_redacted_in_every_payload(encoding: str) -> None:
    r = record("login", (), logging.INFO, 1714564801.0, **RUN, password="hunter2", user="ann")
    data = body(encoding, [r])
    assert b"hunter2" not in data
    assert b"[REDACTED]" in data
    assert b"ann" in data


def test_elasticsearch_bulk_errors_retry_429_and_5xx_and_drop_the_refused() -> None:
    response = json.dumps(
        {
            "errors": True,
            "items": [
                {"create": {"status": 201}},
                {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}},
                {
                    "create": {
                        "status": 400,
                        "error": {"type": "mapper_parsing_exception", "reason": "bad"},
                    }
                },
                {"create": {"status": 409}},
                {"create": {"status": 503}},
            ],
        }
    ).encode()
    outcome = ElasticsearchEncoder(OPTIONS).check(response, 5)
    assert outcome is not None
    assert (outcome.kind, outcome.retry, outcome.rejected) == ("partial", (1, 4), 1)
    assert outcome.rejected_at == (2,)
    assert "mapper_parsing_exception" in outcome.detail
    assert ElasticsearchEncoder(OPTIONS).check(b'{"errors":false,"items":[]}', 0) is None


def test_a_structflow_serve_answer_names_the_refused_lines_as_entries() -> None:
    answer = {
        "stored": 2,
        "duplicates": 0,
        "rejected": 2,
        "errors": [{"line": 2, "reason": "no time"}, {"line": 4, "reason": "no message"}],
    }
    outcome = NdjsonEncoder(OPTIONS).check(json.dumps(answer).encode(), 4)
    assert outcome is not None
    assert (outcome.kind, outcome.rejected, outcome.rejected_at) == ("partial", 2, (1, 3))
    assert outcome.detail == "2 line(s) were refused (line 2: no time)"
    # Lines it does not name, or names wrongly, are only counted.
    answer["errors"] = [{"line": 9, "reason": "?"}, {"line": True}, "not an error"]
    outcome = NdjsonEncoder(OPTIONS).check(json.dumps(answer).encode(), 4)
    assert outcome is not None
    assert (outcome.rejected, outcome.rejected_at) == (2, ())


def test_elasticsearch_partial_failures_are_retried_through_the_handler(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    items = [{"create": {"status": s}} for s in (201, 429, 400, 201, 503)]
    items[2]["create"]["error"] = {"type": "mapper_parsing_exception", "reason": "bad"}  # type: ignore[assignment]
    receiver.script(Respond(200, body=json.dumps({"errors": True, "items": items}).encode()))
    handler = HTTPHandler(receiver.url, encoding="elasticsearch", retry_backoff=0.01)
    closing.append(handler)
    logger = attach(handler)
    for i in range(5):
        logger.info("doc", extra={"seq": i})

    assert handler.flush(timeout=20) is True
    retried = [json.loads(line)["seq"] for line in receiver.accepted[1].body.splitlines()[1::2]]
    stats = handler.stats()
    assert retried == [1, 4]
    assert (
        stats["delivered"],
        stats["retried"],
        stats["dropped"],
    ) == (4, 2, {**NO_DROPS, "rejected": 1})


def test_datadog_requests_hold_at_most_1000_entries_and_5_mb(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    assert (
        DatadogEncoder.max_records,
        DatadogEncoder.max_body_bytes,
        DatadogEncoder.max_entry_bytes,
    ) == (1000, 5_000_000, 1_000_000)
    handler = HTTPHandler(
        receiver.url,
        encoding="datadog",
        gzip=True,
        batch_max_records=100_000,
        batch_max_bytes=50_000_000,
        max_queue_bytes=200_000_000,
        flush_interval=30,
    )
    closing.append(handler)
    logger = attach(handler)
    for i in range(2500):
        logger.info("small", extra={"seq": i})
    assert handler.flush(timeout=30) is True
    for i in range(600):
        logger.info("x" * 10_000, extra={"seq": i})
    logger.info("y" * 1_100_000)  # over Datadog's 1 MB per log
    assert handler.flush(timeout=30) is True

    sizes = [(len(json.loads(r.body)), len(r.body)) for r in receiver.accepted]
    assert sum(n for n, _ in sizes) == 3100
    assert max(n for n, _ in sizes) <= 1000
    assert max(b for _, b in sizes) <= 5_000_000
    assert receiver.accepted[0].headers["Content-Encoding"] == "gzip"
    assert handler.stats()["dropped"] == {**NO_DROPS, "too_large": 1}


def test_a_loki_line_over_256_kb_is_dropped_as_too_large(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, encoding="loki")
    closing.append(handler)
    logger = attach(handler)
    logger.info("z" * 300_000)
    logger.info("fits")

    assert handler.flush(timeout=20) is True
    streams = json.loads(receiver.accepted[0].body)["streams"]
    assert [json.loads(v[1])["message"] for s in streams for v in s["values"]] == ["fits"]
    assert handler.stats()["dropped"] == {**NO_DROPS, "too_large": 1}
