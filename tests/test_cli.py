"""The structflow command: --version, config show, config validate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import structflow


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW__")},
        "STRUCTFLOW__USER_CONFIG_PATH": str(tmp_path / "config.toml"),
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


def test_version(tmp_path: Path) -> None:
    proc = run(["--version"], tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"structflow {structflow.__version__}"


def test_show_names_each_source(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[logging]\nrenderer = "json"\n', encoding="utf-8")
    proc = run(["config", "show"], tmp_path, STRUCTFLOW__LOGGING__LEVEL="debug")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("=")[0].strip(): line for line in proc.stdout.splitlines()}
    assert lines["logging.level"].endswith('"DEBUG"  # STRUCTFLOW__LOGGING__LEVEL')
    assert lines["logging.renderer"].endswith(f'"json"  # {tmp_path / "config.toml"}, line 2')
    assert lines["logging.stream"].endswith('"stdout"  # default')


def test_validate_exit_codes(tmp_path: Path) -> None:
    assert run(["config", "validate"], tmp_path).returncode == 0
    bad = run(["config", "validate"], tmp_path, STRUCTFLOW__LOGGING__RENDERER="yaml")
    assert bad.returncode == 2
    assert "STRUCTFLOW__LOGGING__RENDERER='yaml' is not a renderer" in bad.stderr
    (tmp_path / "config.toml").write_text("[logging\n", encoding="utf-8")
    broken = run(["config", "validate"], tmp_path)
    assert broken.returncode == 2
    assert "invalid TOML" in broken.stderr


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("10", "10  # STRUCTFLOW__LOGGING__LEVEL (DEBUG)"),
        ("15", "15  # STRUCTFLOW__LOGGING__LEVEL (between DEBUG and INFO)"),
    ],
)
def test_show_says_what_a_level_number_means(tmp_path: Path, level: str, shown: str) -> None:
    proc = run(["config", "show"], tmp_path, STRUCTFLOW__LOGGING__LEVEL=level)
    assert proc.returncode == 0, proc.stderr
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("logging.level ")]
    assert line.endswith(f"= {shown}")
