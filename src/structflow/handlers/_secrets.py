"""
Secrets of the shipping handlers: how they are shown, checked and kept out of diagnostics.

* :func:`mask_url`, :func:`mask_secret` and :func:`masked_setting` show a
  handler setting the way ``repr(handler)`` and ``structflow config show``
  print it: passwords, query values, tokens and header values as ``***``
  (an ``"env:NAME"`` reference is shown, since it holds no secret);
* :func:`check_header` refuses, when a handler is made, a header that no
  HTTP request can carry (a line break, a character outside Latin-1), naming
  the header and never its value;
* :class:`Scrubber` replaces every secret in the text of a diagnostic, in
  each spelling it can take there (as given, percent-encoded as the
  transport re-encodes URLs, JSON-escaped as a response body echoes it);
* :func:`is_loopback` tells whether a host is this machine, where plain
  ``http://`` exposes nothing on the network.

Imports only the standard library, so ``structflow config show`` masks
without loading the HTTP transport.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "Scrubber",
    "check_header",
    "is_loopback",
    "mask_secret",
    "mask_url",
    "masked_setting",
    "public_url",
]

#: What a secret is shown as.
MASK = "***"
# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Field-value characters: visible ASCII, space, tab and obs-text (Latin-1 above 0x7F).
_FIELD_CHAR = re.compile(r"[\t\x20-\x7e\x80-\xff]")
# Secrets shorter than this are replaced only where they stand alone (not
# inside a longer word), so that a one-letter value does not mangle the text.
_SHORT = 6


def mask_secret(value: object) -> object:
    """A token or header value as shown: ``"env:NAME"`` references as given, others ``***``."""
    if isinstance(value, str) and (value.startswith("env:") or not value):
        return value
    return MASK


def mask_url(url: str) -> str:
    """The url with its password and query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(
        p.split("=", 1)[0] + (f"={MASK}" if "=" in p else "") for p in parts.query.split("&") if p
    )
    if netloc == parts.netloc and query == parts.query and not parts.fragment:
        # Nothing to hide: as given (urlunsplit would turn the empty host of
        # sqlite:////abs/path.db into sqlite://abs/path.db).
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def public_url(url: str) -> str:
    """The url as diagnostics show it: no user info, no query."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def masked_setting(key: str, value: object) -> object:
    """
    How ``repr(handler)`` and ``structflow config show`` print the handler setting *key*.

    ``url`` loses its password and query values, ``token`` and each of
    ``headers``' values become ``***`` unless they are ``"env:NAME"``.
    """
    if key == "url" and isinstance(value, str):
        return mask_url(value)
    if key == "token":
        return mask_secret(value)
    if key == "headers" and isinstance(value, Mapping):
        return {name: mask_secret(v) for name, v in value.items()}
    return value


def check_header(owner: str, key: str, name: str, value: str, origin: str = "") -> None:
    """
    Raise ValueError unless an HTTP request can carry the header *name*: *value*.

    The message names *key* (``headers['X-Api-Key']``, ``token``) and
    *origin* (where the value was read, such as an environment variable),
    says what is wrong and where, and never shows the value.
    """
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(
            f"{owner}: headers={{{name!r}: ...}} is not a valid header name; expected "
            "letters, digits and !#$%&'*+-.^_`|~ only"
        )
    problem = _value_problem(value)
    if problem is None:
        return
    source = f" (read from {origin})" if origin else ""
    hint = (
        " (a value read from a file or variable often ends with a newline)"
        if ("line break" in problem)
        else ""
    )
    raise ValueError(
        f"{owner}: {key}{source} cannot be sent in an HTTP header: {problem}{hint}; expected "
        "Latin-1 text without line breaks, control characters or spaces at either end"
    )


def _value_problem(value: str) -> str | None:
    """What makes *value* impossible in a header, without quoting it; None if nothing does."""
    for index, char in enumerate(value):
        if _FIELD_CHAR.fullmatch(char):
            continue
        if char in "\r\n":
            what = "a line break"
        elif ord(char) > 0xFF:
            what = f"the character U+{ord(char):04X}, which Latin-1 cannot encode,"
        else:
            what = f"the control character U+{ord(char):04X}"
        return f"it holds {what} at position {index} of {len(value)}"
    if value != value.strip(" \t"):
        return "it starts or ends with a space or tab"
    return None


def is_loopback(host: str) -> bool:
    """Whether *host* (a name or an address, without brackets) is this machine."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class Scrubber:
    """
    Replaces secrets in the text of diagnostics with ``***``.

    Each secret is looked for as given, percent-encoded (both the way
    ``requests`` re-encodes a URL and with every reserved character
    encoded), decoded, and JSON-escaped. Longer spellings are replaced first.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        spellings: set[str] = set()
        for secret in secrets:
            if secret:
                spellings.update(_spellings(secret))
        spellings.discard("")
        self._long = sorted((s for s in spellings if len(s) >= _SHORT), key=len, reverse=True)
        short = sorted((s for s in spellings if len(s) < _SHORT), key=len, reverse=True)
        self._short = (
            re.compile(
                r"(?<![0-9A-Za-z])(?:" + "|".join(map(re.escape, short)) + r")(?![0-9A-Za-z])"
            )
            if short
            else None
        )

    @classmethod
    def for_request(cls, url: str, values: Iterable[str], prepared_url: str) -> Scrubber:
        """
        The secrets of a request: header *values* (the token too), the url's password and query.

        *prepared_url* is the url as the transport sends it (re-encoded);
        its query string is a secret as a whole too, since diagnostics name
        the path they tried.
        """
        secrets = list(values)
        for each in (url, prepared_url):
            parts = urlsplit(each)
            secrets.append(parts.query)
            if parts.password:
                secrets.append(parts.password)
                user = unquote(parts.username or "")
                basic = f"{user}:{unquote(parts.password)}".encode("latin-1", "replace")
                secrets.append(base64.b64encode(basic).decode("ascii"))
            for pair in parts.query.split("&"):
                if "=" in pair:
                    secrets.append(pair.split("=", 1)[1])
        return cls(secrets)

    def __call__(self, text: str) -> str:
        """*text* with every secret replaced by ``***``."""
        for secret in self._long:
            if secret in text:
                text = text.replace(secret, MASK)
        if self._short is not None:
            text = self._short.sub(MASK, text)
        return text


def _spellings(secret: str) -> set[str]:
    """The ways *secret* can appear in an error message or a response body."""
    decoded = unquote(secret)
    forms = {secret, decoded}
    for form in (secret, decoded):
        forms.add(quote(form, safe="/:=&?~+!$,;'@()*[]"))  # as requests re-quotes a URL
        forms.add(quote(form, safe=""))
        forms.add(quote_plus(form, safe=""))
        forms.add(json.dumps(form)[1:-1])
        forms.add(json.dumps(form, ensure_ascii=False)[1:-1])
    return forms
