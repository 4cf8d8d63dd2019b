"""
Tables, targets and the chart made from a results document.

A results document is what ``python -m benchmarks`` writes to
``benchmarks/results/latest.json``: ``meta`` (machine, versions, command) and
``cases`` (each case's rounds and per-metric median/min/max).

Ratios say how many times as fast structflow is as the peer (above 1 is
better for structflow), and are computed round by round: round *r* of
structflow against round *r* of the peer, which ran next to it in time.
"""

from __future__ import annotations

import os
import re

from benchmarks import store
from benchmarks._stats import (
    Results,
    Stat,
    Target,
    fmt_bytes,
    fmt_count,
    fmt_ns,
    fmt_ratio,
    fmt_stat,
    import_net,
    label,
    paired,
    speedup_ns,
    speedup_rate,
    table,
    values,
)

#: Rendering set-ups compared with structflow, in table order.
PEER_SETUPS = (
    "stdlib.classic",
    "stdlib.trivial",
    "pjl.json",
    "pjl.orjson",
    "structlog.stdlib",
    "structlog.native",
    "loguru.serialize",
)
#: structflow rendering set-ups, in column order.
STRUCTFLOW_SETUPS = (
    "structflow.classic",
    "structflow.json",
    "structflow.json-bind",
    "structflow.logfmt",
)
#: The structlog comparison: structlog's logger through structflow, and the
#: same record through structflow's own bound logger and structlog's stdlib set-up.
STRUCTLOG_SETUPS = ("structlog.structflow", "structflow.json-bind2", "structlog.stdlib-bind2")
SHIP_PEERS = ("seed", "queue", "otel")
IMPORT_PEERS = ("logging", "python-json-logger", "structlog", "loguru", "opentelemetry")

DOCS_BEGIN = "<!-- BEGIN GENERATED RESULTS (python -m benchmarks --docs) -->"
DOCS_END = "<!-- END GENERATED RESULTS -->"


# --- reading results -----------------------------------------------------------------


def targets(results: Results) -> list[Target]:
    """Return the issue's speed targets evaluated on *results*."""

    def ns(key: str) -> list[float]:
        return values(results, f"render/{key}", "ns_per_call")

    sf_json = ns("structflow.json:info")
    ship_sf = values(results, "ship/structflow", "delivered_per_s")
    ship_seed = values(results, "ship/seed", "delivered_per_s")
    emit_sf = values(results, "ship/structflow", "emit_ns_per_call")
    served = values(results, "ingest/serve", "stored_per_s")
    local = values(results, "ingest/store-handler", "stored_per_s")
    return [
        Target(
            "JSON via a task logger vs python-json-logger OrjsonFormatter",
            speedup_ns(sf_json, ns("pjl.orjson:info")),
            1.6,
            True,
        ),
        Target(
            "JSON via a task logger vs structlog ProcessorFormatter",
            speedup_ns(sf_json, ns("structlog.stdlib:info")),
            2.0,
            True,
        ),
        Target(
            "JSON via bind vs python-json-logger JsonFormatter",
            speedup_ns(ns("structflow.json-bind:info"), ns("pjl.json:info")),
            1.3,
            True,
        ),
        Target(
            "classic vs stdlib logging.Formatter",
            speedup_ns(ns("structflow.classic:info"), ns("stdlib.classic:info")),
            1.2,
            True,
        ),
        Target(
            "disabled debug vs stdlib (no slower)",
            speedup_ns(ns("structflow.json:debug-off"), ns("stdlib.classic:debug-off")),
            1.0,
            True,
        ),
        Target(
            "structlog logger through structflow vs structlog ProcessorFormatter (same record)",
            speedup_ns(ns("structlog.structflow:info"), ns("structlog.stdlib-bind2:info")),
            2.0,
            True,
        ),
        Target(
            "structlog logger through structflow / structflow bound logger (cost ratio)",
            Stat.of(
                paired(
                    ns("structlog.structflow:info"),
                    ns("structflow.json-bind2:info"),
                    lambda a, b: a / b,
                )
            ),
            1.5,
            False,
        ),
        Target(
            "structlog disabled debug vs make_filtering_bound_logger (no slower)",
            speedup_ns(ns("structlog.structflow:debug-off"), ns("structlog.native:debug-off")),
            1.0,
            True,
        ),
        Target(
            "HTTPHandler delivered vs seed handler",
            speedup_rate(ship_sf, ship_seed),
            100.0,
            True,
        ),
        Target(
            "HTTPHandler delivered records/s",
            Stat.of(ship_sf),
            80_000.0,
            True,
            unit="records/s",
        ),
        Target(
            "HTTPHandler, 8 threads, when_full=block: 64 KiB queue / default queue (burst time)",
            Stat.of(values(results, "ship-block/structflow", "ratio")),
            1.5,
            False,
        ),
        Target(
            "structflow serve ingest vs StoreHandler into the same kind of store",
            speedup_rate(served, local),
            0.5,
            True,
        ),
        Target(
            "HTTPHandler emit cost / JSON to /dev/null (cost ratio)",
            Stat.of(paired(emit_sf, sf_json, lambda e, j: e / j)),
            1.3,
            False,
        ),
        *store.store_targets(results),
    ]


