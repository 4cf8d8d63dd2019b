"""Configuration: sources, precedence, casting, errors, and what configure() touches."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import structflow
from receivers import run_python
from structflow import ConfigError
from structflow._config import load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_prefect_1s() -> None:
    cfg = load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": os.devnull})
    assert cfg.logging.level == "INFO"
    assert cfg.logging.format == "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
    assert cfg.logging.datefmt == "%Y-%m-%d %H:%M:%S%z"
    assert cfg.logging.stream == "stdout"
    assert cfg.logging.renderer == "classic"


def test_file_is_read_and_level_is_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[logging]\nlevel = "debug"\nextra_loggers = ["urllib3"]\n')
    cfg = load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(path)})
    assert cfg.logging.level == "DEBUG"
    assert cfg.logging.extra_loggers == ["urllib3"]
    assert str(cfg.logging.source("level")) == f"{path}, line 2"


def test_env_casting_rules(tmp_path: Path) -> None:
    env = {
        "STRUCTFLOW__USER_CONFIG_PATH": os.devnull,
        "STRUCTFLOW__LOGGING__EXTRA_LOGGERS": "urllib3, botocore",
        "STRUCTFLOW__LOGGING__REDACT_KEYS": '["a", "b"]',
        "STRUCTFLOW__LOGGING__MAX_MESSAGE_BYTES": "500",
        "STRUCTFLOW__LOGGING__DATEFMT": "123",
        "STRUCTFLOW__LOGGING__HTTP__URL": "http://127.0.0.1:9/",
        "STRUCTFLOW__LOGGING__HTTP__GZIP": "true",
        "STRUCTFLOW__LOGGING__HTTP__TIMEOUT": "2.5",
        "STRUCTFLOW__LOGGING__HTTP__HEADERS__X_TOKEN": "env:TOKEN",
    }
    cfg = load_config(environ=env)
    assert cfg.logging.extra_loggers == ["urllib3", "botocore"]
    assert cfg.logging.redact_keys == ["a", "b"]
    assert cfg.logging.max_message_bytes == 500
    assert cfg.logging.datefmt == "123"
    assert cfg.logging.http.to_dict() == {
        "url": "http://127.0.0.1:9/",
        "gzip": True,
        "timeout": 2.5,
        "headers": {"x-token": "env:TOKEN"},
    }


def test_a_section_set_as_a_value_says_it_is_a_section() -> None:
    env = {"STRUCTFLOW__USER_CONFIG_PATH": os.devnull, "STRUCTFLOW__LOGGING": "3"}
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert (
        "STRUCTFLOW__LOGGING=3: [logging] is a section, not a value; set its keys, such as "
        "logging.level." in str(info.value)
    )


LEVEL = st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR"])


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file_level=st.none() | LEVEL,
    env_level=st.none() | LEVEL,
    arg_level=st.none() | LEVEL,
)
def test_precedence_defaults_file_env_configure(
    tmp_path: Path, file_level: str | None, env_level: str | None, arg_level: str | None
) -> None:
    path = tmp_path / "p.toml"
    write(path, f'[logging]\nlevel = "{file_level}"\n' if file_level else "")
    env = {"STRUCTFLOW__USER_CONFIG_PATH": str(path)}
    if env_level:
        env["STRUCTFLOW__LOGGING__LEVEL"] = env_level
    overrides = {"level": arg_level} if arg_level else {}
    cfg = load_config(overrides, environ=env)
    expected = arg_level or env_level or file_level or "INFO"
    assert cfg.logging.level == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            '[logging]\nlevel = "verbose"\n',
            "line 2: logging.level = 'verbose' is not a log level; "
            "expected one of NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        (
            '[logging]\nrenderer = "xml"\n',
            "logging.renderer = 'xml' is not a renderer; "
            "expected one of classic, json, console, logfmt",
        ),
        (
            '[logging]\njson_schema = "splunk"\n',
            "is not a JSON schema; expected one of default, ecs, gcp, datadog, otel",
        ),
        (
            '[logging]\nformat = "%(foo"\n',
            "logging.format = '%(foo' is not a valid %-style format string",
        ),
        (
            '[logging]\nformat = "log-format"\n',
            "logging.format = 'log-format' is not a valid %-style format string "
            "(it has no field); expected at least one field such as %(message)s",
        ),
        (
            '[logging]\ndatefmt = "%Y-%m-%d %Q"\n',
            "logging.datefmt = '%Y-%m-%d %Q' is not a valid strftime format: %Q is not a "
            "strftime directive",
        ),
        ('[logging]\ndatefmt = "%H:%M:%S.%f"\n', "%f is not a strftime directive"),
        ('[logging]\ndatefmt = "%H:%M %"\n', "ends with a lone %"),
        ("[logging\nlevel = 1\n", "invalid TOML"),
        ('[logging]\nmax_message_bytes = "big"\n', "must be a positive integer"),
        ("[logging]\nextra_loggers = 3\n", "must be a list of strings"),
        ('[logging]\nlevle = "INFO"\n', "unknown key 'levle'"),
        ('[loging]\nlevel = "INFO"\n', "unknown section 'loging'"),
        ('[logging]\nprocessors = ["not a spec"]\n', "not of the form 'package.module:callable'"),
        ('[logging]\nhttp = "http://127.0.0.1/"\n', "[logging.http] must be a table of keys."),
    ],
)
def test_bad_file_values_name_the_source(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(path)})
    assert str(path) in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "datefmt", ["%Y-%m-%dT%H:%M:%S%z", "%d/%m/%y %I:%M %p %Z", "%-d %e %s %T %F %%", "%Ec %Oy"]
)
def test_datefmt_takes_the_directives_strftime_knows(tmp_path: Path, datefmt: str) -> None:
    cfg = load_config({"datefmt": datefmt}, environ={"STRUCTFLOW__USER_CONFIG_PATH": os.devnull})
    assert cfg.logging.datefmt == datefmt


def test_a_config_path_variable_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "typo.toml"
    with pytest.raises(ConfigError) as info:
        load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(missing)})
    message = str(info.value)
    assert message.startswith(f"STRUCTFLOW__USER_CONFIG_PATH={str(missing)!r}: ")
    assert "does not exist" in message and os.devnull in message


def test_the_default_config_file_may_be_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_config(environ={"HOME": str(tmp_path)}).logging.level == "INFO"
    assert load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": ""}).logging.level == "INFO"


def test_a_spool_dir_that_cannot_be_a_directory_names_the_key_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = write(tmp_path / "a-file", "")
    path = write(
        tmp_path / "c.toml",
        f'[logging.http]\nurl = "http://127.0.0.1:9/"\nspool_dir = "{regular}"\n',
    )
    monkeypatch.setenv("STRUCTFLOW__USER_CONFIG_PATH", str(path))
    with pytest.raises(ConfigError) as info:
        structflow.configure()
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: [logging.http] HTTPHandler: spool_dir=")
    assert "is a file, not a directory" in message


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("a-file", "; it is a file, not a directory;"),
        ("a-file/spool", "; it cannot be created ({tmp}/a-file is a file, not a directory);"),
        ("a-file/a/spool", "; it cannot be created ({tmp}/a-file is a file, not a directory);"),
    ],
)
def test_a_spool_dir_given_to_configure_names_the_key(
    tmp_path: Path, where: str, reason: str
) -> None:
    write(tmp_path / "a-file", "")
    spool = str(tmp_path / where)
    reason = reason.format(tmp=tmp_path)
    with pytest.raises(ConfigError) as info:
        structflow.configure(syslog={"address": "tcp://127.0.0.1:9", "spool_dir": spool})
    message = str(info.value)
    assert message.startswith(
        f"structflow.configure(): [logging.syslog] SyslogHandler: spool_dir={spool!r} "
    )
    assert reason in message


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    env = {
        "STRUCTFLOW__USER_CONFIG_PATH": os.devnull,
        "STRUCTFLOW__LOGGING__LEVEL": "verbose",
    }
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert (
        "STRUCTFLOW__LOGGING__LEVEL='verbose' is not a log level; expected one of "
        "NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), a name registered with "
        "logging.addLevelName before structflow is configured, or a level number "
        "(0 or more, such as 10)." in str(info.value)
    )


def test_bad_configure_argument(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"structflow.configure\(renderer='yaml'\) is not a renderer"
    ):
        structflow.configure(renderer="yaml")


def test_configure_handler_table_must_be_a_dict() -> None:
    with pytest.raises(ConfigError) as info:
        structflow.configure(syslog="tcp://h:1")
    assert (
        "structflow.configure(syslog='tcp://h:1'): must be a dict of [logging.syslog] keys, "
        "or None to remove the handler." in str(info.value)
    )


def test_configure_none_removes_a_handler_table_the_file_set(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[logging.http]\nurl = "http://127.0.0.1:9/"\n')
    env = {"STRUCTFLOW__USER_CONFIG_PATH": str(path)}
    assert load_config(environ=env).logging.http.to_dict() == {"url": "http://127.0.0.1:9/"}
    assert "http" not in load_config({"http": None}, environ=env).logging


def test_unimportable_processor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot import 'nosuchmodule:fn'"):
        structflow.configure(processors=["nosuchmodule:fn"])


def test_env_set_after_import_before_first_use_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__LEVEL", "ERROR")
    assert structflow.get_logger().level == logging.ERROR
    assert structflow.config.logging.level == "ERROR"


def test_configure_rereads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    structflow.configure()
    assert structflow.config.logging.level == "INFO"
    monkeypatch.setenv("STRUCTFLOW__LOGGING__LEVEL", "DEBUG")
    structflow.configure()
    assert structflow.get_logger().level == logging.DEBUG


def test_configure_twice_never_duplicates_handlers() -> None:
    structflow.configure(level="DEBUG")
    first = list(structflow.get_logger().handlers)
    structflow.configure(level="DEBUG")
    structflow.configure(level="DEBUG", extra_loggers=["lib.a"])
    structflow.configure(level="DEBUG", extra_loggers=["lib.a"])
    # Under pytest each logger also hands its records on to pytest's log capture.
    expected = ["StreamHandler", "CaptureForwarder"]
    assert [type(h).__name__ for h in structflow.get_logger().handlers] == expected
    assert [type(h).__name__ for h in first] == expected
    assert [type(h).__name__ for h in logging.getLogger("lib.a").handlers] == expected


def test_config_is_read_only_mapping() -> None:
    assert structflow.config["logging"]["level"] == "INFO"
    with pytest.raises(TypeError):
        structflow.config.logging.level = "DEBUG"


ISOLATION_SCRIPT = r"""
import logging
import concurrent.futures, asyncio  # loggers a typical application already has

