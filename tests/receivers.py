"""
Real receivers on 127.0.0.1 for the shipping tests.

* :class:`HTTPReceiver` — a threaded HTTP/1.1 server (keep-alive) whose
  answers can be scripted: a status with headers (503, 429 with
  Retry-After, 400 ...), a cut connection, a request that is never
  answered, and 413 for bodies over a size.
* :class:`SyslogReceiver` — a TCP (octet-counting) or UDP syslog listener.
* :class:`SyslogNg` — a real syslog-ng process with the configuration from
  the project's reference notes, and the ``syslog_ng`` fixture;
* :class:`Rsyslog` — a real rsyslogd (imtcp, mmjsonparse), and the
  ``rsyslog`` fixture.

Everything binds to 127.0.0.1 on a free port and stops by itself.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from needs import require
from structflow.handlers.shipping.worker import DROP_REASONS

#: stats()["dropped"] of a handler that dropped nothing.
NO_DROPS = dict.fromkeys(DROP_REASONS, 0)
#: Retry quickly: tests wait for retries, not for the default backoff.
FAST = {"retry_backoff": 0.01, "retry_max_backoff": 0.05}


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> bool:
    """Poll *predicate* until it is true or *timeout* passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


# --- HTTP ---------------------------------------------------------------------


@dataclass(frozen=True)
class Respond:
    """Answer with *status*, *headers* and *body*; 2xx answers keep the request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Cut:
    """Read the request, then close the connection without answering."""


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer (until the receiver is closed)."""


Action = Respond | Cut | Hang


@dataclass
class Request:
    """One request as the receiver saw it (body decompressed)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | str
    client: tuple[str, int] = ("", 0)
    at: float = field(default_factory=time.monotonic)


class HTTPReceiver(ThreadingHTTPServer):
    """
    An HTTP receiver on 127.0.0.1 with scriptable answers.

    ``script(action, ...)`` queues answers for the next requests; when the
    script is empty, ``default`` answers (200 unless changed). Bodies larger
    than ``max_body`` get 413. ``accepted`` holds the requests answered 2xx,
    ``attempts`` every request.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _HTTPHandler)
        self.scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self.lock = threading.Lock()
        self.actions: deque[Action] = deque()
        self.default: Action = Respond(200)
        self.max_body: int | None = None
        self.accepted: list[Request] = []
        self.attempts: list[Request] = []
        self.released = threading.Event()
        self.thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="http-receiver", daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (killed processes, timeouts)."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def script(self, *actions: Action) -> None:
        with self.lock:
            self.actions.extend(actions)

    def next_action(self, body: bytes) -> Action:
        with self.lock:
            if self.max_body is not None and len(body) > self.max_body:
                return Respond(413, body=b"request entity too large")
            if self.actions:
                return self.actions.popleft()
            return self.default

    def record(self, request: Request, accepted: bool) -> None:
        with self.lock:
            self.attempts.append(request)
            if accepted:
                self.accepted.append(request)

    def lines(self) -> list[dict[str, Any]]:
        """Every NDJSON line of every accepted body, parsed, in arrival order."""
        with self.lock:
            bodies = [r.body for r in self.accepted]
        out = []
        for body in bodies:
            for line in body.split(b"\n"):
                if line:
                    out.append(json.loads(line))
        return out

    def count_lines(self) -> int:
        with self.lock:
            return sum(r.body.count(b"\n") for r in self.accepted)

    def statuses(self) -> list[int | str]:
        with self.lock:
            return [r.status for r in self.attempts]

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


