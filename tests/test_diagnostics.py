"""
Where the shipping handlers' diagnostics go: the ``structflow.shipping`` logger, else stderr.

Each test runs in a fresh interpreter configured as a user would, against a
real receiver on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from receivers import (
    HTTPReceiver,
    Respond,
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
    run_python,
)

pytestmark = pytest.mark.timeout(60)

# The README's shipping set-up: no stream, records go to a receiver that
# refuses them (HTTP 400). argv[2] == "shown" adds a handler of the
# application's own on the diagnostics logger.
REJECTED_CHILD = """
import logging, sys
import structflow
structflow.configure(stream="none", http={"url": sys.argv[1]})
if sys.argv[2] == "shown":
    shown = logging.StreamHandler(sys.stdout)
    shown.setFormatter(logging.Formatter("shown: %(message)s"))
    logging.getLogger("structflow.shipping").addHandler(shown)
log = structflow.get_logger("app")
for i in range(5):
    log.info("refused", seq=i)
(handler,) = structflow.get_logger().handlers
print("flushed", handler.flush(10), handler.stats()["dropped"]["rejected"], flush=True)
"""


def test_diagnostics_reach_stderr_when_no_handler_shows_them(receiver: HTTPReceiver) -> None:
    receiver.default = Respond(400, body=b"bad request")

    proc = run_python(REJECTED_CHILD, receiver.url, "alone")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["flushed", "True", "5"]
    (line,) = proc.stderr.splitlines()
    assert "the receiver rejected 5 record(s) (HTTP 400" in line
    assert line.startswith("structflow.shipping: ERROR: HTTPHandler(")


def test_diagnostics_stay_off_stderr_when_a_handler_shows_them(receiver: HTTPReceiver) -> None:
    receiver.default = Respond(400, body=b"bad request")

    proc = run_python(REJECTED_CHILD, receiver.url, "shown")

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "shown: HTTPHandler(" in proc.stdout
    assert "the receiver rejected 5 record(s)" in proc.stdout


def test_a_percent_in_the_destination_does_not_garble_the_message(
    receiver: HTTPReceiver,
) -> None:
    # Percent-encoded urls are common (a path with escapes, PostgreSQL's
    # options=-csearch_path%3D...); the label that names the destination is
    # text, not part of the message's format.
    receiver.default = Respond(400, body=b"bad request")
    url = receiver.url.rstrip("/") + "/logs%20in"

    proc = run_python(REJECTED_CHILD, url, "alone")

    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("structflow.shipping: ERROR: HTTPHandler(")
    assert "HTTPHandler(http://127.0.0.1:" in line and "/logs%20in (ndjson)): " in line
    assert "the receiver rejected 5 record(s) (HTTP 400 Bad Request: bad request); dropped" in line
