"""
HTTPHandler and secrets: header values checked when the handler is made, requests
that can never be sent, credentials over plain http://, and diagnostics that never
quote a secret.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest

from receivers import (
    FAST,
    NO_DROPS,
    Diagnostics,
    HTTPReceiver,
    Respond,
    attach,
    closing_fixture,  # noqa: F401 - pytest finds it as 'closing'
    diagnostics_fixture,  # noqa: F401 - pytest finds it as 'diagnostics'
    receiver_fixture,  # noqa: F401 - pytest finds it as 'receiver'
)
from structflow.handlers import HTTPHandler, InsecureCredentialsWarning

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-Zq9"


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without proxy settings; the test sets its own."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


# --- header values are checked when the handler is made ----------------------------


@pytest.mark.parametrize(
    "value",
    [
        f"{SECRET}\n",  # read from a file or variable with its newline
        f"{SECRET}\r\nX-Injected: yes",
        f"Bearer {SECRET}\u2019",  # not Latin-1
        f" {SECRET}",
        f"{SECRET}\x00",
    ],
)
def test_a_header_value_that_cannot_be_sent_is_refused_without_showing_it(value: str) -> None:
    with pytest.raises(ValueError) as info:
        HTTPHandler("http://127.0.0.1:1/", headers={"X-Api-Key": value})

    message = str(info.value)
    assert message.startswith("HTTPHandler: headers['X-Api-Key'] ")
    assert "cannot be sent in an HTTP header" in message
    assert SECRET not in message


def test_a_token_from_the_environment_with_a_trailing_newline_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRUCTFLOW_TEST_TOKEN", f"{SECRET}\n")
    with pytest.raises(ValueError) as info:
        HTTPHandler("http://127.0.0.1:1/", token="env:STRUCTFLOW_TEST_TOKEN")

    message = str(info.value)
    assert message.startswith("HTTPHandler: token='env:STRUCTFLOW_TEST_TOKEN' ")
    assert "the environment variable STRUCTFLOW_TEST_TOKEN" in message
    assert "line break" in message
    assert SECRET not in message


@pytest.mark.parametrize("name", ["X Api Key", "X-Key:", "", "X-Ké"])
def test_a_header_name_that_is_not_a_token_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"HTTPHandler: headers=.* is not a valid header name"):
        HTTPHandler("http://127.0.0.1:1/", headers={name: "v"})


def test_latin_1_header_values_are_sent(
    receiver: HTTPReceiver, closing: list[logging.Handler]
) -> None:
    handler = HTTPHandler(receiver.url, headers={"X-Team": "Café\tBleu"})
    closing.append(handler)
    attach(handler).info("hello")

    assert handler.flush(timeout=20) is True
    assert receiver.accepted[0].headers["X-Team"] == "Café\tBleu"


@pytest.mark.parametrize("url", ["http://a..b/", "http://\u2603\u2603..x/"])
def test_a_url_requests_cannot_parse_is_refused_when_the_handler_is_made(url: str) -> None:
    with pytest.raises(ValueError, match="HTTPHandler: url="):
        HTTPHandler(url)


# --- a request that can never be sent is a rejection --------------------------------


def test_a_request_that_can_never_be_sent_is_dropped_as_rejected_not_retried(
    receiver: HTTPReceiver,
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    no_proxy_settings.setenv("HTTP_PROXY", "http://proxy.invalid:no-port")
    handler = HTTPHandler(receiver.url, **FAST)  # type: ignore[arg-type]
    closing.append(handler)
    logger = attach(handler)
    for i in range(3):
        logger.info("r", extra={"seq": i})

    assert handler.flush(timeout=20) is True
    stats = handler.stats()
    assert (stats["dropped"], stats["retried"]) == ({**NO_DROPS, "rejected": 3}, 0)
    assert receiver.attempts == []
    (message,) = diagnostics.messages()
    assert "could not send 3 record(s) and never will" in message
    assert "InvalidURL" in message


# --- diagnostics never quote a secret -------------------------------------------------


def test_a_4xx_body_echoing_secrets_is_quoted_without_them(
    receiver: HTTPReceiver,
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
) -> None:
    echo = (
        f"denied: header X-Api-Key={SECRET}-h, password=pw-{SECRET}, "
        f"api_key=q-{SECRET}, escaped q%2F{SECRET}"
    ).encode()
    receiver.script(Respond(403, body=echo))
    url = receiver.url.replace("http://", f"http://ann:pw-{SECRET}@")
    handler = HTTPHandler(
        f"{url}push?api_key=q-{SECRET}&other=q/{SECRET}",
        headers={"X-Api-Key": f"{SECRET}-h"},
        **FAST,  # type: ignore[arg-type]
    )
    closing.append(handler)
    attach(handler).info("r")

    assert handler.flush(timeout=20) is True
    assert receiver.attempts[0].status == 403
    (message,) = diagnostics.messages()
    assert "HTTP 403" in message and "denied: header X-Api-Key=***" in message
    assert SECRET not in message


def test_a_url_re_encoded_by_the_transport_stays_out_of_diagnostics(
    receiver: HTTPReceiver,
    closing: list[logging.Handler],
    diagnostics: Diagnostics,
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    """A proxy refusing CONNECT: the transport's error quotes the path and query it sends."""
    no_proxy_settings.setenv("HTTPS_PROXY", receiver.url)
    handler = HTTPHandler(
        f"https://logs.example/push?tenant=a&api_key={SECRET} two",
        shutdown_timeout=0.2,
        **FAST,  # type: ignore[arg-type]
    )
    closing.append(handler)
    attach(handler).info("r")

    assert handler.flush(timeout=0.5) is False
    messages = " ".join(diagnostics.messages())
    assert "Tunnel connection failed" in messages
    assert SECRET not in messages and "tenant=a" not in messages


# --- credentials over plain http:// ----------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"url": "http://logs.example:8080/", "token": "t0k"},
        {"url": "http://ann:pw@logs.example:8081/"},
        {"url": "http://logs.example:8082/", "headers": {"Authorization": "Basic YW5uOnB3"}},
    ],
)
def test_credentials_over_plain_http_to_another_host_warn_once(options: dict[str, Any]) -> None:
    with pytest.warns(InsecureCredentialsWarning, match="logs.example") as caught:
        for _ in range(2):
            HTTPHandler(**options, shutdown_timeout=0).close()

    assert len(caught) == 1
    assert "https://" in str(caught[0].message)
    assert "t0k" not in str(caught[0].message) and "pw" not in str(caught[0].message)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1/", "http://localhost:1/", "http://[::1]:1/", "https://logs.example/"],
)
def test_credentials_to_this_machine_or_over_https_do_not_warn(url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HTTPHandler(url, token="t0k", shutdown_timeout=0).close()
