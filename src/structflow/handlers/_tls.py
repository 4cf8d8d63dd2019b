"""
TLS for the shipping handlers: one ``verify`` setting, checked and turned into a client context.

``verify`` is ``True`` (check the server's certificate against the system's
trusted CAs), ``False`` (do not check; for tests only) or the path of a CA
bundle. ``HTTPHandler`` hands the checked value to ``requests`` (whose
``verify=`` takes the same three forms); ``SyslogHandler`` wraps its
``tls://`` socket in :func:`ssl_context`.
"""

from __future__ import annotations

import os
import ssl

from structflow.handlers.shipping.settings import check_str

__all__ = ["check_verify", "ssl_context"]


def check_verify(owner: str, verify: object) -> bool | str:
    """
    Return *verify* if it is a bool or the path of an existing CA bundle.

    Raises:
        ValueError: it is neither; the message names *owner* and the value.
    """
    if isinstance(verify, bool):
        return verify
    path = check_str(owner, "verify", verify, what="true, false or the path of a CA bundle")
    if not os.path.exists(path):
        raise ValueError(
            f"{owner}: verify={path!r} is invalid; expected true, false or the path of an "
            "existing CA bundle"
        )
    return path


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The client context for a checked *verify* value."""
    if verify is True:
        return ssl.create_default_context()
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify)
