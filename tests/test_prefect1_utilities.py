"""Prefect 1's ``prefect.utilities.configuration.set_temporary_config``, renamed."""

from __future__ import annotations

import logging

import pytest

import structflow
from sample_flows import Collect
from structflow import ConfigError
from structflow.handlers import HTTPHandler
from structflow.utilities.configuration import set_temporary_config


def shipping_handlers() -> list[HTTPHandler]:
    return [h for h in structflow.get_logger().handlers if isinstance(h, HTTPHandler)]


def test_values_apply_in_the_block_and_the_configure_call_in_force_comes_back() -> None:
    structflow.configure(format="%(levelname)s %(message)s", stream="none")
    keep = Collect()
    logger = structflow.get_logger("Task A")
    logger.addHandler(keep)

    with set_temporary_config({"logging.level": "DEBUG"}) as cfg:
        assert cfg is structflow.config._cfg()
        assert structflow.config.logging.level == "DEBUG"
        logger.debug("seen in the block")
        # What configure() was given stays, besides the temporary value.
        assert structflow.config.logging.format == "%(levelname)s %(message)s"
    logger.debug("not seen after it")

    assert keep.messages("structflow.Task A") == ["seen in the block"]
    assert structflow.config.logging.level == "INFO"
    assert structflow.config.logging.format == "%(levelname)s %(message)s"


def test_a_handler_table_key_adds_the_handler_for_the_block_only() -> None:
    structflow.configure(stream="none")
    with set_temporary_config({"logging.http.url": "http://127.0.0.1:9/logs"}):
        (handler,) = shipping_handlers()
        assert handler.url == "http://127.0.0.1:9/logs"
    assert shipping_handlers() == []


def test_the_values_come_back_when_the_block_raises() -> None:
    structflow.configure(level="WARNING", stream="none")
    with pytest.raises(RuntimeError), set_temporary_config({"logging.level": "DEBUG"}):
        raise RuntimeError("test failed inside")
    assert structflow.config.logging.level == "WARNING"
    assert structflow.get_logger().level == logging.WARNING


def test_prefect_1_settings_are_left_alone_as_in_a_config_file() -> None:
    temp = {"flows.checkpointing": True, "cloud.api": "x", "logging.level": 10}
    with set_temporary_config(temp):
        assert structflow.config.logging.level == 10
        assert structflow.get_logger().level == logging.DEBUG
    assert "flows" not in structflow.config


@pytest.mark.parametrize(
    ("temp", "message"),
    [
        ({"level": "DEBUG"}, "set_temporary_config(): 'level' is not a key structflow takes"),
        ({"logging.http": "x"}, "structflow.configure(http='x'): must be a dict"),
        ({"logging.levels": "DEBUG"}, "unknown key 'levels'; expected one of level,"),
        ({"logging.level": "loud"}, "structflow.configure(level='loud') is not a log level"),
    ],
)
def test_a_key_or_value_structflow_refuses_changes_nothing(
    temp: dict[str, object], message: str
) -> None:
    structflow.configure(level="WARNING", stream="none")
    with pytest.raises(ConfigError) as info, set_temporary_config(temp):
        pytest.fail("the block must not run")
    assert message in str(info.value)
    assert structflow.config.logging.level == "WARNING"
