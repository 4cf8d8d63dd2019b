"""
``structflow serve`` as a real subprocess on a free loopback port, and flows that ship to it.

:class:`Served` starts ``python -m structflow.cli serve --port 0`` and reads
the address from the line it prints; :func:`ship_flow` runs a real flow in
another process whose HTTPHandler sends to the server's ``/api/logs``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

__all__ = ["FLOW_SCRIPT", "Served", "served_fixture", "server_env", "ship_flow", "ship_record"]

ROOT = Path(__file__).resolve().parent.parent

#: A flow like a nightly job: extract, a mapped transform (one batch warns), a
#: load that fails with a traceback (unless told otherwise). ``argv``: url,
#: flow name, ``fail`` or ``ok``.
FLOW_SCRIPT = """
import sys, time
import structflow
from structflow import Flow, task

url, name, fail = sys.argv[1], sys.argv[2], sys.argv[3] == "fail"
structflow.configure(http={"url": url, "flush_interval": 0.1}, stream="none")

@task(name="extract")
def extract():
    log = structflow.context.get("logger")
    log.info("Reading %d rows from %s", 120, "s3://bucket/users.csv", table="users", rows=120)
    time.sleep(0.2)
    return [0, 1, 2]

@task(name="transform")
def transform(n):
    log = structflow.context.get("logger")
    log.info("Transforming batch %s", n, batch=n)
    if n == 2:
        log.warning("Batch %s has 4 rows with an empty email", n, empty=4)
    time.sleep(0.1)
    return n * 10

def connect(host):
    raise ConnectionError(f"warehouse {host} refused the connection: timeout after 30 s")

@task(name="load")
def load(values):
    log = structflow.context.get("logger")
    log.info("Loading %d values into the warehouse", len(values))
    time.sleep(0.1)
    if fail:
        try:
            connect("dwh-1")
        except ConnectionError:
            log.exception("Could not load the batch", rows=len(values))
            raise

with Flow(name) as flow:
    load(transform.map(extract()))

flow.run()
for handler in structflow.get_logger().handlers:
    if hasattr(handler, "stats"):
        assert handler.flush(20), handler.stats()
"""

#: Logs one record with a run context: ``argv``: url, flow_run_id, task_name, message.
RECORD_SCRIPT = """
import sys
import structflow
from structflow.handlers import HTTPHandler

url, run_id, task_name, message = sys.argv[1:5]
structflow.configure(stream="none")
handler = HTTPHandler(url, flush_interval=0.05)
logger = structflow.get_logger(task_name)
logger.addHandler(handler)
with structflow.context(flow_name="tail", flow_run_id=run_id, task_name=task_name):
    logger.error(message)
assert handler.flush(20), handler.stats()
handler.close()
"""


def server_env(**extra: str) -> dict[str, str]:
    """This environment without STRUCTFLOW__ variables and with no user config file."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STRUCTFLOW__")}
    env["STRUCTFLOW__USER_CONFIG_PATH"] = os.devnull
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


class Served:
    """
    A running ``structflow serve``; :meth:`stop` ends it.

    Args:
        store: the store's url.
        token: the server's token (``""``: none).
        args: more command-line arguments.
        env: more environment variables (``STRUCTFLOW__...``).
    """

    def __init__(self, store: str, token: str = "", *args: str, **env: str) -> None:
        cmd = [sys.executable, "-m", "structflow.cli", "serve", "--store", store, "--port", "0"]
        if token:
            cmd += ["--token", token]
        self.token = token
        self.stderr = ""
        self.proc = subprocess.Popen(
            [*cmd, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=server_env(**env),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("structflow serve: http://"):
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=10)
            raise RuntimeError(f"the server did not start: {line!r} {err[-2000:]}")
        self.url = line.split()[2]
        self.session = requests.Session()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                self.session.get(self.url + "api/openapi.json", headers=self.headers(), timeout=5)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    @property
    def ingest_url(self) -> str:
        return self.url + "api/logs"

    def headers(self, **extra: str) -> dict[str, str]:
        out = dict(extra)
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def get(self, path: str, params: Any = None, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return self.session.get(
            self.url + path.lstrip("/"), params=params, headers=headers, **kwargs
        )

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return self.session.post(self.url + path.lstrip("/"), headers=headers, **kwargs)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.post("graphql", json={"query": query, "variables": variables})
        body: dict[str, Any] = response.json()
        return body

    def run_of(self, flow_name: str) -> dict[str, Any]:
        """The newest run of *flow_name* (waiting for its last record to land)."""
        deadline = time.monotonic() + 20
        while True:
            runs = self.get("api/runs", {"flow_name": flow_name}).json()["runs"]
            if runs and runs[0]["state"] not in (None, "Running"):
                return dict(runs[0])
            if time.monotonic() > deadline:
                raise AssertionError(f"no finished run of {flow_name!r}: {runs}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            #: What the server wrote on stderr that a test had not read yet.
            self.stderr = self.proc.stderr.read()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


#: Runs the script given as the first argument under a plain file name, so its
#: tracebacks (shown in the docs' screenshots) name no directory of this machine.
_BOOT = (
    "import sys; source = sys.argv.pop(1); "
    "exec(compile(source, 'nightly_etl.py', 'exec'), {'__name__': '__main__'})"
)


def _run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _BOOT, script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def ship_flow(served: Served, flow_name: str, *, fail: bool = True) -> dict[str, Any]:
    """Run :data:`FLOW_SCRIPT` in another process; return its run as the API lists it."""
    _run(FLOW_SCRIPT, served.ingest_url, flow_name, "fail" if fail else "ok")
    return served.run_of(flow_name)


def ship_record(url: str, flow_run_id: str, task_name: str, message: str) -> None:
    """Log one ERROR record with a run context from another process, through HTTPHandler."""
    _run(RECORD_SCRIPT, url, flow_run_id, task_name, message)


@pytest.fixture(name="served", scope="module", params=["sqlite", "postgresql"])
def served_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A running server on each backend, for the module."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('serve') / 'logs.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_schema()
    server = Served(url)
    try:
        yield server
    finally:
        server.stop()
