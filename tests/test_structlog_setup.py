"""[logging] structlog = "auto" | true | false, processors() and configure() (DESIGN.md 11)."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
import structlog
import structlog.testing

import structflow
import structflow.testing
from receivers import run_python
from structflow import ConfigError
from structflow.integrations import structlog as integration
from structlog_support import RUN, collecting, setup_json, structlog_defaults, summary

__all__ = ["structlog_defaults"]  # an autouse fixture


def is_structflows() -> bool:
    return structlog.get_config()["processors"][-1] is integration.emit_record


def add_app(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A user's own processor."""
    event_dict["app"] = "shop"
    return event_dict


# --- the three modes ----------------------------------------------------------------------


def test_auto_configures_an_unconfigured_structlog() -> None:
    structflow.configure(stream="none")
    assert structlog.is_configured()
    assert is_structflows()


def test_auto_leaves_a_users_configuration_untouched() -> None:
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    before = structlog.get_config()
    structflow.configure(stream="none")
    after = structlog.get_config()
    assert after.keys() == before.keys()
    assert all(after[key] is before[key] for key in before)
    assert structlog.get_logger().info("e") == '{"event": "e"}'


def test_true_replaces_a_users_configuration_and_reset_restores_it() -> None:
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    before = structlog.get_config()
    structflow.configure(stream="none", structlog=True)
    assert is_structflows()
    with collecting() as records:
        assert structlog.get_logger("x").info("routed") is None
    assert [r.getMessage() for r in records] == ["routed"]
    structflow._setup.reset()
    assert structlog.is_configured()
    assert all(structlog.get_config()[key] is value for key, value in before.items())


def test_false_never_configures_structlog() -> None:
    structflow.configure(stream="none", structlog=False)
    assert not structlog.is_configured()


def test_switching_to_false_gives_structlog_back_its_defaults() -> None:
    structflow.configure(stream="none")
    structflow.configure(stream="none", structlog=False)
    assert not structlog.is_configured()
    assert not is_structflows()


def test_reset_gives_structlog_back_its_defaults() -> None:
    structflow.configure(stream="none")
    structflow._setup.reset()
    assert not structlog.is_configured()


def test_configuring_again_stacks_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    setup_json()
    first = structlog.get_config()
    setup_json()
    setup_json(level="INFO")
    assert structlog.get_config()["processors"] is first["processors"]
    assert len(first["processors"]) == 2
    structlog.get_logger("x").info("once")
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_a_structlog_configuration_made_later_wins() -> None:
    structflow.configure(stream="none")
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    structflow.configure(stream="none")
    assert not is_structflows()


def test_wrap_logger_keeps_its_own_logger_and_processors() -> None:
    structflow.configure(stream="none")
    log = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[structlog.processors.JSONRenderer(sort_keys=True)]
    )
    assert log.info("e", k=1) == '{"event": "e", "k": 1}'


# --- the key in the configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("false", False), ("TRUE", True), ("auto", "auto"), ("Auto", "auto")],
)
def test_environment_values_are_read(
    raw: str, expected: str | bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STRUCTLOG", raw)
    assert structflow.configure(stream="none").logging.structlog == expected


def test_default_is_auto() -> None:
    assert structflow.configure(stream="none").logging.structlog == "auto"


def test_bad_value_names_the_variable_and_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__STRUCTLOG", "sometimes")
    with pytest.raises(ConfigError) as info:
        structflow.configure()
    assert (
        "STRUCTFLOW__LOGGING__STRUCTLOG='sometimes' is not a structlog mode; "
        "expected one of auto, true, false." in str(info.value)
    )


def test_bad_value_in_configure_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"structflow.configure\(structlog=3\) is not"):
        structflow.configure(structlog=3)


# --- a user's own structlog configuration with processors() -----------------------------------


def auto_records(call: Callable[[], None]) -> list[dict[str, Any]]:
    structflow.configure(stream="none", level="DEBUG")
    with collecting() as records, structflow.context(**RUN):
        call()
    structflow._setup.reset()
    structlog.reset_defaults()
    return [summary(r) for r in records]