class _HTTPHandler(BaseHTTPRequestHandler):
    server: HTTPReceiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        action = self.server.next_action(body)
        headers = dict(self.headers.items())
        client = self.client_address[:2]

        def request(status: int | str) -> Request:
            return Request("POST", self.path, headers, body, status, client)

        if isinstance(action, Cut):
            self.server.record(request("cut"), False)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(action, Hang):
            self.server.record(request("hang"), False)
            self.server.released.wait(120)
            self.close_connection = True
            return
        accepted = 200 <= action.status < 300
        self.server.record(request(action.status), accepted)
        self.send_response(action.status)
        for name, value in action.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(action.body)))
        self.end_headers()
        self.wfile.write(action.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[HTTPReceiver]:
    """An :class:`HTTPReceiver`, closed after the test."""
    server = HTTPReceiver()
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- plain syslog -------------------------------------------------------------


class SyslogReceiver:
    """
    A syslog listener on 127.0.0.1 keeping every message it receives.

    TCP connections are read as RFC 6587 octet-counted frames; a frame that
    does not start with digits and a space is recorded in ``errors``. With
    *close_after*, the receiver closes each connection after that many
    messages (as a restarting server would); with *tls*, it speaks TLS.
    """

    def __init__(
        self,
        transport: str = "tcp",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        close_after: int | None = None,
    ) -> None:
        self.transport = transport
        self.messages: list[bytes] = []
        self.errors: list[bytes] = []
        self.lock = threading.Lock()
        self.connections = 0
        self.closed = 0
        outer = self
        if transport == "udp":

            class UDPHandler(socketserver.BaseRequestHandler):
                def handle(self) -> None:
                    with outer.lock:
                        outer.messages.append(self.request[0])

            class UDPServer(socketserver.ThreadingUDPServer):
                max_packet_size = 65_535  # socketserver's default reads 8,192 bytes

            self.server: socketserver.TCPServer = UDPServer(("127.0.0.1", port), UDPHandler)
        else:

            class TCPHandler(socketserver.BaseRequestHandler):
                def finish(self) -> None:
                    # Closed here (not after, by the server) so that a test
                    # seeing `closed` knows the peer was told.
                    with contextlib.suppress(OSError):
                        self.request.shutdown(socket.SHUT_RDWR)
                    self.request.close()
                    with outer.lock:
                        outer.closed += 1

                def handle(self) -> None:
                    with outer.lock:
                        outer.connections += 1
                    buf = b""
                    seen = 0
                    while True:
                        if close_after is not None and seen >= close_after:
                            return
                        try:
                            chunk = self.request.recv(65536)
                        except OSError:
                            return
                        if not chunk:
                            return
                        buf += chunk
                        while True:
                            space = buf.find(b" ")
                            if space < 0:
                                break
                            head = buf[:space]
                            if not head.isdigit():
                                with outer.lock:
                                    outer.errors.append(buf)
                                return
                            size = int(head)
                            if len(buf) < space + 1 + size:
                                break
                            with outer.lock:
                                outer.messages.append(buf[space + 1 : space + 1 + size])
                            seen += 1
                            buf = buf[space + 1 + size :]

            class Server(socketserver.ThreadingTCPServer):
                daemon_threads = True
                allow_reuse_address = True

            self.server = Server(("127.0.0.1", port), TCPHandler)
            if tls is not None:
                self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="syslog-receiver", daemon=True
        )
        self.thread.start()

    @property
    def address(self) -> str:
        port = self.server.server_address[1]
        scheme = "tls" if isinstance(self.server.socket, ssl.SSLSocket) else self.transport
        return f"{scheme}://127.0.0.1:{port}"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- syslog-ng ----------------------------------------------------------------

SYSLOG_NG_CONFIG = """\
@version: 3.38
options {{ keep-hostname(yes); frac-digits(6); }};
source s_net {{ syslog(ip("127.0.0.1") port({port}) transport("tcp")); }};
parser p_json {{ json-parser(prefix(".json.") template("${{MESSAGE}}")); }};
destination d_file {{ file("{out}" template("{template}\\n")); }};
log {{ source(s_net); parser(p_json); destination(d_file); }};
"""
# The reference template, plus APP-NAME, MSGID and HOSTNAME of each message.
SYSLOG_NG_TEMPLATE = (
    "$(format-json --scope nv-pairs --key .json.* "
    "--pair app=${PROGRAM} --pair msgid=${MSGID} --pair host=${HOST})"
)


def syslog_ng_binary() -> str | None:
    """The syslog-ng executable, if installed."""
    return shutil.which("syslog-ng") or next(
        (p for p in ("/usr/sbin/syslog-ng", "/sbin/syslog-ng") if os.access(p, os.X_OK)), None
    )


