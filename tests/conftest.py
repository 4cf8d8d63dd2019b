"""Shared fixtures: every test starts from an unconfigured structflow and a clean environment."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.pgcluster import PostgresCluster, find_bindir

import structflow
import structflow._setup as setup
from needs import require
from sample_flows import Collect
from structflow.store import Store, connect


def _structflow_loggers() -> list[logging.Logger]:
    out = []
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and (
            name == "structflow" or name.startswith("structflow.")
        ):
            out.append(lg)
    return out


@pytest.fixture(autouse=True)
def clean_structflow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """
    Reset structflow's configuration, environment and handlers around each test.

    The user config path names the null device (no file to read) so a
    developer's own ~/.structflow/config.toml never leaks into a test.
    """
    import os

    for name in list(os.environ):
        if name.upper().startswith("STRUCTFLOW__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STRUCTFLOW__USER_CONFIG_PATH", os.devnull)
    setup.reset()
    before = {id(lg): (list(lg.handlers), lg.level, lg.propagate) for lg in _structflow_loggers()}
    root = logging.getLogger()
    root_before = (list(root.handlers), root.level)
    yield
    setup.reset()
    for lg in _structflow_loggers():
        handlers, level, propagate = before.get(id(lg), ([], logging.NOTSET, True))
        for handler in list(lg.handlers):
            if handler not in handlers:
                lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate
    for handler in list(root.handlers):
        if handler not in root_before[0]:
            root.removeHandler(handler)
    root.setLevel(root_before[1])


@pytest.fixture
def collect() -> Collect:
    """Configure structflow at DEBUG without a stream; collect every record of its loggers."""
    structflow.configure(stream="none", level="DEBUG")
    handler = Collect()
    structflow.get_logger().addHandler(handler)
    return handler


# --- the log store: every store test runs on SQLite and on PostgreSQL ---------------------


def _require_postgres() -> None:
    require(
        find_bindir() is not None and importlib.util.find_spec("psycopg") is not None,
        "PostgreSQL (Debian package 'postgresql') and psycopg (the structflow[postgres] extra)",
    )


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the session (fails under CI=true when missing)."""
    _require_postgres()
    # Durability is not under test here: skip the disk syncs.
    cluster = PostgresCluster(["fsync=off", "synchronous_commit=off", "full_page_writes=off"])
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_pg_cluster() -> Iterator[PostgresCluster]:
    """
    A PostgreSQL cluster of the test's own, which it may crash and start again.

    A commit is durable once acknowledged (``synchronous_commit`` on), as on
    a production server; only the disk syncs are skipped (the machine itself
    does not crash).
    """
    _require_postgres()
    cluster = PostgresCluster(["fsync=off"])
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's url: a SQLite file, or a fresh schema of the PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'logs.db'}"
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_schema()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, empty store on each backend."""
    opened = connect(store_url)
    try:
        yield opened
    finally:
        opened.close()
