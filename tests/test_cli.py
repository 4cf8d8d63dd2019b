"""The structflow command: --version, config show, config validate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import structflow


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRUCTFLOW__")},
        "STRUCTFLOW__USER_CONFIG_PATH": str(config) if config.exists() else os.devnull,
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


def test_show_stops_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    # As `structflow config show | head -1` does.
    config = tmp_path / "config.toml"
    config.write_text('[logging]\nlevel = "DEBUG"\n', encoding="utf-8")
    env = {**os.environ, "STRUCTFLOW__USER_CONFIG_PATH": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "structflow.cli", "config", "show"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config"], "structflow config: the following arguments are required: action\n"),
        (["config", "check"], "structflow config: argument action: invalid choice: 'check'"),
        (["nope"], "structflow: argument command: invalid choice: 'nope'"),
    ],
)
def test_a_mistyped_command_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run(args, tmp_path)
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1), proc.stderr
    assert proc.stderr.startswith(message), proc.stderr


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


SHOW_SECRETS = """\
[logging.http]
url = "https://ann:pw-Zq9x@logs.example/push?api_key=q-Zq9x&tenant=t1"
token = "tok-Zq9x"
headers = {X-Api-Key = "hdr-Zq9x", X-From-Env = "env:STRUCTFLOW_TEST_KEY"}
"""


def test_show_masks_secrets_as_the_handlers_repr_does(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(SHOW_SECRETS, encoding="utf-8")
    text = run(["config", "show"], tmp_path, STRUCTFLOW__LOGGING__HTTP__HEADERS__X_ENV="e-Zq9x")
    as_json = run(["config", "show", "--json"], tmp_path)

    assert (text.returncode, as_json.returncode) == (0, 0), text.stderr + as_json.stderr
    assert "Zq9x" not in text.stdout + as_json.stdout
    lines = {line.split("=")[0].strip(): line for line in text.stdout.splitlines()}
    assert '"https://ann:***@logs.example/push?api_key=***&tenant=***"' in lines["logging.http.url"]
    assert '"***"' in lines["logging.http.token"]
    assert '"X-From-Env": "env:STRUCTFLOW_TEST_KEY"' in lines["logging.http.headers"]
    assert '"X-Api-Key": "***"' in lines["logging.http.headers"]


def test_show_prints_a_store_url_without_secrets_as_given(tmp_path: Path) -> None:
    absolute = f"sqlite:///{tmp_path / 'logs.db'}"  # four slashes: an absolute path
    proc = run(["config", "show"], tmp_path, STRUCTFLOW__LOGGING__STORE__URL=absolute)

    assert proc.returncode == 0, proc.stderr
    lines = {line.split("=")[0].strip(): line for line in proc.stdout.splitlines()}
    assert f'"{absolute}"' in lines["logging.store.url"]


def test_validate_builds_the_formatters_it_will_use(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[logging]\nformat = "log-format"\n', encoding="utf-8")
    proc = run(["config", "validate"], tmp_path)

    assert proc.returncode == 2
    assert "logging.format = 'log-format' is not a valid %-style format string" in proc.stderr


def test_validate_names_the_source_of_a_handler_key(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    (tmp_path / "config.toml").write_text(
        f'[logging.syslog]\naddress = "tcp://127.0.0.1:9"\nspool_dir = "{tmp_path / "a-file"}"\n',
        encoding="utf-8",
    )
    proc = run(["config", "validate"], tmp_path)

    assert proc.returncode == 2
    assert f"{tmp_path / 'config.toml'}, line 3: [logging.syslog] SyslogHandler: spool_dir=" in (
        proc.stderr
    )


def test_a_missing_config_file_named_by_the_variable_fails_validate(tmp_path: Path) -> None:
    proc = run(
        ["config", "validate"], tmp_path, STRUCTFLOW__USER_CONFIG_PATH=str(tmp_path / "typo.toml")
    )

    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
