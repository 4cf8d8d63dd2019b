"""
``structflow serve``: the token, the loopback rule, and the command's settings.

The server runs as a real subprocess; the refusals are checked on the
command's exit status and its one line on stderr.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import Served, server_env
from storelines import line
from structflow._config import ConfigError, load_config
from structflow.server._settings import ServerSettings, SettingsError, is_loopback, resolve_settings

TOKEN = "s3cret-token"
DATA_ROUTES = [
    ("GET", "api/logs"),
    ("POST", "api/logs"),
    ("GET", "api/logs/stream"),
    ("GET", "api/runs"),
    ("GET", "api/runs/some-run"),
    ("GET", "api/openapi.json"),
    ("POST", "graphql"),
]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(f"sqlite:///{tmp_path_factory.mktemp('guarded') / 'logs.db'}", TOKEN)
    try:
        yield server
    finally:
        server.stop()


def serve_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "structflow.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(**env),
        check=False,
    )


# --- the token -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), DATA_ROUTES)
def test_every_data_route_refuses_a_request_without_the_token(
    guarded: Served, method: str, path: str
) -> None:
    response = guarded.session.request(method, guarded.url + path, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="structflow"'
    assert response.json()["error"].startswith("this server needs a token")


@pytest.mark.parametrize(("method", "path"), DATA_ROUTES)
def test_a_wrong_token_is_refused(guarded: Served, method: str, path: str) -> None:
    response = guarded.session.request(
        method, guarded.url + path, headers={"Authorization": "Bearer nope"}, timeout=30
    )
    assert response.status_code == 401


def test_with_the_token_the_data_routes_answer(guarded: Served) -> None:
    stored = guarded.post("api/logs", data=line("guarded", flow_run_id="g1") + b"\n")
    listed = guarded.get("api/logs", {"flow_run_id": "g1"})
    assert (stored.status_code, listed.status_code) == (200, 200)
    assert [e["message"] for e in listed.json()["entries"]] == ["guarded"]


def test_http_handler_ships_with_its_token_option(guarded: Served) -> None:
    code = (
        "import sys, structflow\n"
        "from structflow.handlers import HTTPHandler\n"
        "structflow.configure(stream='none')\n"
        "h = HTTPHandler(sys.argv[1], token=sys.argv[2], flush_interval=0.05)\n"
        "log = structflow.get_logger('guard')\n"
        "log.addHandler(h)\n"
        "with structflow.context(flow_run_id='g2'):\n"
        "    log.info('with a token')\n"
        "assert h.flush(20), h.stats()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, guarded.ingest_url, TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    entries = guarded.get("api/logs", {"flow_run_id": "g2"}).json()["entries"]
    assert [e["message"] for e in entries] == ["with a token"]


def test_the_page_loads_without_the_token_and_holds_no_data(guarded: Served) -> None:
    guarded.post("api/logs", data=line("secret-message", flow_run_id="g3") + b"\n")
    for path in ("", "runs/g3", "static/app.js", "static/app.css"):
        response = guarded.session.get(guarded.url + path, timeout=30)
        assert response.status_code == 200
        assert "secret-message" not in response.text and "g3" not in response.text


# --- the command's refusals ------------------------------------------------------------------


def test_a_host_beyond_loopback_without_a_token_refuses_to_start() -> None:
    proc = serve_command("--host", "0.0.0.0", "--port", "0", "--store", "sqlite:///:memory:")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        "structflow serve: --host 0.0.0.0 is not a loopback address, and serving logs beyond "
        "this machine needs a token"
    )


def test_the_host_from_the_environment_is_refused_naming_the_variable() -> None:
    proc = serve_command("--port", "0", STRUCTFLOW__SERVER__HOST="192.0.2.10")
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1)
    assert proc.stderr.startswith(
        "structflow serve: STRUCTFLOW__SERVER__HOST='192.0.2.10' is not a loopback address"
    )


def test_a_bad_port_in_the_environment_names_the_variable() -> None:
    proc = serve_command(STRUCTFLOW__SERVER__PORT="70000")
    assert proc.returncode == 2
    assert "STRUCTFLOW__SERVER__PORT=70000 is not a TCP port" in proc.stderr


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = serve_command("--port", str(port), "--store", f"sqlite:///{tmp_path / 'l.db'}")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"structflow serve: cannot listen on 127.0.0.1:{port} (")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "mysql://db/logs"], "structflow serve: store url='mysql://db/logs' has an "),
        (
            ["--store", "postgresql://u:pw@127.0.0.1:1/x"],
            "structflow serve: cannot connect to the PostgreSQL store postgresql://u:***@",
        ),
        (["--port", "abc"], "structflow serve: argument --port: invalid int value: 'abc'"),
        (["--host"], "structflow serve: argument --host: expected one argument"),
    ],
)
def test_a_store_it_cannot_use_or_a_mistyped_option_is_one_line_and_exit_2(
    args: list[str], message: str
) -> None:
    proc = serve_command(*args, "--port", "0") if "--port" not in args else serve_command(*args)
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1), proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert "pw" not in proc.stderr


def test_a_bad_retention_in_the_environment_is_refused_with_exit_2(tmp_path: Path) -> None:
    proc = serve_command(
        "--port",
        "0",
        "--store",
        f"sqlite:///{tmp_path / 'l.db'}",
        STRUCTFLOW__LOGGING__STORE__RETENTION_DAYS="-3",
    )
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1)
    assert (
        "STRUCTFLOW__LOGGING__STORE__RETENTION_DAYS: [logging.store]: retention_days=-3 is "
        "invalid; expected a number of days >= 0"
    ) in proc.stderr


def test_the_store_comes_from_the_server_section(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    db = tmp_path / "from-config.db"
    config.write_text(f'[server]\nstore = "sqlite:///{db}"\nport = 0\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "structflow.cli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env(STRUCTFLOW__USER_CONFIG_PATH=str(config)),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert first.endswith(f"(store sqlite:///{db})\n")
    assert first.startswith("structflow serve: http://127.0.0.1:")


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_command_line_options_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRUCTFLOW__SERVER__PORT", "9000")
    monkeypatch.setenv("STRUCTFLOW__SERVER__TOKEN", "from-env")
    monkeypatch.setenv("STRUCTFLOW__SERVER__STORE", "sqlite:///env.db")
    got = resolve_settings({"port": 4300, "host": None, "token": None, "store": None})
    assert got == ServerSettings("sqlite:///env.db", "127.0.0.1", 4300, "from-env")


def test_without_a_store_anywhere_the_configured_store_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STORE__URL", "sqlite:///handler.db")
    assert resolve_settings({}).store == "sqlite:///handler.db"


def test_the_token_is_not_shown_in_the_settings_repr() -> None:
    assert "abc" not in repr(ServerSettings("sqlite:///x.db", "127.0.0.1", 1, "abc"))


def test_a_token_allows_any_host() -> None:
    ServerSettings("sqlite:///x.db", "0.0.0.0", 4200, "t").check()
    with pytest.raises(SettingsError, match="needs a token"):
        ServerSettings("sqlite:///x.db", "0.0.0.0", 4200, "").check()


def test_the_server_section_has_defaults_and_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRUCTFLOW__SERVER__TOKEN", "123")
    cfg = load_config()
    assert cfg["server"].to_dict() == {
        "store": "",
        "host": "127.0.0.1",
        "port": 4200,
        "token": "123",
    }
    assert str(cfg.source("server.token")) == "STRUCTFLOW__SERVER__TOKEN"


def test_an_unknown_server_key_names_the_allowed_ones(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\nhots = "0.0.0.0"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(config)})
    assert (
        f"{config}, line 2: server.hots: unknown key 'hots' in [server]; "
        "expected one of store, host, port, token."
    ) in str(caught.value)
