"""A Prefect 1 flow ported by renaming its imports (examples/prefect1_port.py), run as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "prefect1_port.py"


def run_port(
    day: str, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW__")}
    env["STRUCTFLOW__LOGGING__RENDERER"] = "json"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), day],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, records


def finished(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        if r.get("lifecycle") in ("task_run_finished", "task_run_retrying"):
            out.setdefault(r["task_name"], []).append(r["state"])
    return out


def test_a_weekday_loads_the_orders_after_a_retry(tmp_path: Path) -> None:
    proc, records = run_port("mon", tmp_path)

    assert proc.returncode == 0, proc.stderr
    assert "flow: Success; failures reported: []" in proc.stdout
    states = finished(records)
    assert states["validate"] == ["Retrying", "Success"]
    assert states["load"] == ["Success"]
    assert states["weekend_report"] == ["Skipped"]
    assert states["clean_up"] == ["Success"]
    (loading,) = [r for r in records if r["message"].startswith("loading")]
    assert loading["message"] == "loading 3 rows from orders-db"
    assert (loading["logger"], loading["flow_name"], loading["task_name"]) == (
        "structflow.load",
        "orders",
        "load",
    )
    assert 'SKIP signal raised: SKIP(\'Provided value "False" did not match "True"\')' in [
        r["message"] for r in records
    ]


@pytest.mark.parametrize("day", ["sat", "sun"])
def test_a_weekend_takes_the_other_branch(tmp_path: Path, day: str) -> None:
    proc, records = run_port(day, tmp_path)

    assert proc.returncode == 0, proc.stderr
    states = finished(records)
    assert states["load"] == states["validate"] == ["Skipped"]
    assert states["weekend_report"] == ["Skipped"]  # it skipped itself
    assert f"SKIP signal raised: SKIP('no report on {day}')" in [r["message"] for r in records]
    (end,) = [r for r in records if r.get("lifecycle") == "flow_run_finished"]
    assert end["state"] == "Success"
