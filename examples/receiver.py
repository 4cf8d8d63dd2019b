"""
A small log receiver for the examples: prints every message it is sent.

It understands the seed page's handler (``POST /?msg=...``) and structflow's
HTTPHandler (an NDJSON body, optionally gzipped). Run it on its own with
``python examples/receiver.py 8000``, or use :func:`start` from a script.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Receiver(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that keeps what it receives, in order."""

    daemon_threads = True

    def __init__(self, port: int = 0, echo: bool = True) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.messages: list[str] = []
        self.records: list[dict[str, object]] = []
        self.echo = echo
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def keep(self, message: str, record: dict[str, object] | None = None) -> None:
        with self.lock:
            self.messages.append(message)
            if record is not None:
                self.records.append(record)
        if self.echo:
            print(f"receiver got: {json.dumps(record) if record else message}", flush=True)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        for msg in query.get("msg", []):
            self.server.keep(msg)
        for line in body.splitlines():
            if line.strip():
                record = json.loads(line)
                self.server.keep(str(record.get("message", "")), record)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: object) -> None:
        pass  # the receiver prints what it got, not an access log


def start(port: int = 0, echo: bool = True) -> Receiver:
    """Start a receiver in a daemon thread and return it."""
    server = Receiver(port, echo)
    threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()
    return server


if __name__ == "__main__":
    server = Receiver(int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
    print(f"listening on {server.url}", flush=True)
    server.serve_forever()
