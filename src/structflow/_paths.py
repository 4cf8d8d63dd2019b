"""
Making the directories that a store file or a spool lives in.

A leaf module: it imports only the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_directory"]


def make_directory(path: str | os.PathLike[str]) -> str:
    """
    Make the directory *path* and its parents; return ``""``, or why it cannot be made.

    The reason names a file standing where the directory or one of its
    parents should be (the system only says "File exists" or "Not a
    directory", naming neither).
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        directory = Path(path)
        for place in (directory, *directory.parents):
            if place.exists() or place.is_symlink():
                if not place.is_dir():
                    return f"{place} is a file, not a directory"
                break
        return exc.strerror or str(exc)
    return ""
