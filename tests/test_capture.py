"""
pytest's log capture sees structflow's records (structflow._capture).

The first half runs in this test session (pytest 9); the second runs small
test files in a fresh pytest, 8 and 9, in both orders and in each console
mode, because what breaks is the first test of a session that sets
structflow up.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import structflow
from needs import require
from receivers import run_python
from sample_flows import Collect
from structflow import Flow, task
from structflow._capture import CaptureForwarder

# --- in this session ------------------------------------------------------------------


@task(name="Say")
def say(text: str) -> None:
    structflow.context.get("logger").info(text)


def run_say(text: str) -> None:
    with Flow("capture") as flow:
        say(text)
    assert flow.run().is_successful()


def test_caplog_sees_records_of_the_test_that_set_structflow_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_say("first words")
    [record] = [r for r in caplog.records if r.getMessage() == "first words"]
    assert (record.name, vars(record)["task_name"]) == ("structflow.Say", "Say")


def test_records_still_do_not_reach_other_root_handlers() -> None:
    """Only pytest's handlers get them: an application's root handler prints nothing twice."""
    theirs = Collect()
    logging.getLogger().addHandler(theirs)
    try:
        run_say("once only")
    finally:
        logging.getLogger().removeHandler(theirs)
    assert theirs.records == []


def test_a_capture_handler_pytest_put_on_the_logger_gets_each_record_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """pytest 9.1 and later attach their handlers to loggers that do not propagate."""
    structflow.configure()
    structflow.get_logger().addHandler(caplog.handler)
    try:
        structflow.get_logger("x").warning("seen once")
    finally:
        structflow.get_logger().removeHandler(caplog.handler)
    assert caplog.messages.count("seen once") == 1


def test_extra_loggers_reach_caplog(caplog: pytest.LogCaptureFixture) -> None:
    structflow.configure(extra_loggers=["lib.capture"])
    logging.getLogger("lib.capture.child").warning("from a library")
    assert caplog.record_tuples == [("lib.capture.child", logging.WARNING, "from a library")]


def test_nothing_is_forwarded_without_structflow_handlers() -> None:
    """With stream = "none" and no shipping, records propagate: there is nothing to forward."""
    structflow.configure(stream="none")
    assert not any(isinstance(h, CaptureForwarder) for h in structflow.get_logger().handlers)
    assert structflow.get_logger().propagate


def test_a_level_set_before_first_use_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="structflow")
    structflow.get_logger("x").debug("debug before set-up")
    assert caplog.messages == ["debug before set-up"]


def test_configure_sets_the_level_whatever_was_set_before() -> None:
    logging.getLogger("structflow").setLevel(logging.DEBUG)
    structflow.configure(level="WARNING")
    assert structflow.get_logger().level == logging.WARNING


def test_notset_on_the_structflow_logger_means_the_configured_level() -> None:
    """caplog restores NOTSET when a test set the level before structflow did."""
    structflow.configure(level="ERROR")
    logger = structflow.get_logger("x")
    structflow.get_logger().setLevel(logging.NOTSET)
    assert (logger.getEffectiveLevel(), logger.isEnabledFor(logging.WARNING)) == (
        logging.ERROR,
        False,
    )


# --- a fresh pytest, 8 and 9 ------------------------------------------------------------

PYTEST_8 = "pytest>=8,<9"
# `python -m pytest`, as run_python runs code.
PYTEST_MAIN = "import sys, pytest; sys.exit(pytest.main())"

PAIR = """
import structflow
from structflow import Flow, task


@task(name="Task A")
def say_a():
    structflow.context.get("logger").info("hello from A")


@task(name="Task B")
def say_b():
    structflow.context.get("logger").info("hello from B")


def run(t):
    with Flow("parity") as flow:
        t()
    assert flow.run().is_successful()


def test_a(caplog):
    run(say_a)
    assert caplog.messages.count("hello from A") == 1
    [record] = [r for r in caplog.records if r.getMessage() == "hello from A"]
    assert record.task_name == "Task A"


def test_b(caplog):
    run(say_b)
    assert caplog.messages.count("hello from B") == 1
    [record] = [r for r in caplog.records if r.getMessage() == "hello from B"]
    assert record.task_name == "Task B"
"""


@pytest.fixture(scope="session")
def pytest8_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest 8 and its dependencies, installed by pip into a directory kept in pytest's cache."""
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("structflow-pytest8") if cache is not None else None
    target = (where or tmp_path_factory.mktemp("pytest8")) / "site"
    done = target / "installed.txt"
    if done.is_file() and done.read_text(encoding="utf-8") == PYTEST_8:
        return target
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run(
        [*pip, "--upgrade", "--target", str(target), PYTEST_8],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    require(proc.returncode == 0, f"pip install {PYTEST_8} ({proc.stderr.strip()[-300:]})")
    done.write_text(PYTEST_8, encoding="utf-8")
    return target


@pytest.fixture(params=["8", "9"])
def pytest_version(request: pytest.FixtureRequest) -> Iterator[str]:
    """The major version of pytest the inner runs use."""
    if request.param == "9":
        # This session's own pytest is the current 9.
        assert pytest.version_tuple[0] == 9
    yield request.param


@pytest.fixture
def inner(
    request: pytest.FixtureRequest, pytest_version: str, tmp_path: Path
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A directory holding the test file, and the environment that runs that pytest."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_pair.py").write_text(PAIR, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRUCTFLOW__", "PYTEST_"))}
    env.pop("PYTHONPATH", None)
    # No plugin is needed for this, so none is loaded (the session's plugins
    # are built for its own pytest).
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["STRUCTFLOW__USER_CONFIG_PATH"] = os.devnull
    env["NO_COLOR"] = "1"
    if pytest_version == "8":
        env["PYTHONPATH"] = str(request.getfixturevalue("pytest8_dir"))
    yield tmp_path, env


def run_pytest(
    inner: tuple[Path, dict[str, str]], version: str, *args: str
) -> subprocess.CompletedProcess[str]:
    directory, env = inner
    proc = run_python(PYTEST_MAIN, "-p", "no:cacheprovider", *args, cwd=directory, env=env)
    used = re.search(r"pytest-(\d+)\.", proc.stdout)
    assert used is not None, proc.stdout + proc.stderr
    assert used.group(1) == version
    return proc


@pytest.mark.parametrize("order", [("test_a", "test_b"), ("test_b", "test_a")])
def test_caplog_sees_both_tests_in_either_order(
    inner: tuple[Path, dict[str, str]], pytest_version: str, order: tuple[str, str]
) -> None:
    proc = run_pytest(inner, pytest_version, *(f"test_pair.py::{name}" for name in order))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(("-s",), id="no-capture"),
        pytest.param(("-o", "log_cli=true"), id="live-log"),
        pytest.param(("-s", "-o", "log_cli=true"), id="no-capture-live-log"),
    ],
)
def test_the_console_shows_each_line_once(
    inner: tuple[Path, dict[str, str]], pytest_version: str, mode: tuple[str, ...]
) -> None:
    """structflow's own output without capture, pytest's live log with it; never both."""
    proc = run_pytest(inner, pytest_version, *mode)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proc.stdout.count("hello from A"), proc.stdout.count("hello from B")) == (1, 1)
