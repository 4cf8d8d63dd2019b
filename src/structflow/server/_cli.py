"""
``structflow serve [--store URL] [--host 127.0.0.1] [--port 4200] [--token T]``.

Options not given come from ``[server]`` in the configuration (and
``STRUCTFLOW__SERVER__...``), then the defaults. The command refuses to
start (exit 2, one line) when the settings are wrong: another address than
loopback without a token, a bad port, an invalid configuration, a store
that cannot be opened, or the ``server`` extra missing; when the port is
taken it exits 1. Every such line begins ``structflow serve:``, as the
store commands' lines begin with their names. When it listens it prints
one line with its address, ``structflow serve: http://127.0.0.1:4200/
(store ...)``, and serves until it gets SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import sys
from typing import Any

from structflow._cli_store import _notes_on_stderr, one_line
from structflow._config import ConfigError
from structflow.server._settings import ServerSettings, SettingsError, resolve_settings

__all__ = ["add_parser", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Seconds open requests (live tails) get to finish when the server stops.
GRACEFUL_SECONDS = 3
_EXTRA = ("starlette", "uvicorn", "ariadne")


def add_parser(commands: Any) -> None:
    """Add ``serve`` to the ``structflow`` command's sub-commands."""
    serve = commands.add_parser(
        "serve",
        help="serve a log store: ingest, query API, live tail, GraphQL and the web view",
        description="Serve a log store over HTTP: POST /api/logs gathers HTTPHandler's records, "
        "GET / is the web view.",
    )
    serve.add_argument(
        "--store", metavar="URL", help="the store ([server] store, else the configured store)"
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 4200; 0: any free port)")
    serve.add_argument(
        "--token",
        help="bearer token every request must carry (needed for a "
        "host other than loopback); STRUCTFLOW__SERVER__TOKEN keeps it out of ps",
    )


def _fail(message: str, status: int) -> int:
    print(f"structflow serve: {message}", file=sys.stderr)
    return status


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on *host*:*port* (IPv4 or IPv6, as the host resolves)."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _address(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(settings: ServerSettings) -> int:
    """Check the store, listen, and serve until stopped."""
    import uvicorn

    from structflow.server._app import create_app
    from structflow.store import StoreError, connect

    try:
        connect(settings.store).close()  # creates or upgrades the schema, or says why not
    except (ValueError, StoreError, ImportError) as exc:
        # As `structflow logs` says a store it cannot use.
        return _fail(one_line(exc), EXIT_USAGE)
    try:
        sock = _listen(settings.host, settings.port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return _fail(f"cannot listen on {settings.host}:{settings.port} ({reason})", EXIT_FAILED)
    app = create_app(settings.store, settings.token, retention_days=settings.retention_days)
    # A live tail that loses the store, and finds it again, says so.
    _notes_on_stderr("structflow serve")
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    from structflow.store._dialects import mask_url

    print(
        f"structflow serve: {_address(settings.host, sock)} (store {mask_url(settings.store)})",
        flush=True,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run ``structflow serve`` with the parsed *args*; return the exit status."""
    missing = [name for name in _EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        return _fail(
            f"the server extra is not installed ({', '.join(missing)} missing): "
            "pip install 'structflow[server]'",
            EXIT_USAGE,
        )
    options = {"store": args.store, "host": args.host, "port": args.port, "token": args.token}
    try:
        settings = resolve_settings(options)
        settings.check()
    except (ConfigError, SettingsError) as exc:
        return _fail(one_line(exc), EXIT_USAGE)
    return serve(settings)
