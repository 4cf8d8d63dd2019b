"""Shared fixtures: every test starts from an unconfigured structflow and a clean environment."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import structflow
import structflow._setup as setup
from sample_flows import Collect


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
