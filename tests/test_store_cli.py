"""``structflow logs``, ``structflow runs`` and ``structflow store prune``, run as a user would."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.pgcluster import PostgresCluster

from receivers import wait_until
from storelines import lifecycle, line
from structflow import store
from structflow._cli_store import Busy, ProgressBar

pytestmark = pytest.mark.timeout(120)


def config_path(tmp_path: Path) -> str:
    """The test's config file when it wrote one, else none (the null device)."""
    config = tmp_path / "config.toml"
    return str(config) if config.exists() else os.devnull


def cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW__")},
        "STRUCTFLOW__USER_CONFIG_PATH": config_path(tmp_path),
        "NO_COLOR": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "structflow.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def filled(store_url: str) -> str:
    with store.connect(store_url) as s:
        s.ingest(
            [
                *lifecycle("r1", tasks=(("t1", "extract", "Success"), ("t2", "load", "Failed"))),
                line("rows loaded", seconds=1.5, level="warning", flow_run_id="r1", rows=3),
                *lifecycle("r2", start=100, state=None, flow="report"),
            ]
        )
    return store_url


def test_logs_prints_entries_oldest_first_with_the_classic_renderer(
    filled: str, tmp_path: Path
) -> None:
    proc = cli(["logs", "r1", "--store", filled], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("INFO - structflow.FlowRunner | Beginning Flow run for 'etl'")
    assert lines[2].endswith("WARNING - structflow.Task B | rows loaded")
    assert len(lines) == 7


def test_logs_uses_the_configured_renderer(filled: str, tmp_path: Path) -> None:
    proc = cli(
        ["logs", "--store", filled, "--search", "rows"],
        tmp_path,
        **{"STRUCTFLOW__LOGGING__RENDERER": "json"},
    )
    event = json.loads(proc.stdout)
    assert (event["timestamp"], event["message"], event["flow_run_id"], event["rows"]) == (
        "2024-06-01T12:00:01.500000Z",
        "rows loaded",
        "r1",
        3,
    )


def test_logs_shows_the_console_renderers_colours_when_they_are_forced(
    filled: str, tmp_path: Path
) -> None:
    env = {"STRUCTFLOW__LOGGING__RENDERER": "console", "FORCE_COLOR": "1", "NO_COLOR": ""}
    proc = cli(["logs", "--store", filled, "--level", "warning"], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" in proc.stdout
    assert "rows loaded" in proc.stdout


def test_logs_json_prints_one_entry_per_line(filled: str, tmp_path: Path) -> None:
    proc = cli(["logs", "--store", filled, "--where", "rows=3", "--json"], tmp_path)
    (entry,) = [json.loads(text) for text in proc.stdout.splitlines()]
    assert (entry["message"], entry["level"], entry["fields"]) == (
        "rows loaded",
        "warning",
        {"rows": 3},
    )


def test_logs_filters_by_flow_task_level_time_and_search(filled: str, tmp_path: Path) -> None:
    def count(*args: str) -> int:
        proc = cli(["logs", "--store", filled, "--json", *args], tmp_path)
        assert proc.returncode == 0, proc.stderr
        return len(proc.stdout.splitlines())

    assert count("--flow", "report") == 1
    assert count("--task", "load") == 2
    assert count("--level", "WARNING") == 1
    assert count("--since", "2024-06-01T12:00:04Z", "--until", "2024-06-01T12:01:00Z") == 2
    assert count("--search", "task run") == 4
    assert count("--since", "1h") == 0


def test_logs_shows_the_latest_entries_and_says_when_there_are_more(
    filled: str, tmp_path: Path
) -> None:
    proc = cli(["logs", "--store", filled, "--limit", "2"], tmp_path)
    assert [text.rsplit("| ", 1)[1] for text in proc.stdout.splitlines()] == [
        "Flow run SUCCESS: all reference tasks succeeded",
        "Beginning Flow run for 'report'",
    ]
    assert proc.stderr == (
        "structflow logs: showing the latest 2 entries; use --limit or --since for more\n"
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["logs", "no-such-run"], "structflow logs: no entries in the store match\n"),
        (["logs", "r1", "--level", "error"], "structflow logs: no entries in the store match\n"),
        (["runs", "--flow", "nope"], "structflow runs: no flow runs in the store match\n"),
        (["logs", "no-such-run", "--json"], ""),  # JSON lines: nothing at all
        (["runs", "--flow", "nope", "--json"], ""),
    ],
)
def test_nothing_matching_is_said_on_stderr_and_is_not_an_error(
    filled: str, tmp_path: Path, args: list[str], said: str
) -> None:
    proc = cli([*args, "--store", filled], tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", said)


def test_runs_prints_an_aligned_table_newest_first(filled: str, tmp_path: Path) -> None:
    proc = cli(["runs", "--store", filled], tmp_path)
    assert proc.returncode == 0, proc.stderr
    header, newest, oldest = proc.stdout.splitlines()
    assert header.split() == [
        "STARTED", "FLOW", "STATE", "DURATION", "TASKS", "WARNINGS", "ERRORS", "FLOW", "RUN", "ID"
    ]  # fmt: skip
    assert newest.split()[2:] == ["report", "Running", "-", "0", "0", "0", "r2"]
    assert oldest.split()[2:] == ["etl", "Success", "5.0", "s", "2", "1", "0", "r1"]
    assert header.index("STATE") == newest.index("Running") == oldest.index("Success")


def test_runs_json_and_filters(filled: str, tmp_path: Path) -> None:
    proc = cli(["runs", "--store", filled, "--json", "--state", "running"], tmp_path)
    (run,) = [json.loads(text) for text in proc.stdout.splitlines()]
    assert (run["flow_run_id"], run["flow_name"], run["state"]) == ("r2", "report", "Running")


def test_store_prune_deletes_old_entries(filled: str, tmp_path: Path) -> None:
    proc = cli(["store", "prune", "--store", filled, "--older-than", "30d"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("structflow store prune: deleted 8 entries from ")
    with store.connect(filled) as s:
        assert s.logs() == []


def test_store_prune_defaults_to_the_configured_retention(filled: str, tmp_path: Path) -> None:
    env = {
        "STRUCTFLOW__LOGGING__STORE__URL": filled,
        "STRUCTFLOW__LOGGING__STORE__RETENTION_DAYS": "7",
    }
    proc = cli(["store", "prune"], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert "deleted 8 entries" in proc.stdout


def test_store_prune_names_a_configured_retention_it_cannot_use(
    filled: str, tmp_path: Path
) -> None:
    env = {"STRUCTFLOW__LOGGING__STORE__RETENTION_DAYS": "-7"}
    proc = cli(["store", "prune", "--store", filled], tmp_path, **env)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "structflow store prune: STRUCTFLOW__LOGGING__STORE__RETENTION_DAYS: [logging.store]: "
        "retention_days=-7 is invalid; expected a number of days >= 0 (0 keeps entries forever)\n"
    )
    with store.connect(filled) as s:
        assert len(s.logs()) == 8


def test_the_configured_store_is_used_without_store(filled: str, tmp_path: Path) -> None:
    proc = cli(["runs"], tmp_path, STRUCTFLOW__LOGGING__STORE__URL=filled)
    assert len(proc.stdout.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs", "--level", "loud"], "structflow logs: --level='loud' is not a log level;"),
        (["logs", "--since", "yesterday"], "structflow logs: --since='yesterday' is not a time;"),
        (["logs", "--where", "a;b=1"], "structflow logs: --where key 'a;b' is not a field path;"),
        (["logs", "--where", "rows"], "structflow logs: --where 'rows' is invalid; expected KEY="),
        (["logs", "--search", "!!"], "structflow logs: --search='!!' has no word to search for;"),
        (["logs", "--limit", "none"], "structflow logs: argument --limit: --limit='none' is"),
        (["runs", "--since", "later"], "structflow runs: --since='later' is not a time;"),
        (["store", "prune"], "structflow store prune: give --older-than (such as 30d) or set"),
        (["store", "prune", "--older-than", "old"], "structflow store prune: --older-than='old'"),
        (["logs", "--nope"], "structflow logs: unrecognized arguments: --nope"),
        (["runs", "run-1"], "structflow runs: unrecognized arguments: run-1"),
        (["store", "prune", "--older-than", "1d", "x"], "structflow store prune: unrecognized"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    filled: str, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = cli([*args, "--store", filled], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(message), proc.stderr
    with store.connect(filled) as s:
        assert len(s.logs()) == 8


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/logs", "structflow logs: store url='mysql://db/logs' has an unknown scheme"),
        ("postgresql://u:pw@127.0.0.1:1/x", "structflow logs: cannot connect to the PostgreSQL"),
    ],
)
def test_a_store_that_cannot_be_used_exits_2_with_one_line(
    tmp_path: Path, url: str, message: str
) -> None:
    proc = cli(["logs", "--store", url], tmp_path)
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1)
    assert proc.stderr.startswith(message)
    assert "pw" not in proc.stderr


@pytest.mark.parametrize("args", [["logs"], ["logs", "--follow"], ["runs"], ["store", "prune"]])
def test_reading_a_store_where_nothing_was_stored_exits_2_and_creates_nothing(
    store_url: str, tmp_path: Path, args: list[str]
) -> None:
    # A mistyped --store (or a configured store nothing ever wrote to) is
    # said as such, rather than shown as an empty store that is then made.
    proc = cli([*args, "--older-than", "1d"] if "prune" in args else args, tmp_path,
               STRUCTFLOW__LOGGING__STORE__URL=store_url)  # fmt: skip
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1), proc.stderr
    command = " ".join(args[:2] if "prune" in args else args[:1])
    assert proc.stderr.startswith(f"structflow {command}: store "), proc.stderr
    assert "nothing has been stored there yet" in proc.stderr
    assert "check the url, or log a run to it first" in proc.stderr
    assert not (tmp_path / "logs.db").exists()
    with pytest.raises(store.StoreError, match="nothing has been stored there yet"):
        store.connect(store_url, create=False)


@contextlib.contextmanager
def following(url: str, tmp_path: Path, *more: str) -> Iterator[subprocess.Popen[str]]:
    """``structflow logs --follow --json`` on *url*, running until the block ends."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW__")},
        "STRUCTFLOW__USER_CONFIG_PATH": config_path(tmp_path),
    }
    # Ctrl-C as at a terminal, even when the tests run as a background job,
    # whose children would start with SIGINT ignored.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "structflow.cli", "logs", "--store", url, "--follow", "--json",
             *more],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_logs_follow_prints_new_entries_until_interrupted(filled: str, tmp_path: Path) -> None:
    with following(filled, tmp_path, "--limit", "1") as proc:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["message"] == "Beginning Flow run for 'report'"
        with store.connect(filled) as s:
            s.ingest([line("live one", seconds=500)])
        assert json.loads(proc.stdout.readline())["message"] == "live one"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_logs_follow_says_when_postgresql_goes_away_and_goes_on_when_it_is_back(
    own_pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = own_pg_cluster.new_schema()
    with store.connect(url) as s:
        s.ingest([line("before", seconds=0)])
    with following(url, tmp_path) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["message"] == "before"
        own_pg_cluster.crash()
        lost = proc.stderr.readline()
        assert lost.startswith("structflow logs: lost the store while following: cannot connect")
        assert lost.endswith("; trying again, at most every 5 s\n")
        own_pg_cluster.start()
        with store.connect(url) as s:
            s.ingest([line("after", seconds=1)])
        assert json.loads(proc.stdout.readline())["message"] == "after"
        back = proc.stderr.readline()
        assert back.startswith("structflow logs: store postgresql://"), back
        assert ": following again, after " in back
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_query_that_takes_long_says_it_still_runs_on_a_terminal_only() -> None:
    terminal = _Terminal()
    with Busy("reading the store", terminal, after=0.0, every=0.01):
        wait_until(lambda: terminal.getvalue().count("\r") >= 3, timeout=30)
    # Redrawn in place, then blanked when the query ends.
    assert re.fullmatch(r"(\rreading the store\u2026 \d+ s){3,}\r {22}\r", terminal.getvalue())
    piped = io.StringIO()
    with Busy("reading the store", piped, after=0.0, every=0.01):
        time.sleep(0.05)
    assert piped.getvalue() == ""
    quick = _Terminal()
    with Busy("reading the store", quick, after=30.0):
        pass
    assert quick.getvalue() == ""


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = _Terminal()
    bar = ProgressBar(terminal, width=10)
    bar(5, 10, "pruning")
    bar(10, 10, "pruning")
    assert terminal.getvalue() == ("\rpruning [#####-----] 5/10\rpruning [##########] 10/10\n")
    piped = io.StringIO()
    ProgressBar(piped)(5, 10, "pruning")
    assert piped.getvalue() == ""


def test_config_validate_checks_the_store_section(tmp_path: Path) -> None:
    good = cli(["config", "validate"], tmp_path, STRUCTFLOW__LOGGING__STORE__URL="sqlite:///x.db")
    assert good.returncode == 0, good.stderr
    bad = cli(["config", "validate"], tmp_path, STRUCTFLOW__LOGGING__STORE__URL="mysql://db/x")
    assert bad.returncode == 2
    assert "[logging.store] StoreHandler: store url='mysql://db/x' has an unknown scheme" in (
        bad.stderr
    )
