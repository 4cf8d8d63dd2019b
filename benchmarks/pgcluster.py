"""
A throwaway PostgreSQL cluster for tests and benchmarks.

``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package (or any
PostgreSQL on PATH) make a cluster in a temporary directory that listens on
127.0.0.1 at a free port and on a unix socket in that directory, with trust
authentication and nothing shared with a system cluster. PostgreSQL refuses
to run as root: under root the cluster belongs to the ``postgres`` system
user the package creates, and its commands run through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence

__all__ = ["PostgresCluster", "find_bindir"]

#: The role tests connect as (a superuser of the throwaway cluster).
USER = "structflow"


def find_bindir() -> str | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0,
    )
    return os.path.dirname(versions[-1]) if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """
    A running throwaway cluster; :meth:`stop` removes it.

    Args:
        settings: extra ``-c name=value`` server settings.
    """

    def __init__(self, settings: Sequence[str] = ()) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package 'postgresql')")
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix="structflow-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root needs the 'postgres' system user to own the cluster"
                ) from None
            os.chown(self.dir, self._owner.pw_uid, self._owner.pw_gid)
        os.chmod(self.dir, 0o755)
        self._run(
            "initdb",
            "-D",
            self.data,
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self._options = [
            f"-p {self.port}",
            f"-k {self.dir}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=50",
            *(f"-c {s}" for s in settings),
        ]
        self.start()

    def start(self) -> None:
        """Start the server (again, after :meth:`crash`); return once it takes connections."""
        self._run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            os.path.join(self.dir, "server.log"),
            "-o",
            " ".join(self._options),
            "-w",
            "-t",
            "60",
            "start",
        )
        self._running = True

    def crash(self) -> None:
        """
        Stop the server as a crash would (``pg_ctl stop -m immediate``): connections are cut.

        The data stays; :meth:`start` brings the server back after crash recovery.
        """
        self._running = False
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [os.path.join(self.bindir, tool), *args]
        if self._owner is not None:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, check=False, cwd=self.dir
        )
        if proc.returncode != 0:
            log = os.path.join(self.dir, "server.log")
            tail = ""
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    tail = f.read()[-2000:]
            raise RuntimeError(
                f"{tool} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}\n{tail}"
            )

    def url(self, database: str = "postgres", **params: str) -> str:
        """A url for *database* over TCP on 127.0.0.1, with extra connection *params*."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement as the superuser (autocommit)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement.encode("utf-8"))

    def new_schema(self, prefix: str = "t") -> str:
        """
        Create a fresh schema; return a url whose connections use it.

        Each test gets its own schema in one database: much cheaper than a
        database per test, and just as isolated for the store's tables.
        """
        name = f"{prefix}_{os.getpid()}_{time.monotonic_ns()}"
        self.sql(f"CREATE SCHEMA {name}")
        return self.url(options=f"-csearch_path%3D{name}")

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        if getattr(self, "_running", False):
            self._running = False
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
