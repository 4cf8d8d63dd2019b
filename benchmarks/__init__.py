"""
structflow's benchmark suite.

``python -m benchmarks`` measures structflow against the logging set-ups its
users would otherwise reach for (stdlib logging, python-json-logger,
structlog, loguru, the seed page's handler, OpenTelemetry) and prints a table
of ratios, then the absolute figures. ``python -m benchmarks --quick`` runs
every case briefly as a smoke test. See ``docs/performance.md`` for the
method and the latest results.
"""