# --- sections ------------------------------------------------------------------------


def ratio_tables(results: Results) -> str:
    """The side-by-side ratio tables: structflow against each peer."""

    def ns(case: str) -> list[float]:
        return values(results, f"render/{case}", "ns_per_call")

    parts = []
    header = ["peer (each cell: structflow is Nx as fast)"]
    header += [label(results, f"render/{s}:info") for s in STRUCTFLOW_SETUPS]
    header.append("debug filtered out (task logger)")
    rows = []
    for peer in PEER_SETUPS:
        peer_ns = values(results, f"render/{peer}:info", "ns_per_call")
        row = [label(results, f"render/{peer}:info")]
        for s in STRUCTFLOW_SETUPS:
            sf_ns = values(results, f"render/{s}:info", "ns_per_call")
            row.append(fmt_ratio(speedup_ns(sf_ns, peer_ns)))
        row.append(
            fmt_ratio(
                speedup_ns(
                    values(results, "render/structflow.json:debug-off", "ns_per_call"),
                    values(results, f"render/{peer}:debug-off", "ns_per_call"),
                )
            )
        )
        rows.append(row)
    parts.append("**Rendering to /dev/null** (median ratio over rounds, min-max in brackets)\n")
    parts.append(table(header, rows))

    structlog_rows = [
        [label(results, f"render/{peer}:{variant}"), fmt_ratio(speedup_ns(ns(mine), ns(peer_case)))]
        for mine, peer_case, peer, variant in (
            (
                "structlog.structflow:info",
                "structlog.stdlib-bind2:info",
                "structlog.stdlib-bind2",
                "info",
            ),
            (
                "structlog.structflow:info",
                "structflow.json-bind2:info",
                "structflow.json-bind2",
                "info",
            ),
            (
                "structlog.structflow:debug-off",
                "structlog.native:debug-off",
                "structlog.native",
                "debug-off",
            ),
        )
        if f"render/{mine}" in results["cases"] or f"render/{peer_case}" in results["cases"]
    ]
    if structlog_rows:
        parts.append(
            "\n**structlog's own logger through structflow** (record with 4 run-context fields "
            "and 2 bound keys; each cell: structlog through structflow is Nx as fast)\n"
        )
        parts.append(table(["compared with", "ratio"], structlog_rows))

    ship_rows = []
    for peer in SHIP_PEERS:
        key = f"ship/{peer}"
        if key not in results["cases"]:
            continue

        def sf(metric: str) -> list[float]:
            return values(results, "ship/structflow", metric)

        def pv(metric: str, key: str = key) -> list[float]:
            return values(results, key, metric)

        ship_rows.append(
            [
                label(results, key),
                fmt_ratio(speedup_rate(sf("delivered_per_s"), pv("delivered_per_s"))),
                fmt_ratio(speedup_ns(sf("emit_ns_per_call"), pv("emit_ns_per_call"))),
                fmt_ratio(speedup_ns(sf("p50_ns"), pv("p50_ns"))),
                fmt_ratio(speedup_ns(sf("p99_ns"), pv("p99_ns"))),
            ]
        )
    if ship_rows:
        parts.append("\n**Shipping to a local receiver** (structflow HTTPHandler, NDJSON)\n")
        parts.append(
            table(
                [
                    "peer",
                    "delivered records/s",
                    "caller cost per record",
                    "caller latency p50",
                    "caller latency p99",
                ],
                ship_rows,
            )
        )

    sf_import = import_net(results, "structflow")
    if sf_import:
        import_rows = []
        for peer in IMPORT_PEERS:
            peer_net = import_net(results, peer)
            if peer_net:
                import_rows.append(
                    [label(results, f"import/{peer}"), fmt_ratio(speedup_ns(sf_import, peer_net))]
                )
        parts.append(
            "\n**Import time** (net of interpreter start; above 1: `import structflow` is faster)\n"
        )
        parts.append(table(["peer", "import structflow is Nx as fast"], import_rows))
    return "\n".join(parts)