class SyslogServer:
    """
    A real syslog server process listening for RFC 5424 over TCP on 127.0.0.1.

    It writes each message it parsed as one JSON line to ``out``, with the
    payload's fields (under ``_json`` for syslog-ng, ``json`` for rsyslog)
    and APP-NAME, MSGID and HOSTNAME.
    """

    name = "syslog server"

    def __init__(self, command: list[str], directory: Path, env: dict[str, str] | None = None):
        self.directory = directory
        self.log = open(directory / "stderr.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=directory
        )
        if not wait_until(self._listening, timeout=15):
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start: {(directory / 'stderr.log').read_text()}"
            )

    port: int
    out: Path

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def count(self) -> int:
        if not self.out.exists():
            return 0
        with open(self.out, "rb") as f:
            return f.read().count(b"\n")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class SyslogNg(SyslogServer):
    """
    syslog-ng with the configuration from the project's reference notes.

    An octet-counted ``syslog()`` source, ``json-parser`` with the ``.json.``
    prefix, ``format-json`` to a file, with APP-NAME, MSGID and HOSTNAME
    added to each output line; every limit at its stock value.
    """

    name = "syslog-ng"

    def __init__(self, binary: str, directory: Path) -> None:
        self.port = free_port()
        self.out = directory / "out.jsonl"
        conf = directory / "syslog-ng.conf"
        conf.write_text(
            SYSLOG_NG_CONFIG.format(port=self.port, out=self.out, template=SYSLOG_NG_TEMPLATE)
        )
        command = [binary, "-F", "-f", str(conf), "-R", str(directory / "syslog-ng.persist")]
        command += ["-p", str(directory / "syslog-ng.pid"), "-c", str(directory / "syslog-ng.ctl")]
        super().__init__(command, directory)


_Server = TypeVar("_Server", bound=SyslogServer)


def running(make: Callable[[Path], _Server], directory: Path) -> Iterator[_Server]:
    """Start a syslog server in *directory* (made here), and stop it when the test is done."""
    directory.mkdir()
    server = make(directory)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="syslog_ng")
def syslog_ng_fixture(tmp_path: Path) -> Iterator[SyslogNg]:
    """
    A running syslog-ng (Debian package ``syslog-ng-core``).

    Skipped when syslog-ng is not installed, except under ``CI=true``, where
    its absence fails the test.
    """
    binary = syslog_ng_binary()
    require(binary is not None, "syslog-ng (Debian package syslog-ng-core)")
    assert binary is not None
    yield from running(lambda d: SyslogNg(binary, d), tmp_path / "syslog-ng")


# --- rsyslog ------------------------------------------------------------------

#: Where scripts/install-test-deps.sh unpacks Debian's rsyslog when the system
#: has none (rsyslog and syslog-ng cannot both be installed as packages).
RSYSLOG_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "rsyslog"

# imtcp on a loopback port; mmjsonparse parses the JSON payload (no cookie);
# what parsed goes to `out` with APP-NAME, MSGID and HOSTNAME, what did not to
# `failed` as received. Every limit is at its stock value.
RSYSLOG_CONFIG = """\
global(workDirectory="@DIR@")
module(load="imtcp")
module(load="mmjsonparse")
template(name="parsed" type="string" string="@TEMPLATE@\\n")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="structflow") {
  action(type="mmjsonparse" cookie="")
  if $parsesuccess == "OK" then {
    action(type="omfile" file="@OUT@" template="parsed")
  } else {
    action(type="omfile" file="@FAILED@" template="raw")
  }
}
input(type="imtcp" address="127.0.0.1" port="@PORT@" ruleset="structflow")
"""
# Each parsed message: APP-NAME, MSGID, HOSTNAME and the payload's fields ($!).
RSYSLOG_TEMPLATE = '{"app":"%app-name%","msgid":"%msgid%","host":"%hostname%","json":%$!%}'


@dataclass(frozen=True)
class RsyslogInstall:
    """An rsyslogd, its module folder, and the folder of libraries it needs ("" for none)."""

    binary: str
    modules: str
    libraries: str = ""


