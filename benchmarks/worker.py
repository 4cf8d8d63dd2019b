"""
Run one benchmark case in this process and print its result.

``python -m benchmarks.worker GROUP CASE [--quick]``
prints one line ``BENCHMARK-RESULT {json}``; any failure exits non-zero with
the reason on stderr. The suite starts one worker process per case and round.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback

from benchmarks._common import RESULT_MARKER

#: Group name -> (module, function) whose ``function(case, quick)`` measures a case.
GROUPS = {
    "render": ("benchmarks.rendering", "run"),
    "scaling": ("benchmarks.scaling", "run"),
    "ship": ("benchmarks.shipping", "run_ship"),
    "outage": ("benchmarks.shipping", "run_outage"),
    "ship-block": ("benchmarks.shipping", "run_block"),
    "syslog": ("benchmarks.shipping", "run_syslog"),
    "store-ingest": ("benchmarks.store", "run_ingest"),
    "store-query": ("benchmarks.store", "run_query"),
    "ingest": ("benchmarks.serving", "run"),
}


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the case, print the result line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    parser.add_argument("group", choices=sorted(GROUPS))
    parser.add_argument("case")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    module_name, function = GROUPS[args.group]
    runner = getattr(importlib.import_module(module_name), function)
    try:
        result = runner(args.case, args.quick)
    except Exception:
        traceback.print_exc()
        return 1
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