def targets_table(results: Results) -> str:
    rows = [t.row() for t in targets(results)]
    text = table(["target", "measured (median, min-max)", "wanted", "result"], rows)
    p50 = Stat.of(
        paired(
            values(results, "ship/structflow", "p50_ns"),
            values(results, "render/structflow.json:info", "ns_per_call"),
            lambda e, j: e / j,
        )
    )
    if p50 is not None:
        text += (
            "\n\nThe emit cost above is the caller's time per record over a sustained burst, "
            "which includes the share of the GIL taken by the handler's background thread "
            "(rendering and sending). Per call, the median `emit` returns in "
            f"{fmt_ratio(p50)} the time of a JSON record written to /dev/null."
        )
    return text


def absolute_tables(results: Results) -> str:
    parts = []
    rows = []
    for s in (*STRUCTFLOW_SETUPS, *PEER_SETUPS, *STRUCTLOG_SETUPS, "floor.noop"):
        on = values(results, f"render/{s}:info", "ns_per_call")
        if not on:
            continue
        off = values(results, f"render/{s}:debug-off", "ns_per_call")
        rows.append(
            [
                label(results, f"render/{s}:info"),
                fmt_stat(Stat.of([1e9 / v for v in on]), fmt_count),
                fmt_stat(Stat.of(on), fmt_ns),
                fmt_stat(Stat.of(off), fmt_ns) if off else "-",
            ]
        )
    if rows:
        parts.append("**Rendering to /dev/null**\n")
        parts.append(
            table(
                ["set-up", "records/s", "ns per call", "debug filtered out, per call"],
                rows,
            )
        )

    for kind, counts, title in (
        ("threads", (1, 2, 4, 8), "**Threads** (total records/s, JSON, run context)"),
        ("fields", (0, 4, 16, 64), "**Bound fields** (records/s, JSON, no run context)"),
    ):
        setups: list[str] = []
        for case in results["cases"].values():
            if case["group"] == "scaling" and case["name"].startswith(kind + ":"):
                s = case["name"].split(":")[1]
                if s not in setups:
                    setups.append(s)
        if not setups:
            continue
        srows = []
        for s in setups:
            row = [
                label(results, f"render/{s}:info") if f"render/{s}:info" in results["cases"] else s
            ]
            for c in counts:
                ns = values(results, f"scaling/{kind}:{s}:{c}", "ns_per_call")
                row.append(fmt_stat(Stat.of([1e9 / v for v in ns]), fmt_count) if ns else "n/a")
            srows.append(row)
        if "structflow.json" in setups:
            for s in setups:
                if s == "structflow.json":
                    continue
                row = [f"structflow ÷ {s}"]
                for c in counts:
                    sf_ns = values(results, f"scaling/{kind}:structflow.json:{c}", "ns_per_call")
                    peer_ns = values(results, f"scaling/{kind}:{s}:{c}", "ns_per_call")
                    row.append(fmt_ratio(speedup_ns(sf_ns, peer_ns)))
                srows.append(row)
        unit = "thread" if kind == "threads" else "field"
        heads = [f"{c} {unit}{'' if c == 1 else 's'}" for c in counts]
        parts.append(f"\n{title}\n")
        parts.append(table(["set-up", *heads], srows))

    ship_rows = []
    for key, case in results["cases"].items():
        if case["group"] not in ("ship", "syslog"):
            continue

        def st(metric: str, key: str = key) -> Stat | None:
            return Stat.of(values(results, key, metric))

        lost = st("lost")
        ship_rows.append(
            [
                case["label"],
                fmt_stat(st("delivered_per_s"), fmt_count),
                fmt_stat(st("emit_ns_per_call"), fmt_ns),
                fmt_stat(st("p50_ns"), fmt_ns),
                fmt_stat(st("p99_ns"), fmt_ns),
                fmt_stat(st("max_ns"), fmt_ns),
                f"{lost.median:.0f} of {fmt_count(values(results, key, 'sent')[0])}"
                if lost is not None
                else "0",
            ]
        )
    if ship_rows:
        parts.append("\n**Shipping to a local receiver** (burst of records, then flush)\n")
        parts.append(
            table(
                [
                    "sender",
                    "delivered records/s",
                    "caller cost per record",
                    "latency p50",
                    "latency p99",
                    "latency max",
                    "lost in the burst",
                ],
                ship_rows,
            )
        )

    ingest_rows = [
        [case["label"], fmt_stat(Stat.of(values(results, key, "stored_per_s")), fmt_count)]
        for key, case in results["cases"].items()
        if case["group"] == "ingest"
    ]
    if ingest_rows:
        parts.append("\n**Into a fresh SQLite log store** (burst of records, then flush)\n")
        parts.append(table(["path", "records stored/s"], ingest_rows))

    out_rows = []
    for case in results["cases"].values():
        if case["group"] != "outage" or not case["rounds"]:
            continue
        r = case["rounds"][0]
        spooled = r.get("spool_bytes_at_end_of_outage")
        out_rows.append(
            [
                case["label"],
                f"{r['rate_achieved']:.0f}/s",
                fmt_count(r["sent"]),
                fmt_count(r["delivered"]),
                fmt_count(r["lost"]),
                fmt_count(r["raised_into_caller"]),
                fmt_bytes(spooled) if spooled is not None else "-",
                fmt_bytes(r["peak_rss_bytes"]),
                fmt_bytes(r["rss_growth_bytes"]),
                fmt_ns(r["slowest_tick_ns"]),
                f"{r['recovery_s']:.1f} s",
            ]
        )
    if out_rows:
        first = next(c for c in results["cases"].values() if c["group"] == "outage")
        down = first["rounds"][0]["down_s"] if first["rounds"] else 0
        rate = first["rounds"][0]["rate_target"] if first["rounds"] else 0
        parts.append(
            f"\n**Receiver down for {down:g} s while logging {rate} records/s** "
            "(one run; lost = sent - delivered after the receiver came back)\n"
        )
        parts.append(
            table(
                [
                    "sender",
                    "rate achieved",
                    "sent",
                    "delivered",
                    "lost",
                    "errors raised into the caller",
                    "spooled on disk",
                    "peak RSS",
                    "RSS growth",
                    "slowest 10 ms tick",
                    "recovery",
                ],
                out_rows,
            )
        )

    imp_rows = []
    for key, case in results["cases"].items():
        if case["group"] != "import":
            continue
        wall = Stat.of(values(results, key, "ms"))
        net = Stat.of(import_net(results, case["name"])) if case["name"] != "python" else None
        imp_rows.append(
            [
                case["label"],
                fmt_stat(wall, lambda x: f"{x:.0f} ms"),
                fmt_stat(net, lambda x: f"{x:.0f} ms") if net else "-",
            ]
        )
    if imp_rows:
        parts.append("\n**Import time** (wall time of `python -c STATEMENT`)\n")
        parts.append(table(["statement", "wall time", "net of interpreter start"], imp_rows))
    return "\n".join(parts)


