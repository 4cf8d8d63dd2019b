"""The seed page's example (examples/logging_example.py) against a real HTTP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "logging_example.py"
FORMAT = "%(levelname)s - %(name)s | %(message)s"


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.messages: list[str] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        for msg in parse_qs(urlsplit(self.path).query).get("msg", []):
            with self.server.lock:
                self.server.messages.append(msg)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output to what the example prints


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run_example(receiver: _Receiver, level: str) -> subprocess.CompletedProcess[str]:
    host, port = receiver.server_address[:2]
    env = {
        **os.environ,
        "STRUCTFLOW__LOGGING__LEVEL": level,
        "STRUCTFLOW__LOGGING__FORMAT": FORMAT,
        "STRUCTFLOW_EXAMPLE_URL": f"http://{host!s}:{port}/",
    }
    return subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_receiver_gets_exactly_the_two_debug_messages_in_order(receiver: _Receiver) -> None:
    proc = run_example(receiver, "DEBUG")
    assert proc.returncode == 0, proc.stderr
    with receiver.lock:
        assert receiver.messages == [
            "Beginning to run Task B with input 3",
            "Returning the value 10",
        ]
    lines = proc.stdout.splitlines()
    assert "DEBUG - structflow.Task B | Beginning to run Task B with input 3" in lines
    assert "DEBUG - structflow.Task B | Returning the value 10" in lines
    assert "INFO - structflow.FlowRunner | Beginning Flow run for 'logging-example'" in lines
    assert (
        "INFO - structflow.TaskRunner | Task 'Task B': Finished task run for task with "
        "final state: 'Success'"
    ) in lines
    assert "INFO - structflow.FlowRunner | Flow run SUCCESS: all reference tasks succeeded" in lines


def test_at_info_level_nothing_reaches_the_receiver(receiver: _Receiver) -> None:
    proc = run_example(receiver, "INFO")
    assert proc.returncode == 0, proc.stderr
    with receiver.lock:
        assert receiver.messages == []
    assert "Beginning to run Task B" not in proc.stdout
    assert "INFO - structflow.FlowRunner | Flow run SUCCESS: all reference tasks succeeded" in (
        proc.stdout.splitlines()
    )
