"""
``structflow serve`` as a real subprocess, on SQLite and on PostgreSQL.

A real flow in another process ships to it through HTTPHandler; the tests
read back through the JSON API, the live tail (SSE) and GraphQL. One server
per backend serves the whole module; each test uses its own flow names and
run ids.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from benchmarks.pgcluster import PostgresCluster

from servers import (
    Served,
    served_fixture,  # noqa: F401 - pytest finds it as 'served'
    ship_flow,
    ship_record,
)
from storelines import line, refuse_poison
from structflow import store
from structflow.server._ingest import MAX_BODY_BYTES

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def etl_run(served: Served) -> dict[str, Any]:
    """One run of the failing ETL flow, shipped from another process."""
    return ship_flow(served, "nightly-etl")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ndjson(*lines: bytes) -> bytes:
    return b"".join(x + b"\n" for x in lines)


# --- what a real flow shipped ------------------------------------------------------------


def test_a_flow_shipped_from_another_process_is_listed_as_a_failed_run(
    etl_run: dict[str, Any],
) -> None:
    counts = etl_run["counts"]
    assert (etl_run["flow_name"], etl_run["state"], etl_run["task_count"]) == (
        "nightly-etl",
        "Failed",
        6,
    )
    assert (counts["warning"], counts["error"]) == (1, 3)


def test_the_run_page_api_has_the_task_runs_in_start_order(
    served: Served, etl_run: dict[str, Any]
) -> None:
    run = served.get(f"api/runs/{etl_run['flow_run_id']}").json()
    tasks = [(t["task_name"], t["map_index"], t["state"]) for t in run["task_runs"]]
    assert tasks == [
        ("extract", None, "Success"),
        ("transform", None, "Mapped"),
        ("transform", 0, "Success"),
        ("transform", 1, "Success"),
        ("transform", 2, "Success"),
        ("load", None, "Failed"),
    ]


def test_errors_of_a_run_come_with_their_traceback(served: Served, etl_run: dict[str, Any]) -> None:
    page = served.get(
        "api/logs", {"flow_run_id": etl_run["flow_run_id"], "level": "error", "task_name": "load"}
    ).json()
    # The task's own logger.exception, then the task runner's report of the failure.
    assert [e["logger"] for e in page["entries"]] == ["structflow.load", "structflow.TaskRunner"]
    entry = page["entries"][0]
    assert entry["fields"]["rows"] == 3
    assert "ConnectionError: warehouse dwh-1 refused the connection" in entry["exception"]
    assert page["next"] is None


def test_fields_and_search_reach_the_api(served: Served, etl_run: dict[str, Any]) -> None:
    page = served.get(
        "api/logs",
        [("flow_run_id", etl_run["flow_run_id"]), ("search", "empty email"), ("where", "empty:4")],
    ).json()
    assert [(e["message"], e["fields"]["empty"], e["map_index"]) for e in page["entries"]] == [
        ("Batch 2 has 4 rows with an empty email", 4, 2)
    ]


def test_an_unknown_run_is_404_with_a_reason(served: Served) -> None:
    response = served.get("api/runs/no-such-run")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "the store has no entry of flow run 'no-such-run'"},
    )


# --- ingest ---------------------------------------------------------------------------------


def test_a_retried_batch_lands_once(served: Served) -> None:
    run = unique("retry")
    body = ndjson(*(line(f"m{i}", flow_run_id=run, record_id=f"{run}-{i}") for i in range(3)))
    first = served.post("api/logs", data=body).json()
    again = served.post("api/logs", data=body).json()
    assert (first["stored"], again["stored"], again["duplicates"]) == (3, 0, 3)
    assert len(served.get("api/logs", {"flow_run_id": run}).json()["entries"]) == 3


def test_a_gzip_body_is_stored(served: Served) -> None:
    run = unique("gzip")
    body = gzip.compress(ndjson(line("zipped", flow_run_id=run)))
    response = served.post("api/logs", data=body, headers={"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["stored"]) == (200, 1)


def test_valid_lines_are_stored_and_bad_ones_are_named_by_line_number(served: Served) -> None:
    run = unique("partial")
    body = ndjson(
        line("good 1", flow_run_id=run), b"not json", b"", line("good 2", flow_run_id=run)
    )
    body += b'{"message": "no time"}\n'
    response = served.post("api/logs", data=body)
    assert response.status_code == 207
    answer = response.json()
    assert (answer["stored"], answer["rejected"]) == (2, 2)
    assert [e["line"] for e in answer["errors"]] == [2, 5]
    assert answer["errors"][1]["reason"] == "no 'timestamp'"


def test_a_clients_bad_graphql_query_is_answered_and_not_logged_by_the_server(
    tmp_path: Path,
) -> None:
    server = Served(f"sqlite:///{tmp_path / 'logs.db'}")
    try:
        answers = [
            server.graphql("{ nosuch }"),
            server.graphql("{ flowRuns(first: "),
            server.graphql("{ flowRuns(first: -1) { nodes { id } } }"),
        ]
    finally:
        server.stop()
    assert [a["errors"][0]["message"] for a in answers] == [
        "Cannot query field 'nosuch' on type 'Query'.",
        "Syntax Error: Unexpected <EOF>.",
        "first=-1 is invalid; expected an integer from 1 to 500",
    ]
    assert server.stderr == ""


def test_a_graphql_failure_that_is_not_the_clients_is_still_logged() -> None:
    from graphql import GraphQLError

    from structflow.server._graphql import LOGGER, QueryError

    def kept(error: Exception) -> bool:
        record = logging.LogRecord(LOGGER.name, logging.ERROR, __file__, 1, error, None, None)
        return bool(LOGGER.filter(record))

    failure = GraphQLError("boom", original_error=RuntimeError("the store failed"))
    assert kept(failure)
    assert not kept(QueryError("first=-1 is invalid"))
    assert not kept(GraphQLError("Cannot query field 'nosuch' on type 'Query'."))


def test_lines_the_database_refuses_are_named_and_the_others_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    with store.connect(url) as s:
        refuse_poison(s)
    server = Served(url)
    try:
        response = server.post(
            "api/logs", data=ndjson(line("good 1"), line("poison"), line("good 2", seconds=1))
        )
        entries = server.get("api/logs").json()["entries"]
    finally:
        server.stop()
    assert response.status_code == 207, response.text
    answer = response.json()
    assert (answer["stored"], answer["rejected"]) == (2, 1)
    (error,) = answer["errors"]
    assert error["line"] == 2
    assert error["reason"] == "the database refused it: no poison here"
    assert [e["message"] for e in entries] == ["good 1", "good 2"]


def test_the_configured_retention_prunes_the_served_store_as_lines_land(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    with store.connect(url) as s:
        s.ingest([line(f"from 2024, {i}", seconds=i) for i in range(20)])
    server = Served(url, STRUCTFLOW__LOGGING__STORE__RETENTION_DAYS="30")
    try:
        before = server.get("api/logs", {"limit": "100"}).json()["entries"]
        today = {"timestamp": dt.datetime.now(dt.UTC).isoformat(), "message": "today"}
        stored = server.post("api/logs", data=ndjson(json.dumps(today).encode()))
        after = server.get("api/logs", {"limit": "100"}).json()["entries"]
    finally:
        server.stop()
    assert (len(before), stored.status_code) == (20, 200)
    assert [e["message"] for e in after] == ["today"]


def test_a_body_of_only_bad_lines_is_400(served: Served) -> None:
    response = served.post("api/logs", data=b"[1, 2]\n")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 1, "reason": "a JSON list, not an object"}]


def test_an_oversized_body_is_413(served: Served) -> None:
    response = served.post("api/logs", data=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert "larger than 16777216 bytes" in response.json()["error"]


def test_a_gzip_body_that_inflates_past_the_limit_is_413(served: Served) -> None:
    bomb = gzip.compress(b" " * (MAX_BODY_BYTES + 1024))
    response = served.post("api/logs", data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_another_content_encoding_is_415(served: Served) -> None:
    response = served.post("api/logs", data=b"x", headers={"Content-Encoding": "br"})
    assert (response.status_code, response.json()["error"]) == (
        415,
        "Content-Encoding 'br' is not supported; expected gzip or none",
    )


# --- query parameters and pages --------------------------------------------------------------


def test_logs_page_with_the_next_cursor(served: Served) -> None:
    run = unique("pages")
    served.post(
        "api/logs", data=ndjson(*(line(f"m{i}", seconds=i, flow_run_id=run) for i in range(5)))
    )
    messages, after = [], None
    while True:
        params = {"flow_run_id": run, "limit": "2", **({"after": after} if after else {})}
        page = served.get("api/logs", params).json()
        messages.append([e["message"] for e in page["entries"]])
        after = page["next"]
        if after is None:
            break
    assert messages == [["m0", "m1"], ["m2", "m3"], ["m4"]]


def test_runs_page_with_the_next_cursor(served: Served) -> None:
    from storelines import lifecycle

    flow = unique("paged-flow")
    served.post(
        "api/logs",
        data=ndjson(*(x for n in range(3) for x in lifecycle(f"{flow}-{n}", flow=flow, start=n))),
    )
    first = served.get("api/runs", {"flow_name": flow, "limit": "2"}).json()
    second = served.get(
        "api/runs", {"flow_name": flow, "limit": "2", "after": first["next"]}
    ).json()
    ids = [[r["flow_run_id"] for r in page["runs"]] for page in (first, second)]
    assert (ids, second["next"]) == ([[f"{flow}-2", f"{flow}-1"], [f"{flow}-0"]], None)


@pytest.mark.parametrize(
    ("params", "parameter", "error"),
    [
        ({"level": "verbose"}, "level", "level='verbose' is not a log level; expected NOTSET"),
        ({"limit": "0"}, "limit", "limit='0' is invalid; expected an integer from 1 to 1000"),
        ({"limit": "many"}, "limit", "limit='many' is invalid"),
        ({"since": "yesterday"}, "since", "since='yesterday' is not a time"),
        ({"after": "xyz"}, "after", "after='xyz' is not a cursor"),
        ({"order": "up"}, "order", "order='up' is invalid; expected 'asc' or 'desc'"),
        ({"where": "nocolon"}, "where", "where 'nocolon' is invalid; expected key:value"),
        ({"where": "bad key!:1"}, "where", "where key 'bad key!' is not a field path"),
        ({"search": "!!"}, "search", "search='!!' has no word to search for"),
        ({"levle": "info"}, "levle", "'levle' is not a parameter of this route; expected one of"),
        ([("level", "info"), ("level", "error")], "level", "level is given 2 times; give it once"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(
    served: Served, params: Any, parameter: str, error: str
) -> None:
    response = served.get("api/logs", params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
    assert response.json()["error"].startswith(error)


def test_a_bad_runs_parameter_is_400_naming_it(served: Served) -> None:
    response = served.get("api/runs", {"limit": "501"})
    assert (response.status_code, response.json()["parameter"]) == (400, "limit")


def test_an_overlong_query_string_is_400(served: Served) -> None:
    response = served.get("api/logs", {"search": "x" * 9000})
    assert response.status_code == 400
    assert response.json()["error"].startswith("the query string is ")


def test_the_openapi_description_lists_every_route(served: Served) -> None:
    doc = served.get("api/openapi.json").json()
    assert sorted(doc["paths"]) == [
        "/api/logs",
        "/api/logs/stream",
        "/api/runs",
        "/api/runs/{flow_run_id}",
    ]
    names = [p["name"] for p in doc["paths"]["/api/logs"]["get"]["parameters"]]
    assert "where" in names and "after" in names


# --- the live tail ---------------------------------------------------------------------------


def lines_of(response: requests.Response) -> Iterator[str]:
    return response.iter_lines(decode_unicode=True)


def read_events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next *count* entry events from the lines of an SSE response: id, event, data."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for raw in lines:
        if raw == "":
            if current.get("event") == "entry":
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not raw.startswith(":"):
            field, _, value = raw.partition(": ")
            current[field] = json.loads(value) if field == "data" else value
    raise AssertionError(f"the stream ended after {events}")


def test_the_live_tail_sends_stored_then_new_entries_with_cursor_ids(served: Served) -> None:
    run = unique("tail")
    served.post("api/logs", data=ndjson(line("before", flow_run_id=run)))
    with served.get(
        "api/logs/stream", {"flow_run_id": run, "level": "info"}, stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = lines_of(response)
        (first,) = read_events(lines, 1)
        ship_record(served.ingest_url, run, "watcher", "after the tail started")
        (second,) = read_events(lines, 1)
    assert [first["data"]["message"], second["data"]["message"]] == [
        "before",
        "after the tail started",
    ]
    assert second["id"] == second["data"]["cursor"]


def test_a_reconnecting_tail_resumes_after_its_last_event_id(served: Served) -> None:
    run = unique("resume")
    served.post(
        "api/logs", data=ndjson(*(line(f"m{i}", seconds=i, flow_run_id=run) for i in range(3)))
    )
    first = served.get("api/logs", {"flow_run_id": run, "limit": "1"}).json()["entries"][0]
    with served.get(
        "api/logs/stream",
        {"flow_run_id": run},
        headers={"Last-Event-ID": first["cursor"]},
        stream=True,
    ) as response:
        events = read_events(lines_of(response), 2)
    assert [e["data"]["message"] for e in events] == ["m1", "m2"]


def test_a_live_tail_stays_open_through_a_postgresql_restart(
    own_pg_cluster: PostgresCluster,
) -> None:
    url = own_pg_cluster.new_schema()
    with store.connect(url) as s:
        s.ingest([line("before", seconds=0, flow_run_id="r1")])
    server = Served(url)
    try:
        with server.get("api/logs/stream", {"flow_run_id": "r1"}, stream=True) as response:
            lines = lines_of(response)
            (first,) = read_events(lines, 1)
            own_pg_cluster.crash()
            assert server.proc.stderr is not None
            lost = server.proc.stderr.readline()
            own_pg_cluster.start()
            stored = server.post(
                "api/logs", data=ndjson(line("after", seconds=1, flow_run_id="r1"))
            )
            assert stored.status_code == 200, stored.text
            (second,) = read_events(lines, 1)
            back = server.proc.stderr.readline()
    finally:
        server.stop()
    assert [first["data"]["message"], second["data"]["message"]] == ["before", "after"]
    assert lost.startswith("structflow serve: lost the store while following: cannot connect"), lost
    assert back.startswith("structflow serve: store "), back
    assert ": following again, after " in back, back


def test_a_bad_tail_filter_is_400_before_any_event(served: Served) -> None:
    response = served.get("api/logs/stream", {"level": "loud"})
    assert (response.status_code, response.json()["parameter"]) == (400, "level")


def test_a_closed_tail_frees_its_slot(served: Served) -> None:
    """Tails whose clients left do not count against the limit of open tails."""
    from structflow.server._stores import MAX_TAILS

    run = unique("slots")
    served.post("api/logs", data=ndjson(line("x", flow_run_id=run)))

    def one_tail() -> None:
        with served.get("api/logs/stream", {"flow_run_id": run}, stream=True) as r:
            read_events(lines_of(r), 1)

    for _round in range(2):
        threads = [threading.Thread(target=one_tail) for _ in range(MAX_TAILS // 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    with served.get("api/logs/stream", {"flow_run_id": run}, stream=True) as response:
        assert response.status_code == 200


# --- GraphQL -------------------------------------------------------------------------------

RUN_LOGS = """
query RunLogs($id: String!) {
  flowRun(id: $id) {
    flowName
    state
    taskRuns { taskName mapIndex state logs(level: "warning") { nodes { message } } }
    logs(order: ASC, first: 3) {
      nodes { timestamp level message taskName }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""


def test_graphql_gives_a_run_its_task_runs_and_their_logs(
    served: Served, etl_run: dict[str, Any]
) -> None:
    data = served.graphql(RUN_LOGS, id=etl_run["flow_run_id"])["data"]["flowRun"]
    assert (data["flowName"], data["state"]) == ("nightly-etl", "Failed")
    warned = [(t["taskName"], t["mapIndex"]) for t in data["taskRuns"] if t["logs"]["nodes"]]
    assert warned == [("transform", 2), ("load", None)]
    first = data["logs"]["nodes"]
    assert [n["message"] for n in first] == [
        "Beginning Flow run for 'nightly-etl'",
        "Task 'extract': Starting task run...",
        "Reading 120 rows from s3://bucket/users.csv",
    ]
    assert data["logs"]["pageInfo"]["hasNextPage"] is True


def test_graphql_pages_logs_with_end_cursor(served: Served, etl_run: dict[str, Any]) -> None:
    query = """
    query Page($id: String!, $after: String) {
      logs(flowRunId: $id, first: 10, after: $after) {
        nodes { id }
        pageInfo { endCursor hasNextPage }
      }
    }"""
    ids: list[str] = []
    after = None
    while True:
        page = served.graphql(query, id=etl_run["flow_run_id"], after=after)["data"]["logs"]
        ids.extend(n["id"] for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    rest = served.get("api/logs", {"flow_run_id": etl_run["flow_run_id"], "limit": "1000"})
    assert ids == [e["id"] for e in rest.json()["entries"]]


def test_graphql_lists_flow_runs_with_filters(served: Served, etl_run: dict[str, Any]) -> None:
    query = """{
      flowRuns(flowName: "nightly-etl", state: "failed") { nodes { id counts { level count } } }
    }"""
    nodes = served.graphql(query)["data"]["flowRuns"]["nodes"]
    assert nodes[0]["id"] == etl_run["flow_run_id"]
    assert {"level": "error", "count": 3} in nodes[0]["counts"]


def test_a_bad_graphql_argument_is_named_as_the_schema_spells_it(served: Served) -> None:
    body = served.graphql('{ logs(flowRunId: "x", since: "someday") { nodes { id } } }')
    assert body["errors"][0]["message"].startswith("since='someday' is not a time")


def test_graphql_refuses_a_huge_query_body(served: Served) -> None:
    response = served.post("graphql", json={"query": "{ " + "a " * 40000 + "}"})
    assert response.status_code == 413


# --- the page shell ---------------------------------------------------------------------------


def test_the_page_and_its_assets_are_served_from_the_package(served: Served) -> None:
    page = served.get("")
    script = served.get("static/app.js")
    style = served.get("static/app.css")
    assert [r.status_code for r in (page, script, style)] == [200, 200, 200]
    assert '<script src="/static/app.js" defer></script>' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_a_run_address_serves_the_same_page(served: Served) -> None:
    assert served.get("runs/some-run").text == served.get("").text


def test_no_page_asset_loads_from_elsewhere() -> None:
    static = Path(__file__).resolve().parent.parent / "src/structflow/server/static"
    for path in static.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name


def test_graphql_refuses_the_logs_of_too_many_runs_at_once(
    served: Served, etl_run: dict[str, Any]
) -> None:
    from structflow.server._graphql import MAX_LOG_LISTS

    run = etl_run["flow_run_id"]
    fields = [
        f'r{n}: flowRun(id: "{run}") {{ logs(first: 1) {{ nodes {{ id }} }} }}'
        for n in range(MAX_LOG_LISTS + 1)
    ]
    query = "{ " + " ".join(fields) + " }"
    body = served.graphql(query)
    assert any("more than 200 runs and task runs" in e["message"] for e in body["errors"])


def test_http_handler_counts_the_lines_the_server_refuses(served: Served) -> None:
    """A line the server cannot store is counted as rejected in the handler's stats."""
    import structflow
    from structflow.formatters import JsonFormatter
    from structflow.handlers import HTTPHandler

    made: dict[str, bytes] = {}

    class NoTimeForSome(JsonFormatter):
        def format_bytes(self, record: Any) -> bytes:
            if record.getMessage() == "no time":
                return b'{"message": "no time"}'
            made["stored"] = super().format_bytes(record)
            return made["stored"]

    run = unique("refused")
    structflow.configure(stream="none")
    handler = HTTPHandler(served.ingest_url, flush_interval=0.05)
    handler.setFormatter(NoTimeForSome())
    logger = structflow.get_logger("refusals")
    logger.addHandler(handler)
    try:
        with structflow.context(flow_run_id=run):
            logger.info("stored")
            logger.info("no time")
        assert handler.flush(20)
        stats = handler.stats()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (stats["delivered"], stats["dropped"]["rejected"]) == (1, 1)
    # The bytes of the line stored (with the record id the handler adds to it).
    assert len(made["stored"]) < stats["delivered_bytes"] < len(made["stored"]) + 60
    assert [
        e["message"] for e in served.get("api/logs", {"flow_run_id": run}).json()["entries"]
    ] == ["stored"]