def machine_section(results: Results) -> str:
    meta = results["meta"]
    m = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    load = ", ".join(f"{x:.2f}" for x in m.get("load_average_at_start", []))
    return "\n".join(
        [
            f"- Machine: {m['cores']} cores ({m['cpu']}), {m['platform']}, "
            f"load average at start {load}",
            f"- Python {m['python']} ({m['implementation']})",
            f"- Versions: {versions}",
            f"- Run: {meta['mode']}, {meta['rounds']} rounds, started {meta['started']}, "
            f"took {meta['duration_s'] / 60:.1f} min",
            f"- Command: `{meta['command']}`",
        ]
    )


def markdown(results: Results) -> str:
    """Return the whole report: ratios first, then targets, then absolute figures."""
    parts = [
        "## structflow compared with each peer\n",
        ratio_tables(results),
        "\n## Speed targets\n",
        targets_table(results),
        "\n## Absolute figures\n",
        absolute_tables(results),
        "\n## Log store\n",
        store.store_section(results),
        "\n## Machine\n",
        machine_section(results),
    ]
    notes = results["meta"].get("notes") or []
    if notes:
        parts.append("\n## Notes\n")
        parts.extend(f"- {n}" for n in notes)
    return "\n".join(parts) + "\n"


# --- chart ----------------------------------------------------------------------------


