"""Skip-or-fail for tests whose real component may be missing on a developer machine."""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str) -> None:
    """
    Skip the test when *what* is missing, except under ``CI=true``, where it fails.

    CI must prove the integration, so a missing component there is an error.
    """
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI=true but is missing", pytrace=False)
    pytest.skip(f"{what} is not available")
