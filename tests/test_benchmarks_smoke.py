"""
Smoke test of the benchmark suite, plus the pieces of it that compute figures.

The smoke test runs ``python -m benchmarks --quick`` exactly as a developer
would and checks that every case ran, checked its output, and appears in the
ratio table. No timing is asserted: the machine may be busy.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/ lives in the checkout, not in the installed package.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _stats, report, suite  # noqa: E402
from benchmarks.receiver import count_records  # noqa: E402


def _require_bench_extra() -> None:
    missing = suite.missing_peers()
    if missing:
        pytest.skip(f"the bench extra is not installed (missing {', '.join(missing)})")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_suite_runs_every_case_and_prints_the_ratio_table(tmp_path: Path) -> None:
    _require_bench_extra()
    env = dict(os.environ)
    env["STRUCTFLOW__USER_CONFIG_PATH"] = os.devnull
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    assert out.startswith("## structflow compared with each peer\n")
    ratio_section = out.split("## Speed targets")[0]
    peer_rows = [line for line in ratio_section.splitlines() if line.startswith("| ")]
    labels = [row.split(" | ")[0].lstrip("| ") for row in peer_rows]
    for expected in (
        "stdlib logging.Formatter classic",
        "python-json-logger OrjsonFormatter",
        "structlog ProcessorFormatter + orjson",
        "structlog native BytesLogger + orjson",
        "loguru serialize=True",
        "seed handler (requests.post per record)",
        "OpenTelemetry LoggingHandler + batch + OTLP/HTTP JSON",
        "import structlog",
    ):
        assert expected in labels
    # Every cell of the ratio tables was measured.
    assert [row for row in peer_rows if "n/a" in row] == []

    results = json.loads((tmp_path / "latest.json").read_text())
    planned = {case.key for case in suite.build_plan(quick=True)}
    assert set(results["cases"]) == planned
    failed = {k: c["errors"] for k, c in results["cases"].items() if c["errors"]}
    assert failed == {}
    assert {k for k, c in results["cases"].items() if len(c["rounds"]) != 1} == set()
    assert results["meta"]["mode"] == "quick"
    assert results["meta"]["complete"] is False


def test_receiver_counts_ndjson_lines() -> None:
    assert count_records("/", "", b'{"a":1}\n{"a":2}\n{"a":3}\n') == 3
    assert count_records("/", "", b'{"a":1}\n{"a":2}') == 2


def test_receiver_counts_otlp_json_log_records() -> None:
    body: dict[str, object] = {
        "resourceLogs": [
            {"scopeLogs": [{"logRecords": [{}, {}]}, {"logRecords": [{}]}]},
            {"scopeLogs": [{"logRecords": [{}]}]},
        ]
    }
    assert count_records("/v1/logs", "", json.dumps(body).encode()) == 4


def test_receiver_counts_one_record_per_seed_handler_request() -> None:
    assert count_records("/", "msg=Beginning+to+run+Task+B+with+input+3", b"") == 1


@pytest.mark.timeout(60)
def test_receiver_process_counts_gzip_batches_and_resets() -> None:
    from benchmarks.shipping import Receiver

    receiver = Receiver()
    try:
        body = gzip.compress(b'{"m":1}\n{"m":2}\n')
        req = urllib.request.Request(
            receiver.url,
            data=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        stats = receiver.stats()
        assert (stats["records"], stats["requests"], stats["bytes"]) == (2, 1, len(body))
        receiver.reset()
        assert receiver.stats()["records"] == 0
    finally:
        receiver.stop()


def test_schedule_alternates_the_order_of_cases_between_rounds() -> None:
    cases = [suite.Case("render", n, n, "x", 3, 10, 1.0) for n in ("a", "b", "c")]
    order = [(r, c.name) for r, c in suite.schedule(cases)]
    assert order == [
        (0, "a"),
        (0, "b"),
        (0, "c"),
        (1, "b"),
        (1, "c"),
        (1, "a"),
        (2, "c"),
        (2, "a"),
        (2, "b"),
    ]


def test_ratios_pair_rounds_and_report_median_min_max() -> None:
    structflow_ns = [100.0, 200.0, 100.0]
    peer_ns = [150.0, 300.0, 250.0]
    assert _stats.speedup_ns(structflow_ns, peer_ns) == _stats.Stat(1.5, 1.5, 2.5)
    assert _stats.speedup_rate([10.0, 20.0], [5.0, 5.0]) == _stats.Stat(3.0, 2.0, 4.0)
    assert _stats.speedup_ns([], peer_ns) is None


def test_a_target_fails_when_its_median_misses_the_threshold() -> None:
    higher = _stats.Target("x", _stats.Stat(1.5, 1.4, 1.7), 1.6, True)
    lower = _stats.Target("y", _stats.Stat(1.2, 1.0, 1.4), 1.3, False)
    assert (higher.passed, lower.passed) == (False, True)
    assert _stats.Target("z", None, 1.0, True).row()[-1] == "not measured"


def test_update_docs_replaces_only_the_generated_section(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"intro\n{report.DOCS_BEGIN}\nold\n{report.DOCS_END}\nafter\n")
    report.update_docs(str(page), "new table")
    assert (
        page.read_text() == f"intro\n{report.DOCS_BEGIN}\n\nnew table\n\n{report.DOCS_END}\nafter\n"
    )


def test_update_docs_refuses_a_page_without_markers(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("no markers here\n")
    with pytest.raises(ValueError, match="has no generated section"):
        report.update_docs(str(page), "table")