# A user's structlog set-up: its configure() arguments, the processors before
# structflow's, and the logger name used (a PrintLogger keeps no name).
USER_SETUPS: dict[str, tuple[dict[str, Any], list[Any], str | None]] = {
    "filtering": (
        {
            "wrapper_class": structlog.make_filtering_bound_logger(logging.DEBUG),
            "logger_factory": structlog.PrintLoggerFactory(),
        },
        [],
        None,
    ),
    "stdlib": (
        {
            "wrapper_class": structlog.stdlib.BoundLogger,
            "logger_factory": structlog.stdlib.LoggerFactory(),
        },
        [],
        "lib",
    ),
    "stdlib-documented-chain": (
        {
            "wrapper_class": structlog.stdlib.BoundLogger,
            "logger_factory": structlog.stdlib.LoggerFactory(),
        },
        [
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
        ],
        "lib",
    ),
}


@pytest.mark.parametrize("setup", list(USER_SETUPS))
def test_processors_in_a_users_configuration_give_the_same_records(
    setup: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options, before_ours, name = USER_SETUPS[setup]
    # filter_by_level asks the stdlib logger of that name.
    lib = logging.getLogger(name or __name__)
    monkeypatch.setattr(lib, "level", logging.DEBUG)

    def calls() -> None:
        log = structlog.get_logger(name).bind(run_id="r-9")
        log.info("rows %s", 3, k=1)
        log.debug("debugging")
        log.warning("%(n)d left", {"n": 2})
        with structlog.contextvars.bound_contextvars(req="x"):
            log.error("with contextvars")

    expected = auto_records(calls)
    structlog.configure(processors=[*before_ours, *integration.processors()], **options)
    structflow.configure(stream="none", level="DEBUG")
    with collecting() as records, structflow.context(**RUN):
        calls()
    assert [summary(r) for r in records] == expected
    assert [r["message"] for r in expected] == [
        "rows 3",
        "debugging",
        "2 left",
        "with contextvars",
    ]
    assert expected[0]["name"] == (name or __name__)


def test_processors_chain_starts_with_the_users_processors() -> None:
    structlog.configure(
        processors=[add_app, *integration.processors()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    structflow.configure(stream="none")
    with collecting() as records:
        structlog.get_logger("x").info("e", k=1)
    assert [(r.getMessage(), vars(r)["app"], vars(r)["k"]) for r in records] == [("e", "shop", 1)]
    assert vars(records[0])["structflow_fields"] == ("k", "app")


def test_processors_chain_configures_structflow_on_first_use() -> None:
    structlog.configure(processors=integration.processors())
    with collecting() as records:
        structlog.get_logger("x").warning("first")
    assert structflow._setup._current is not None
    assert [r.getMessage() for r in records] == ["first"]


def test_processors_chain_still_filters_by_structflows_level() -> None:
    structlog.configure(processors=integration.processors())
    structflow.configure(stream="none", level="WARNING")
    with collecting() as records:
        structlog.get_logger("x").info("dropped")
        structlog.get_logger("x").warning("kept")
    assert [r.getMessage() for r in records] == ["kept"]


def test_a_failing_user_processor_still_gives_one_record() -> None:
    def broken(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("broken processor")

    structflow.configure(stream="none")
    integration.configure(processors=[broken])
    with collecting() as records:
        structlog.get_logger("x").info("e")
    (record,) = records
    assert record.getMessage() == "e"
    assert "raised RuntimeError: broken processor" in vars(record)["processor_error"]


# --- configure() -----------------------------------------------------------------------------


def test_configure_puts_given_processors_first() -> None:
    integration.configure(processors=[add_app])
    assert structlog.get_config()["processors"] == [add_app, *integration.processors()]
    with collecting() as records:
        structlog.get_logger("x").info("e")
    assert [(r.getMessage(), vars(r)["app"]) for r in records] == [("e", "shop")]


def test_configure_keeps_a_chain_that_ends_with_structflows() -> None:
    chain = [add_app, *integration.processors()]
    integration.configure(processors=chain)
    assert structlog.get_config()["processors"] == chain


def test_configure_overrides_a_users_configuration() -> None:
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    integration.configure()
    assert is_structflows()


def test_configure_stays_when_structflow_applies_its_configuration_again() -> None:
    integration.configure(processors=[add_app])
    chain = structlog.get_config()["processors"]
    structflow.configure(stream="none", structlog=False)
    structflow.configure(stream="none")
    assert structlog.get_config()["processors"] is chain


def test_configure_rejects_arguments_structlog_does_not_take() -> None:
    with pytest.raises(TypeError) as info:
        integration.configure(renderer="json")
    assert "got 'renderer'" in str(info.value)
    assert "processors, wrapper_class, context_class" in str(info.value)
    assert not structlog.is_configured()


# --- structlog imported after structflow set itself up -------------------------------------------


def test_structlog_imported_later_is_configured_then() -> None:
    code = (
        "import sys, structflow\n"
        "structflow.get_logger('x').info('structflow first')\n"
        "assert 'structlog' not in sys.modules, 'structlog was imported early'\n"
        "import structlog\n"
        "assert structlog.__spec__.loader is structlog.__loader__\n"
        "assert 'structflow' not in type(structlog.__loader__).__module__\n"
        "assert structlog.is_configured()\n"
        "with structflow.context(task_name='t1'):\n"
        "    structlog.get_logger('lib').bind(run_id='r-9').warning('late', k=2)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].endswith("WARNING - lib | late")


def test_structlog_imported_later_stays_untouched_with_false() -> None:
    code = (
        "import os\n"
        "os.environ['STRUCTFLOW__LOGGING__STRUCTLOG'] = 'false'\n"
        "import structflow\n"
        "structflow.get_logger('x')\n"
        "import structlog\n"
        "assert not structlog.is_configured()\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("wrapper", ["structflow's", "structlog.BoundLogger"])
def test_a_renderer_configured_after_structflow_wins_and_writes_once(
    wrapper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The application's chain renders; its line is written as structlog's default would."""
    structflow.configure(renderer="json")
    if wrapper != "structflow's":
        integration.configure(wrapper_class=structlog.BoundLogger)
    capsys.readouterr()
    structlog.configure(processors=[structlog.processors.JSONRenderer(sort_keys=True)])
    with collecting() as records:
        structlog.get_logger("x").info("e one", k=1)
    assert records == []
    assert capsys.readouterr().out.splitlines() == ['{"event": "e one", "k": 1}']


def test_a_chain_of_the_applications_sees_the_message_with_its_arguments() -> None:
    structflow.configure(stream="none")
    with structlog.testing.capture_logs() as seen:
        log = structlog.get_logger("x")
        log.warning("warn %s", "x")
        log.warning("%(who)s came", {"who": "ann"})
        log.warning("%s and %s", "only-one")  # noqa: PLE1206 - arguments that do not fit
    assert [e["event"] for e in seen] == ["warn x", "ann came", "%s and %s"]
    assert seen[2]["positional_args"] == ("only-one",)


def test_filter_by_level_and_the_rest_of_the_chain_run() -> None:
    def mask(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict["card"] = "****"
        return event_dict

    integration.configure(processors=[structlog.stdlib.filter_by_level, mask])
    with collecting() as records:
        log = structlog.get_logger("pay")
        log.info("charged", card="4111111111111111")
        log.debug("not shown")
    assert [(r.getMessage(), vars(r)["card"]) for r in records] == [("charged", "****")]
    assert "processor_error" not in vars(records[0])


def test_an_event_renamed_by_event_renamer_is_the_message() -> None:
    integration.configure(processors=[structlog.processors.EventRenamer("msg")])
    with collecting() as records:
        structlog.get_logger("x").info("renamed event", k=1)
    assert [(r.getMessage(), vars(r)["k"]) for r in records] == [("renamed event", 1)]
    assert "msg_" not in vars(records[0])


def test_a_level_set_on_structflows_logger_reaches_structlogs_loggers() -> None:
    structflow.configure(stream="none", level="INFO")
    log = structlog.get_logger("x")
    with structflow.testing.capture_logs(level="DEBUG") as captured:
        log.debug("now shown")
    assert [c["message"] for c in captured] == ["now shown"]
    with structflow.testing.capture_logs() as captured:
        log.debug("hidden again")
    assert captured == []
    structflow.get_logger().setLevel(logging.DEBUG)
    assert log.is_enabled_for(logging.DEBUG)


def test_structflows_logger_factory_has_only_level_methods() -> None:
    structflow.configure(stream="none")
    target = structlog.get_config()["logger_factory"]("x")
    assert target.name == "x"
    assert target.disabled is False
    assert not hasattr(target, "propagate")