def rsyslog_install() -> RsyslogInstall | None:
    """The system's rsyslog, else the one install-test-deps.sh unpacked; None if neither."""
    for root in (Path("/"), RSYSLOG_CACHE):
        binary = root / "usr" / "sbin" / "rsyslogd"
        modules = sorted(root.glob("usr/lib/*/rsyslog/imtcp.so"))
        if os.access(binary, os.X_OK) and modules:
            libraries = "" if root == Path("/") else str(modules[0].parent.parent)
            return RsyslogInstall(str(binary), str(modules[0].parent), libraries)
    return None


class Rsyslog(SyslogServer):
    """rsyslog (Debian's package) with imtcp and mmjsonparse at their stock settings."""

    name = "rsyslogd"

    def __init__(self, install: RsyslogInstall, directory: Path) -> None:
        self.port = free_port()
        self.out = directory / "out.jsonl"
        self.failed = directory / "failed.log"
        conf = directory / "rsyslog.conf"
        text = RSYSLOG_CONFIG
        for key, value in {
            "@DIR@": str(directory),
            "@OUT@": str(self.out),
            "@FAILED@": str(self.failed),
            "@PORT@": str(self.port),
            "@TEMPLATE@": RSYSLOG_TEMPLATE.replace('"', '\\"'),
        }.items():
            text = text.replace(key, value)
        conf.write_text(text)
        env = dict(os.environ)
        if install.libraries:
            env["LD_LIBRARY_PATH"] = install.libraries
        command = [install.binary, "-n", "-f", str(conf), "-i", str(directory / "rsyslogd.pid")]
        super().__init__([*command, "-M", install.modules], directory, env)

    def failures(self) -> list[str]:
        """What rsyslog received and could not parse as a JSON payload."""
        if not self.failed.exists():
            return []
        return self.failed.read_text(errors="replace").splitlines()


@pytest.fixture(name="rsyslog")
def rsyslog_fixture(tmp_path: Path) -> Iterator[Rsyslog]:
    """
    A running rsyslogd: the system's, or Debian's package unpacked by ``make test-deps``.

    Skipped when neither is there, except under ``CI=true``, where its
    absence fails the test.
    """
    install = rsyslog_install()
    require(install is not None, "rsyslog (run scripts/install-test-deps.sh)")
    assert install is not None
    yield from running(lambda d: Rsyslog(install, d), tmp_path / "rsyslog")


# --- handler plumbing ---------------------------------------------------------

_logger_ids = iter(range(1_000_000))


def attach(handler: logging.Handler, level: int = logging.DEBUG) -> logging.Logger:
    """A fresh stdlib logger that sends only to *handler*."""
    logger = logging.getLogger(f"tests.shipping.{next(_logger_ids)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level)
    return logger


@pytest.fixture(name="closing")
def closing_fixture() -> Iterator[list[logging.Handler]]:
    """Handlers appended to this list are closed after the test."""
    handlers: list[logging.Handler] = []
    try:
        yield handlers
    finally:
        for handler in handlers:
            handler.close()


class Diagnostics(logging.Handler):
    """Collects the records of a logger (the ``structflow.shipping`` logger's, by default)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@contextlib.contextmanager
def collected(name: str) -> Iterator[Diagnostics]:
    """Collect every record of logger *name* while the block runs."""
    collector = Diagnostics()
    logger = logging.getLogger(name)
    logger.addHandler(collector)
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        logger.setLevel(saved)


@pytest.fixture(name="diagnostics")
def diagnostics_fixture() -> Iterator[Diagnostics]:
    """Diagnostics of the shipping handlers made during the test."""
    with collected("structflow.shipping") as collector:
        yield collector


def run_python(
    code: str,
    *args: str,
    timeout: float = 60.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """
    Run *code* in a fresh interpreter (this one's), with *args* as sys.argv[1:].

    *cwd* and *env* are the working directory and environment (this process's
    when not given).
    """
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.fixture(name="certificate", scope="session")
def certificate_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with openssl): (cert, key)."""
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl")
    assert openssl is not None
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A server-side TLS context presenting *certificate*."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context
