"""``python -m structflow``: the ``structflow`` command, for where its script is not on PATH."""

from __future__ import annotations

import sys

from structflow.cli import main

sys.exit(main())
