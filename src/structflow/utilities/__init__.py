"""Import paths kept for code ported from Prefect 1 (``prefect.utilities.*``)."""

# `import structflow` is enough for `structflow.utilities.logging.get_logger()`,
# as `import prefect` was for Prefect 1's.
from structflow.utilities import logging

__all__ = ["logging"]