root = logging.getLogger()
app = logging.getLogger("some.app")
app.setLevel(logging.WARNING)
app.addHandler(logging.NullHandler())
root.addHandler(logging.NullHandler())


def state():
    loggers = [root] + [
        lg for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and not lg.name.startswith("structflow")
    ]
    return {lg.name: (type(lg), lg.level, list(lg.handlers), lg.propagate, lg.disabled)
            for lg in loggers}


before = state()
import structflow
from structflow import task, Flow
after_import = state()
assert all(after_import[n] == v for n, v in before.items()), "import changed a logger"

structflow.configure(level="DEBUG")
structflow.configure(level="DEBUG")


@task
def one():
    logging.getLogger("some.app").warning("inside")
    return 1


with Flow("iso") as flow:
    one()
assert flow.run().is_successful()
after = state()
changed = {n: (v, after[n]) for n, v in before.items() if after[n] != v}
assert not changed, changed
assert all(type(lg) is logging.Logger for n, lg in logging.Logger.manager.loggerDict.items()
           if isinstance(lg, logging.Logger) and not n.startswith("structflow"))
assert len(structflow.get_logger().handlers) == 1
print("ISOLATED")
"""


def test_import_configure_and_run_touch_nothing_outside_structflow() -> None:
    proc = run_python(ISOLATION_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert "ISOLATED" in proc.stdout


PREFECT1_CONFIG = """\
debug = false
backend = "server"
[cloud]
use_local_secrets = true
[logging]
level = "DEBUG"
log_to_cloud = false
[flows]
checkpointing = false
[tasks.defaults]
max_retries = 0
[context.secrets]
DB_PASSWORD = "hunter2"
[server.ui]
apollo_url = "http://localhost:4200/graphql"
"""


def test_a_renamed_prefect_1_config_file_is_read_and_its_own_settings_left_alone(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "config.toml", PREFECT1_CONFIG)
    env = {
        "STRUCTFLOW__USER_CONFIG_PATH": str(path),
        "STRUCTFLOW__CLOUD__SEND_FLOW_RUN_LOGS": "false",
        "STRUCTFLOW__CONTEXT__SECRETS__SLACK_WEBHOOK_URL": "https://hooks.example/x",
    }
    cfg = load_config(environ=env)
    assert cfg.logging.level == "DEBUG"
    assert "log_to_cloud" not in cfg.logging
    assert list(cfg) == ["logging", "server"]


def test_a_key_structflow_does_not_know_is_named_without_its_value(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[logging]\npassword = "hunter2"\n[loging]\ntoken = "t0k"\n')
    env = {"STRUCTFLOW__USER_CONFIG_PATH": str(path), "STRUCTFLOW__LOGGIN__KEY": "s3cret"}
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    message = str(info.value)
    assert "logging.password: unknown key 'password'" in message
    assert "loging: unknown section 'loging'" in message
    assert "STRUCTFLOW__LOGGIN__KEY: unknown section 'loggin'" in message
    assert not any(secret in message for secret in ("hunter2", "t0k", "s3cret"))


def test_the_config_path_variable_may_name_home_as_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "alt.toml", '[logging]\nlevel = "ERROR"\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    for spelled in ("$HOME/alt.toml", "${HOME}/alt.toml", "~/alt.toml"):
        cfg = load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": spelled})
        assert cfg.logging.level == "ERROR", spelled


def test_prefect_style_string_list_in_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[logging]\nextra_loggers = \"['urllib3', 'botocore']\"\n")
    cfg = load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(path)})
    assert cfg.logging.extra_loggers == ["urllib3", "botocore"]


# --- levels as numbers and registered names ---------------------------------------


@pytest.fixture
def notice() -> Iterator[None]:
    """The custom level NOTICE (25), registered for the test's duration."""
    logging.addLevelName(25, "NOTICE")
    try:
        yield
    finally:
        del logging._levelToName[25]
        del logging._nameToLevel["NOTICE"]


