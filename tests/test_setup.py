"""Configuration wiring: [logging.http] and [logging.syslog] attach shipping handlers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import structflow
from receivers import HTTPReceiver, receiver_fixture, run_python, wait_until
from structflow import ConfigError
from structflow.handlers import HTTPHandler, SyslogHandler

__all__ = ["receiver_fixture"]  # pytest finds it as 'receiver'


def shipping(logger: logging.Logger) -> list[HTTPHandler | SyslogHandler]:
    return [h for h in logger.handlers if isinstance(h, HTTPHandler | SyslogHandler)]


def test_http_section_from_environment_ships_json_with_context(
    receiver: HTTPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__URL", receiver.url)
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__FLUSH_INTERVAL", "0.05")
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STREAM", "none")
    logger = structflow.get_logger("Task B")
    with structflow.context(flow_name="f", flow_run_id="fr", task_name="Task B"):
        logger.bind(run_id="r1").warning("shipped %d", 1, password="hunter2")
    (handler,) = shipping(structflow.get_logger())
    assert handler.flush(timeout=10)
    (line,) = receiver.lines()
    del line["timestamp"]
    assert isinstance(line.pop("_record_id"), str)
    assert line == {
        "level": "warning",
        "logger": "structflow.Task B",
        "message": "shipped 1",
        "flow_name": "f",
        "flow_run_id": "fr",
        "task_name": "Task B",
        "run_id": "r1",
        "password": "[REDACTED]",
    }


def test_reconfiguring_with_same_settings_keeps_one_handler(receiver: HTTPReceiver) -> None:
    structflow.configure(stream="none", http={"url": receiver.url})
    first = shipping(structflow.get_logger())
    structflow.configure(stream="none", http={"url": receiver.url})
    assert shipping(structflow.get_logger()) == first
    assert len(first) == 1
    structflow.configure(stream="none", http={"url": receiver.url, "gzip": True})
    (second,) = shipping(structflow.get_logger())
    assert second is not first[0]
    structflow.configure(stream="none", http=None)
    assert shipping(structflow.get_logger()) == []


def test_extra_loggers_share_the_shipping_handler(receiver: HTTPReceiver) -> None:
    structflow.configure(
        stream="none", extra_loggers=["lib.x"], http={"url": receiver.url, "flush_interval": 0.05}
    )
    logging.getLogger("lib.x").warning("from a library")
    (handler,) = shipping(structflow.get_logger())
    assert handler.flush(timeout=10)
    assert [line["message"] for line in receiver.lines()] == ["from a library"]


def test_bad_http_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__WHEN_FULL", "explode")
    with pytest.raises(ConfigError) as info:
        structflow.configure()
    assert "STRUCTFLOW__LOGGING__HTTP__WHEN_FULL" in str(info.value)
    assert "explode" in str(info.value)


def test_text_from_the_environment_stays_text_for_a_handler_that_takes_text(
    receiver: HTTPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token of digits, and a header whose name has dashes and whose value
    # reads as a number: sent as they were set.
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__URL", receiver.url)
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__TOKEN", "0012345")
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__HEADERS__X_API_KEY", "1.50")
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__FLUSH_INTERVAL", "0.05")
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STREAM", "none")
    structflow.get_logger("t").warning("shipped")
    (handler,) = shipping(structflow.get_logger())
    assert handler.flush(timeout=10)
    (request,) = receiver.accepted
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert (headers["authorization"], headers["x-api-key"]) == ("Bearer 0012345", "1.50")


def test_a_handler_table_without_its_required_key_says_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__HTTP__TOKEN", "abc")
    with pytest.raises(ConfigError) as info:
        structflow.configure()
    assert str(info.value) == (
        "STRUCTFLOW__LOGGING__HTTP__TOKEN: [logging.http] has no url, which HTTPHandler needs; "
        "set url in [logging.http] or STRUCTFLOW__LOGGING__HTTP__URL"
    )


def test_syslog_section_attaches_syslog_handler(tmp_path: Path) -> None:
    structflow.configure(stream="none", syslog={"address": "udp://127.0.0.1:9", "app_name": "etl"})
    (handler,) = shipping(structflow.get_logger())
    assert isinstance(handler, SyslogHandler)


def test_json_renderer_turns_the_seed_example_into_json_lines(
    receiver: HTTPReceiver, tmp_path: Path
) -> None:
    """STRUCTFLOW__LOGGING__RENDERER=json: JSON lines with run context, no other change."""
    example = Path(__file__).resolve().parents[1] / "examples" / "logging_example.py"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW")},
        "STRUCTFLOW__USER_CONFIG_PATH": os.devnull,
        "STRUCTFLOW__LOGGING__LEVEL": "DEBUG",
        "STRUCTFLOW__LOGGING__RENDERER": "json",
        "STRUCTFLOW_EXAMPLE_URL": receiver.url,
    }
    proc = subprocess.run(
        [sys.executable, str(example)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    task_b = [line for line in lines if line["logger"] == "structflow.Task B"]
    assert [line["message"] for line in task_b] == [
        "Beginning to run Task B with input 3",
        "Returning the value 10",
    ]
    for line in task_b:
        assert line["flow_name"] == "logging-example"
        assert line["task_name"] == "Task B"
        assert line["map_index"] is None
        assert line["task_run_count"] == 1
        assert {"flow_run_id", "task_run_id", "timestamp", "level"} <= set(line)
    wait_until(lambda: len(receiver.accepted) == 2, timeout=10)
    assert [r.path.split("msg=")[1] for r in receiver.accepted] == [
        "Beginning+to+run+Task+B+with+input+3",
        "Returning+the+value+10",
    ]


EXTRA_SCRIPT = r"""
import logging, sys
import structflow

# The application's own root handler, as logging.basicConfig would add.
logging.basicConfig(stream=sys.stdout, format="ROOT %(name)s %(message)s", level=logging.DEBUG)
structflow.configure(extra_loggers=["urllib3"], renderer="json", level="INFO")
with structflow.context(flow_name="f", task_name="t"):
    logging.getLogger("urllib3.connectionpool").warning("retrying %s", "GET /")
    logging.getLogger("urllib3").debug("below the level structflow set")
    structflow.get_logger("t").info("task line")
    logging.getLogger("app").warning("app line")
"""


def test_extra_logger_lines_appear_once_with_context() -> None:
    """Prefect #12518: no duplicate lines through propagation to the root logger."""
    proc = run_python(EXTRA_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3, lines
    first, second = (json.loads(line) for line in lines[:2])
    assert (first["logger"], first["message"], first["flow_name"], first["task_name"]) == (
        "urllib3.connectionpool",
        "retrying GET /",
        "f",
        "t",
    )
    assert (second["logger"], second["message"]) == ("structflow.t", "task line")
    assert lines[2] == "ROOT app app line"
