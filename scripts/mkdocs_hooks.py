"""
mkdocs hooks for the documentation site.

Docstrings mark public objects with reST's ``.. versionadded:: X`` (as
structlog and attrs do); the Google-style docstring parser leaves that line
as text, so it is turned into a short note here.
"""

from __future__ import annotations

import re
from typing import Any

_VERSIONADDED = re.compile(r"\.\. versionadded:: ([0-9][\w.]*)")


def on_page_content(html: str, **_kwargs: Any) -> str:
    """Render ``.. versionadded:: X`` as "Added in version X."."""
    return _VERSIONADDED.sub(r"<em>Added in version \1.</em>", html)