def test_level_number_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[logging]\nlevel = 10\n")
    assert load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(path)}).logging.level == 10


def test_level_number_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__LEVEL", "10")
    logger = structflow.get_logger("x")
    assert (structflow.config.logging.level, logger.getEffectiveLevel()) == (10, logging.DEBUG)


def test_level_number_given_to_configure() -> None:
    structflow.configure(level=15)
    logger = structflow.get_logger("x")
    assert (logger.isEnabledFor(15), logger.isEnabledFor(14)) == (True, False)


def test_level_name_registered_with_add_level_name(notice: None) -> None:
    structflow.configure(level="notice")
    assert (structflow.config.logging.level, structflow.get_logger().level) == ("NOTICE", 25)


def test_registered_names_are_listed_when_a_level_is_wrong(notice: None) -> None:
    with pytest.raises(ConfigError, match=r"expected one of NOTSET, .*, CRITICAL, NOTICE \(any"):
        structflow.configure(level="verbose")


@pytest.mark.parametrize("bad", [-1, True, 10.5, "1e1", "-5"])
def test_what_is_not_a_level(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"is not a log level;.* or a level number \(0 or more"):
        structflow.configure(level=bad)


# --- log_attributes ------------------------------------------------------------------


def test_log_attributes_default_to_none_listed() -> None:
    assert structflow.config.logging.log_attributes == []


def test_log_attributes_from_the_environment_prefect_style(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prefect 1 wrote lists as strings; a repeated key is listed once."""
    monkeypatch.setenv("STRUCTFLOW__LOGGING__LOG_ATTRIBUTES", "['user_id', 'region', 'user_id']")
    assert structflow.config.logging.log_attributes == ["user_id", "region"]


def test_log_attributes_must_name_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[logging]\nlog_attributes = ["user_id", " "]\n')
    with pytest.raises(ConfigError, match=r"line 2: logging.log_attributes = .* has an empty key"):
        load_config(environ={"STRUCTFLOW__USER_CONFIG_PATH": str(path)})