def chart(results: Results, path: str) -> str | None:
    """
    Draw records/s of the rendering and shipping cases to a PNG at *path*.

    Returns:
        None when drawn, else why not (matplotlib is optional).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; no chart drawn"

    render = []
    for s in (*STRUCTFLOW_SETUPS, *PEER_SETUPS, *STRUCTLOG_SETUPS):
        ns = values(results, f"render/{s}:info", "ns_per_call")
        if ns:
            rates = [1e9 / v for v in ns]
            own = results["cases"][f"render/{s}:info"]["peer"] == "structflow"
            render.append((label(results, f"render/{s}:info"), Stat.of(rates), own))
    ship = []
    for key, case in results["cases"].items():
        if case["group"] in ("ship", "syslog"):
            st = Stat.of(values(results, key, "delivered_per_s"))
            if st is not None:
                ship.append((case["label"], st, case["peer"] == "structflow"))
    if not render and not ship:
        return "no rendering or shipping results to draw"

    panels = [
        (rows, title, log)
        for rows, title, log in (
            (render, "Rendering to /dev/null: records/s (higher is better)", False),
            (ship, "Shipping to a local receiver: delivered records/s (log scale)", True),
        )
        if rows
    ]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 0.45 * sum(len(p[0]) for p in panels) + 1.5 * len(panels)),
        gridspec_kw={"height_ratios": [len(p[0]) for p in panels]},
        squeeze=False,
    )
    for ax, (rows, title, log) in zip(axes[:, 0], panels, strict=True):
        shown = [(name, st, own) for name, st, own in rows[::-1] if st is not None]
        names = [name for name, _st, _own in shown]
        med = [st.median for _n, st, _o in shown]
        err = [
            [st.median - st.low for _n, st, _o in shown],
            [st.high - st.median for _n, st, _o in shown],
        ]
        colors = ["#1f77b4" if own else "#b0b0b0" for _n, _st, own in shown]
        ax.barh(names, med, xerr=err, color=colors, capsize=3, ecolor="#444444")
        if log:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=11)
        ax.tick_params(axis="y", labelsize=8)
        right = max(st.high for _n, st, _o in shown)
        ax.set_xlim(right=right * (2.5 if log else 1.18))
        for y, (_n, st, _o) in enumerate(shown):
            ax.text(st.high, y, "  " + fmt_count(st.median), va="center", fontsize=8)
    m = results["meta"]["machine"]
    fig.suptitle(
        f"structflow benchmarks — {m['cores']} cores, Python {m['python']}, "
        "median of rounds, bars span min-max",
        fontsize=10,
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --- docs -------------------------------------------------------------------------------


def update_docs(doc_path: str, generated: str) -> None:
    """
    Replace the generated section of *doc_path* with *generated*.

    Raises:
        ValueError: when the document lacks the begin/end markers.
    """
    with open(doc_path, encoding="utf-8") as f:
        text = f.read()
    pattern = re.compile(re.escape(DOCS_BEGIN) + r".*?" + re.escape(DOCS_END), re.S)
    if not pattern.search(text):
        raise ValueError(
            f"{doc_path} has no generated section; add the lines {DOCS_BEGIN!r} and "
            f"{DOCS_END!r} where the results go"
        )
    replacement = f"{DOCS_BEGIN}\n\n{generated.strip()}\n\n{DOCS_END}"
    text = pattern.sub(lambda _m: replacement, text)
    with open(doc_path, "w", encoding="utf-8") as f:
        f.write(text)
