/*
 * structflow serve: the web view. Plain JavaScript, no library, no build step.
 *
 * "/"                the runs page   (?flow=NAME&state=STATE)
 * "/runs/<id>"       a run's page    (?level=error&search=words&task=NAME&live=1)
 *
 * Everything comes from the JSON API (/api/runs, /api/logs) and the live tail
 * (/api/logs/stream, read with fetch so the token travels in a header).
 */
"use strict";

const TOKEN_KEY = "structflow-token";
const RUNS_PAGE = 50;
const LOGS_PAGE = 500;
const REFRESH_MS = 5000;
const LEVELS = [
  ["", "All levels"],
  ["debug", "Debug and above"],
  ["info", "Info and above"],
  ["warning", "Warning and above"],
  ["error", "Error and above"],
  ["critical", "Critical"],
];
const STATES = ["Running", "Success", "Failed", "TriggerFailed", "Retrying"];

const main = document.getElementById("main");
let stopPage = () => {};

/* --- small helpers ------------------------------------------------------------ */

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function stateClass(state) {
  const known = ["success", "failed", "triggerfailed", "timedout", "running", "retrying"];
  const key = String(state || "").toLowerCase();
  return "state-" + (known.includes(key) ? key : "other");
}

function stateBadge(state) {
  return el("span", { class: "badge " + stateClass(state) }, state || "no lifecycle");
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

function formatTime(iso, withDate = true) {
  if (!iso) return "–";
  const d = new Date(iso);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withDate ? `${date} ${time}` : `${time}.${pad(d.getMilliseconds(), 3)}`;
}

function timeCell(iso, withDate = true) {
  return el("td", { class: "time" }, iso ? el("time", { datetime: iso, title: iso }, formatTime(iso, withDate)) : "–");
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds > 0 && seconds < 0.0005) return "< 1 ms";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/* A run's duration; for a run still running, the time since it started. */
function runDuration(run) {
  if (run.duration_s === null && run.state === "Running" && run.started) {
    const elapsed = (Date.now() - Date.parse(run.started)) / 1000;
    if (elapsed >= 0) return `${formatDuration(elapsed)} so far`;
  }
  return formatDuration(run.duration_s);
}

const SEVERITIES = ["debug", "info", "warning", "warn", "error", "critical", "fatal"];

/* Levels in the order of their severity; names the page does not know come last. */
function severity(level) {
  const at = SEVERITIES.indexOf(String(level).toLowerCase());
  return at < 0 ? SEVERITIES.length : at;
}

function countOf(counts, ...levels) {
  return levels.reduce((sum, level) => sum + (counts[level] || 0), 0);
}

function countCell(n, kind) {
  return el("td", { class: "num" }, el("span", { class: n ? `count-${kind}` : "zero" }, n));
}

/* --- the token ------------------------------------------------------------------ */

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders(extra = {}) {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

function askForToken(wrong) {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  error.hidden = !wrong;
  error.textContent = wrong ? "That token was refused; try again." : "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
        input.value = "";
        document.getElementById("forget-token").hidden = !token();
        resolve();
      },
      { once: true },
    );
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

class ApiError extends Error {
  constructor(status, message, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter;
  }
}

async function api(path, params) {
  const query = params ? "?" + params.toString() : "";
  for (let attempt = 0; attempt < 4; attempt++) {
    const response = await fetch(path + query, { headers: authHeaders({ Accept: "application/json" }) });
    if (response.status === 401) {
      await askForToken(Boolean(token()));
      continue;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body.error || response.statusText, body.parameter);
    return body;
  }
  throw new ApiError(401, "no valid token was given");
}

function notice(message) {
  return el("p", { class: "notice", role: "alert" }, message);
}

/* --- navigation ----------------------------------------------------------------- */

function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

function linkHandler(event) {
  const a = event.target.closest("a");
  if (!a || a.target || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (url.pathname !== "/" && !url.pathname.startsWith("/runs/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

function route() {
  stopPage();
  stopPage = () => {};
  main.replaceChildren();
  const path = location.pathname;
  if (path.startsWith("/runs/")) {
    stopPage = runPage(decodeURIComponent(path.slice("/runs/".length)), new URLSearchParams(location.search));
  } else {
    stopPage = runsPage(new URLSearchParams(location.search));
  }
}

function queryString(values) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value) params.set(key, value);
  const text = params.toString();
  return text ? "?" + text : "";
}

/* --- the runs page -------------------------------------------------------------- */

function runsPage(query) {
  const flow = query.get("flow") || "";
  const state = query.get("state") || "";
  document.title = "Flow runs · structflow";
  const status = el("span", { class: "muted", "aria-live": "polite", id: "runs-status" });
  const flowInput = el("input", { id: "filter-flow", name: "flow", type: "search", value: flow, placeholder: "any flow", list: "flow-names" });
  const flowNames = el("datalist", { id: "flow-names" });
  const stateSelect = el(
    "select",
    { id: "filter-state", name: "state" },
    el("option", { value: "" }, "Any state"),
    STATES.map((s) => el("option", { value: s, selected: s.toLowerCase() === state.toLowerCase() }, s)),
  );
  const form = el(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter runs",
      onsubmit: (event) => {
        event.preventDefault();
        navigate("/" + queryString({ flow: flowInput.value.trim(), state: stateSelect.value }));
      },
    },
    el("div", { class: "field" }, el("label", { for: "filter-flow" }, "Flow"), flowInput, flowNames),
    el("div", { class: "field" }, el("label", { for: "filter-state" }, "State"), stateSelect),
    el("button", { type: "submit", class: "primary" }, "Apply"),
    flow || state ? el("a", { href: "/" }, "Clear filters") : null,
  );
  stateSelect.addEventListener("change", () => form.requestSubmit());

  const body = el("tbody");
  const table = el(
    "table",
    { class: "runs" },
    el("caption", { class: "visually-hidden" }, "Flow runs, newest first"),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Flow"),
        el("th", { scope: "col" }, "State"),
        el("th", { scope: "col" }, "Started"),
        el("th", { scope: "col", class: "num" }, "Duration"),
        el("th", { scope: "col", class: "num" }, "Tasks"),
        el("th", { scope: "col", class: "num" }, "Warnings"),
        el("th", { scope: "col", class: "num" }, "Errors"),
        el("th", { scope: "col" }, "Flow run id"),
      ),
    ),
    body,
  );
  const more = el("button", { type: "button", hidden: true }, "Load more runs");
  const foot = el("div", { class: "table-foot", hidden: true }, more);
  const message = el("div");
  const empty = el("p", { class: "empty", hidden: true }, "No flow runs match. Runs appear here as their logs arrive.");
  main.append(
    el("div", { class: "page-head" }, el("h1", {}, "Flow runs"), el("span", { class: "spacer" }), status),
    el("div", { class: "panel" }, form),
    message,
    el("div", { class: "panel flush" }, el("div", { class: "table-scroll" }, table), empty, foot),
  );

  const filters = new URLSearchParams();
  if (flow) filters.set("flow_name", flow);
  if (state) filters.set("state", state);
  let next = null;
  let loadedPages = 1;
  let stopped = false;
  const names = new Set();

  function row(run) {
    const counts = run.counts || {};
    if (run.flow_name && !names.has(run.flow_name)) {
      names.add(run.flow_name);
      flowNames.append(el("option", { value: run.flow_name }));
    }
    return el(
      "tr",
      { "data-run": run.flow_run_id },
      el("td", { class: "flow" }, el("a", { href: `/runs/${encodeURIComponent(run.flow_run_id)}` }, run.flow_name || "(no flow name)")),
      el("td", {}, stateBadge(run.state)),
      timeCell(run.started),
      el("td", { class: "num" }, runDuration(run)),
      el("td", { class: "num" }, run.task_count),
      countCell(countOf(counts, "warning", "warn"), "warning"),
      countCell(countOf(counts, "error", "critical", "fatal"), "error"),
      el("td", { class: "id mono" }, run.flow_run_id),
    );
  }

  async function load(append) {
    const params = new URLSearchParams(filters);
    params.set("limit", String(append ? RUNS_PAGE : RUNS_PAGE * loadedPages));
    if (append && next) params.set("after", next);
    try {
      const page = await api("/api/runs", params);
      if (stopped) return;
      message.replaceChildren();
      const rows = page.runs.map(row);
      if (append) body.append(...rows);
      else body.replaceChildren(...rows);
      next = page.next;
      more.hidden = !next;
      foot.hidden = !next;
      empty.hidden = body.children.length > 0;
      status.textContent = `Updated ${formatTime(new Date().toISOString(), false).slice(0, 8)} · refreshes every ${REFRESH_MS / 1000} s`;
    } catch (error) {
      if (!stopped) message.replaceChildren(notice(error.message));
    }
  }

  more.addEventListener("click", async () => {
    loadedPages += 1;
    await load(true);
  });
  load(false);
  const timer = setInterval(() => load(false), REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/* --- a run's page ----------------------------------------------------------------- */

function runPage(flowRunId, query) {
  const level = query.get("level") || "";
  const search = query.get("search") || "";
  const task = query.get("task") || "";
  const live = query.get("live") === "1";
  let stopped = false;
  let tail = null;
  document.title = `Run ${flowRunId} · structflow`;

  const head = el("div", { class: "page-head" }, el("h1", {}, "Flow run"));
  const message = el("div");
  const summary = el("div", { class: "panel" }, el("p", { class: "muted" }, "Loading the run…"));
  const timeline = el("section", { class: "panel", "aria-labelledby": "timeline-title" }, el("h2", { id: "timeline-title" }, "Task runs"));

  const levelSelect = el(
    "select",
    { id: "log-level", name: "level" },
    LEVELS.map(([value, label]) => el("option", { value, selected: value === level }, label)),
  );
  const searchInput = el("input", { id: "log-search", name: "search", type: "search", value: search, placeholder: "words in the message" });
  const taskSelect = el("select", { id: "log-task", name: "task" }, el("option", { value: "" }, "All tasks"));
  if (task) taskSelect.append(el("option", { value: task, selected: true }, task));
  const form = el(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter logs",
      onsubmit: (event) => {
        event.preventDefault();
        navigate(pageUrl({ level: levelSelect.value, search: searchInput.value.trim(), task: taskSelect.value, live: liveButton.getAttribute("aria-pressed") === "true" ? "1" : "" }));
      },
    },
    el("div", { class: "field" }, el("label", { for: "log-level" }, "Level"), levelSelect),
    el("div", { class: "field" }, el("label", { for: "log-search" }, "Search"), searchInput),
    el("div", { class: "field" }, el("label", { for: "log-task" }, "Task"), taskSelect),
    el("button", { type: "submit", class: "primary" }, "Apply"),
    level || search || task ? el("a", { href: pageUrl({ live: live ? "1" : "" }) }, "Clear filters") : null,
  );
  levelSelect.addEventListener("change", () => form.requestSubmit());
  taskSelect.addEventListener("change", () => form.requestSubmit());

  const liveButton = el(
    "button",
    { type: "button", class: "switch", id: "live-tail", "aria-pressed": live ? "true" : "false" },
    el("span", { class: "track", "aria-hidden": "true" }),
    "Live tail",
  );
  const liveStatus = el("span", { class: "live-status", "aria-live": "polite", id: "live-status" });
  const logBody = el("tbody");
  const logTable = el(
    "table",
    { class: "logs" },
    el("caption", { class: "visually-hidden" }, "Log entries of the run, oldest first"),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Details")),
        el("th", { scope: "col" }, "Time"),
        el("th", { scope: "col" }, "Level"),
        el("th", { scope: "col" }, "Task"),
        el("th", { scope: "col", class: "logger" }, "Logger"),
        el("th", { scope: "col" }, "Message"),
      ),
    ),
    logBody,
  );
  const logCount = el("span", { id: "log-count" });
  const more = el("button", { type: "button", hidden: true }, "Load more entries");
  const emptyLogs = el("p", { class: "empty", hidden: true }, "No entry matches these filters.");
  const logs = el(
    "section",
    { class: "panel flush", "aria-labelledby": "logs-title" },
    el("div", { class: "logs-toolbar" }, el("h2", { id: "logs-title", class: "visually-hidden" }, "Logs"), form, el("div", { class: "switch-wrap" }, liveButton, " ", liveStatus)),
    el("div", { class: "table-scroll" }, logTable),
    emptyLogs,
    el("div", { class: "table-foot" }, logCount, more),
  );
  main.append(
    el("p", { class: "crumbs" }, el("a", { href: "/" }, "Flow runs"), " › ", el("span", { class: "mono" }, flowRunId)),
    head,
    message,
    summary,
    timeline,
    logs,
  );

  function pageUrl(values) {
    return `/runs/${encodeURIComponent(flowRunId)}` + queryString(values);
  }

  function logFilters() {
    const params = new URLSearchParams({ flow_run_id: flowRunId });
    if (level) params.set("level", level);
    if (search) params.set("search", search);
    if (task) params.set("task_name", task);
    return params;
  }

  /* the summary and the timeline */

  function drawRun(run) {
    document.title = `${run.flow_name || "Run"} ${run.state || ""} · structflow`;
    head.replaceChildren(el("h1", {}, run.flow_name || "(no flow name)"), stateBadge(run.state));
    const counts = run.counts || {};
    const chips = Object.entries(counts)
      .sort((a, b) => severity(a[0]) - severity(b[0]) || a[0].localeCompare(b[0]))
      .map(([name, n]) => el("span", { class: `badge level level-${name} state-other` }, `${name} ${n}`));
    summary.replaceChildren(
      el(
        "dl",
        { class: "summary" },
        el("div", {}, el("dt", {}, "Flow run id"), el("dd", { class: "mono" }, run.flow_run_id)),
        el("div", {}, el("dt", {}, "Started"), el("dd", {}, formatTime(run.started))),
        el("div", {}, el("dt", {}, "Ended"), el("dd", {}, run.ended ? formatTime(run.ended) : run.state ? "still running" : "not known (no lifecycle records)")),
        el("div", {}, el("dt", {}, "Duration"), el("dd", {}, runDuration(run))),
        el("div", {}, el("dt", {}, "Task runs"), el("dd", {}, run.task_runs.length)),
        el("div", {}, el("dt", {}, "Entries by level"), el("dd", { class: "chips" }, chips)),
      ),
    );
    const names = [...new Set(run.task_runs.map((t) => t.task_name).filter(Boolean))].sort();
    const chosen = taskSelect.value;
    taskSelect.replaceChildren(el("option", { value: "" }, "All tasks"), ...names.map((n) => el("option", { value: n, selected: n === chosen }, n)));
    if (chosen && !names.includes(chosen)) taskSelect.append(el("option", { value: chosen, selected: true }, chosen));
    drawTimeline(run);
  }

  function drawTimeline(run) {
    const title = el("h2", { id: "timeline-title" }, "Task runs");
    if (!run.task_runs.length) {
      timeline.replaceChildren(title, el("p", { class: "muted" }, "This run has no task runs (yet)."));
      return;
    }
    const start = Date.parse(run.started || run.task_runs[0].started);
    const ends = run.task_runs.map((t) => Date.parse(t.ended || t.started || run.started));
    const end = Math.max(run.ended ? Date.parse(run.ended) : Date.now(), ...ends, start + 1);
    const span = end - start;
    const items = run.task_runs.map((t) => {
      const from = Date.parse(t.started || run.started);
      const to = t.ended ? Date.parse(t.ended) : end;
      const bar = el("span", { class: "bar " + stateClass(t.state) });
      bar.style.left = `${(100 * (from - start)) / span}%`;
      bar.style.width = `${Math.max(0.4, (100 * (to - from)) / span)}%`;
      const name = t.map_index === null || t.map_index === undefined ? t.task_name : `${t.task_name}[${t.map_index}]`;
      const label = `${name || t.task_run_id}: ${t.state}, from ${formatTime(t.started, false)} for ${formatDuration(t.duration_s)}` + (t.tries > 1 ? `, ${t.tries} tries` : "");
      return el(
        "li",
        {},
        el("span", { class: "task", title: t.task_run_id }, name || t.task_run_id, t.tries > 1 ? el("span", { class: "muted" }, ` (${t.tries} tries)`) : null),
        el("span", {}, stateBadge(t.state)),
        el("span", { class: "lane", role: "img", "aria-label": label, title: label }, bar),
        el("span", { class: "dur" }, formatDuration(t.duration_s)),
      );
    });
    timeline.replaceChildren(
      title,
      el(
        "div",
        { class: "timeline-scale", "aria-hidden": "true" },
        el("span", {}),
        el("span", {}),
        el("span", { class: "ends" }, el("span", {}, formatTime(new Date(start).toISOString(), false)), el("span", {}, formatTime(new Date(end).toISOString(), false))),
        el("span", {}),
      ),
      el("ol", { class: "timeline" }, items),
    );
  }

  async function loadRun() {
    try {
      const run = await api(`/api/runs/${encodeURIComponent(flowRunId)}`);
      if (!stopped) drawRun(run);
      return run;
    } catch (error) {
      if (stopped) return null;
      if (error.status === 404) {
        head.replaceChildren(el("h1", {}, "Flow run"), stateBadge(null));
        summary.replaceChildren(el("p", {}, `The store has no entry of flow run ${flowRunId} yet.`));
      } else {
        message.replaceChildren(notice(error.message));
      }
      return null;
    }
  }

  /* the log table */

  let shown = 0;
  let lastCursor = null;
  let nextCursor = null;
  const seen = new Set();

  function entryRows(entry, fresh) {
    const levelName = String(entry.level || "").toLowerCase();
    const hasFields = entry.fields && Object.keys(entry.fields).length > 0;
    const hasDetails = hasFields || entry.exception;
    const detailsId = `details-${entry.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const toggle = hasDetails
      ? el("button", { type: "button", "aria-expanded": "false", "aria-controls": detailsId, "aria-label": `Details of the entry at ${formatTime(entry.timestamp, false)}` }, "+")
      : null;
    const task = entry.task_name ? (entry.map_index === null || entry.map_index === undefined ? entry.task_name : `${entry.task_name}[${entry.map_index}]`) : "";
    const row = el(
      "tr",
      { class: `entry row-${levelName}` + (fresh ? " fresh" : ""), "data-id": entry.id, "data-level": levelName },
      el("td", { class: "toggle" }, toggle),
      timeCell(entry.timestamp, false),
      el("td", {}, el("span", { class: `level level-${levelName}` }, entry.level)),
      el("td", { class: "task" }, task),
      el("td", { class: "logger" }, entry.logger),
      el("td", { class: "msg" }, entry.message, entry.exception ? el("span", { class: "tb-flag" }, "traceback") : null),
    );
    if (!hasDetails) return [row];
    const parts = [];
    if (entry.exception) parts.push(el("h3", {}, "Traceback"), el("pre", { class: "traceback" }, entry.exception));
    if (hasFields) parts.push(el("h3", {}, "Fields"), el("pre", { class: "fields" }, JSON.stringify(entry.fields, null, 2)));
    const details = el("tr", { class: "details", id: detailsId, hidden: true }, el("td", { colspan: "6" }, parts));
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      toggle.textContent = open ? "−" : "+";
      details.hidden = !open;
    });
    return [row, details];
  }

  function appendEntries(entries, fresh) {
    const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    for (const entry of entries) {
      if (seen.has(entry.id)) continue;
      seen.add(entry.id);
      logBody.append(...entryRows(entry, fresh));
      shown += 1;
      lastCursor = entry.cursor;
    }
    emptyLogs.hidden = shown > 0;
    logCount.textContent = `${shown} ${shown === 1 ? "entry" : "entries"} shown`;
    if (fresh && nearBottom) window.scrollTo({ top: document.body.scrollHeight });
  }

  async function loadLogs() {
    const params = logFilters();
    params.set("limit", String(LOGS_PAGE));
    if (nextCursor) params.set("after", nextCursor);
    try {
      const page = await api("/api/logs", params);
      if (stopped) return;
      appendEntries(page.entries, false);
      nextCursor = page.next;
      more.hidden = !nextCursor;
    } catch (error) {
      if (stopped) return;
      message.replaceChildren(notice(error.message));
      emptyLogs.hidden = true;
    }
  }
  more.addEventListener("click", loadLogs);

  /* the live tail: Server-Sent Events read with fetch, so the token goes in a header */

  function startTail() {
    const controller = new AbortController();
    let lastEventId = lastCursor;
    let retryMs = 2000;
    let running = true;
    liveStatus.classList.add("on");
    liveStatus.textContent = "Connecting…";

    async function connect() {
      const params = logFilters();
      if (lastEventId) params.set("after", lastEventId);
      else params.set("limit", "1000");
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch("/api/logs/stream?" + params.toString(), { headers, signal: controller.signal });
      if (response.status === 401) {
        await askForToken(Boolean(token()));
        return;
      }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body.error || response.statusText);
      }
      liveStatus.textContent = "Live: following new entries";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r\n?/g, "\n");
        // The entries of one read go into the table at once: a long backlog
        // (thousands of entries after the last page shown) is a few appends,
        // not a layout of the whole page per entry.
        const arrived = [];
        try {
          readEvents(arrived);
        } finally {
          if (arrived.length) appendEntries(arrived, true);
        }
      }

      function readEvents(arrived) {
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { id: null, type: "message", data: [] };
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const data = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "id") event.id = data;
            else if (field === "event") event.type = data;
            else if (field === "data") event.data.push(data);
            else if (field === "retry" && /^\d+$/.test(data)) retryMs = Number(data);
          }
          if (event.id) lastEventId = event.id;
          if (event.type === "entry" && event.data.length) arrived.push(JSON.parse(event.data.join("\n")));
          else if (event.type === "error" && event.data.length) throw new Error(JSON.parse(event.data.join("\n")).error);
        }
      }
    }

    (async () => {
      while (running) {
        try {
          await connect();
        } catch (error) {
          if (!running) return;
          liveStatus.textContent = `Reconnecting (${error.message})…`;
        }
        if (running) await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    })();

    return () => {
      running = false;
      controller.abort();
      liveStatus.classList.remove("on");
      liveStatus.textContent = "";
    };
  }

  liveButton.addEventListener("click", () => {
    const on = liveButton.getAttribute("aria-pressed") !== "true";
    liveButton.setAttribute("aria-pressed", on ? "true" : "false");
    history.replaceState(null, "", pageUrl({ level, search, task, live: on ? "1" : "" }));
    if (on) tail = startTail();
    else if (tail) {
      tail();
      tail = null;
    }
  });

  /* the summary refreshes while the run is running; the logs load page by page */

  let timer = null;
  (async () => {
    const run = await loadRun();
    await loadLogs();
    if (stopped) return;
    if (live) tail = startTail();
    if (!run || run.state === "Running" || run.state === null) {
      timer = setInterval(loadRun, REFRESH_MS);
    }
  })();

  return () => {
    stopped = true;
    if (timer) clearInterval(timer);
    if (tail) tail();
  };
}

/* --- start ------------------------------------------------------------------------- */

document.addEventListener("click", linkHandler);
window.addEventListener("popstate", route);
document.getElementById("forget-token").hidden = !token();
document.getElementById("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("forget-token").hidden = true;
  route();
});
route();
