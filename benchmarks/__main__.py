"""
``python -m benchmarks``: run the suite and print structflow's ratios to each peer.

Usage::

    python -m benchmarks               # full suite, results in benchmarks/results/latest.json
    python -m benchmarks --docs        # the same, then refresh docs/performance.md and its chart
    python -m benchmarks --quick       # every case once, briefly (smoke test, under a minute)
    python -m benchmarks --only 'render/*'       # a subset (results go to a temp dir)
    python -m benchmarks --report benchmarks/results/latest.json [--docs]

Exit status: 0 when every case ran and checked its output, 1 when any case
failed (every failure is listed on stderr), 2 for a usage error or missing
peer packages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from typing import Any

from benchmarks import report, suite
from benchmarks.suite import Case

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
DOCS_PAGE = os.path.join(ROOT, "docs", "performance.md")
DOCS_CHART = os.path.join(ROOT, "docs", "img", "performance.png")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark structflow against stdlib logging, python-json-logger, "
        "structlog, loguru, the seed page's handler and OpenTelemetry.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="run every case once, briefly (smoke test)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per case (default 5; 1 with --quick)")
    parser.add_argument(
        "--only",
        metavar="GLOB",
        action="append",
        help="run only cases whose group/name matches (repeatable; see --list)",
    )
    parser.add_argument("--output", metavar="DIR", help="where to write results JSON and chart")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="refresh docs/performance.md and docs/img/performance.png (full runs only)",
    )
    parser.add_argument(
        "--report", metavar="JSON", help="print the tables of a saved results file; run nothing"
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--large-store",
        action="store_true",
        help="also query stores of 5,000,000 entries (adds tens of minutes)",
    )
    return parser


def _publish(results: dict[str, Any], text: str, chart_path: str | None) -> None:
    """Write the generated section of the docs page and its chart."""
    # The page puts the results under its own "Latest results" heading.
    generated = "\n".join(
        "#" + line if line.startswith("## ") else line for line in text.split("\n")
    )
    if chart_path is not None and os.path.exists(chart_path):
        os.makedirs(os.path.dirname(DOCS_CHART), exist_ok=True)
        if os.path.abspath(chart_path) != DOCS_CHART:
            shutil.copyfile(chart_path, DOCS_CHART)
        generated = "![structflow benchmarks](img/performance.png)\n\n" + generated
    report.update_docs(DOCS_PAGE, generated)
    sys.stderr.write(f"updated {os.path.relpath(DOCS_PAGE, ROOT)}\n")


def _from_saved(args: argparse.Namespace) -> int:
    with open(args.report, encoding="utf-8") as f:
        results = json.load(f)
    chart_path = None
    if not args.no_chart:
        chart_path = os.path.join(os.path.dirname(os.path.abspath(args.report)), "latest.png")
        note = report.chart(results, chart_path)
        if note:
            sys.stderr.write(f"note: {note}\n")
            chart_path = None
    text = report.markdown(results)
    sys.stdout.write(text)
    if args.docs:
        if results["meta"].get("mode") != "full" or not results["meta"].get("complete"):
            sys.stderr.write("error: --docs needs the results of a complete full run\n")
            return 2
        _publish(results, text, chart_path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.report:
        return _from_saved(args)
    if args.docs and (args.quick or args.only or args.rounds not in (None, 5)):
        parser.error("--docs needs a full run: drop --quick, --only and --rounds")

    plan = suite.build_plan(args.quick, args.rounds, args.only, args.large_store)
    if args.list:
        for case in plan:
            sys.stdout.write(f"{case.key:40} {case.rounds} round(s)  {case.label}\n")
        return 0
    if not plan:
        parser.error(f"--only {' '.join(args.only)} matches no case; see --list")
    missing = suite.missing_peers()
    if missing:
        sys.stderr.write(
            "error: the benchmarks need these packages: "
            + ", ".join(missing)
            + "\ninstall them with: pip install -e '.[bench]'\n"
        )
        return 2

    complete = not args.only and args.rounds in (None, 5) and not args.quick
    if args.output:
        out_dir = args.output
    elif complete:
        out_dir = RESULTS_DIR
    else:
        out_dir = tempfile.mkdtemp(prefix="structflow-bench-results-")
    os.makedirs(out_dir, exist_ok=True)

    shown_args = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "benchmarks", *shown_args])
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    mode = "quick" if args.quick else "full"
    sys.stderr.write(
        f"structflow benchmarks ({mode}): {len(plan)} cases, "
        f"{len(suite.schedule(plan))} runs, each in its own process\n"
    )
    failures: list[str] = []

    def on_error(case: Case, r: int, message: str) -> None:
        failures.append(f"{case.key} (round {r + 1}): {message}")

    outcomes = suite.run_plan(plan, args.quick, sys.stderr, on_error)
    notes = []
    if not any(c.group == "syslog" for c in plan) and not args.only:
        notes.append("syslog-ng is not installed, so the syslog case did not run.")
    notes.append(
        "OpenTelemetry ships through opentelemetry-exporter-otlp-json-http, its OTLP/HTTP "
        "JSON exporter (a beta release), with the SDK's default batch processor settings."
    )
    results: dict[str, Any] = {
        "meta": {
            "mode": mode,
            "rounds": max((c.rounds for c in plan), default=0),
            "complete": complete and not failures,
            "command": command,
            "started": started.isoformat(timespec="seconds"),
            "duration_s": time.monotonic() - t0,
            "machine": suite.machine_info(),
            "notes": notes,
        },
        "cases": suite.summarise(outcomes.values()),
    }
    chart_path: str | None = None
    if not args.no_chart:
        chart_path = os.path.join(out_dir, "latest.png")
        note = report.chart(results, chart_path)
        if note:
            notes.append(note)
            chart_path = None
    json_path = os.path.join(out_dir, "latest.json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    text = report.markdown(results)
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.stderr.write(f"results: {json_path}\n")
    if chart_path:
        sys.stderr.write(f"chart: {chart_path}\n")
    if failures:
        sys.stderr.write(f"\n{len(failures)} run(s) FAILED:\n")
        for failure in failures:
            sys.stderr.write(f"- {failure}\n")
        return 1
    if args.docs:
        _publish(results, text, chart_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
