// wrangle dashboard: plain JavaScript over the HTTP API (/api/...), no build step and no
// outside fetch. Views are chosen by the URL hash; the server's event stream
// (/api/events, fed by the store's notifications) makes the open view refresh when
// something changes, and a slow timer covers what sends no notification (heartbeats).
"use strict";

const view = document.getElementById("view");
const live = document.getElementById("live");
let refreshTimer = null;
let pending = null;
let current = null; // {name, render, args}

// ---- helpers ------------------------------------------------------------------------

/** Escapes text for HTML. Every value from the API goes through it. */
function h(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

class Unauthorized extends Error {}

/** Calls the API; resolves to the JSON answer (null when empty), rejects with its detail. */
async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: {} };
  if (options.body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) throw new Unauthorized();
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok && response.status !== 202) {
    throw new Error(body && body.detail ? body.detail : `${response.status} ${response.statusText}`);
  }
  return body;
}

function toast(message, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.className = ""), 4000);
}

/** Runs an action from a button: disables it meanwhile, reports the outcome. */
async function act(button, work, done) {
  button.disabled = true;
  try {
    const result = await work();
    toast(done(result));
  } catch (err) {
    toast(err.message, true);
  } finally {
    button.disabled = false;
    refresh();
  }
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function duration(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.round(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.round((seconds % 3600) / 60)}m`;
}

function bytes(n) {
  if (!n) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const num = (n) => (n ?? 0).toLocaleString("en-US");
const state = (s) => `<span class="state ${h(s)}">${h(s)}</span>`;
const empty = (text) => `<div class="empty">${h(text)}</div>`;

/** A line chart of `series` ({name, color, values}) over `times`, as SVG. */
function chart(title, times, series, unit) {
  const w = 600, hgt = 160, pad = 30;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => pad + (times.length < 2 ? 0 : (i / (times.length - 1)) * (w - pad - 8));
  const y = (v) => hgt - 18 - (v / max) * (hgt - 30);
  const lines = series.map((s) =>
    `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${
      s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`).join("");
  const label = (v) => (unit === "s" ? duration(v) : num(Math.round(v)));
  const first = times.length ? new Date(times[0]).toLocaleTimeString() : "";
  const last = times.length ? new Date(times[times.length - 1]).toLocaleTimeString() : "";
  return `<div class="chart"><h3>${h(title)}</h3>
    <svg viewBox="0 0 ${w} ${hgt}" preserveAspectRatio="none" role="img" aria-label="${h(title)}">
      <line x1="${pad}" y1="${y(0)}" x2="${w}" y2="${y(0)}" stroke="#e3e6eb"/>
      <line x1="${pad}" y1="${y(max)}" x2="${w}" y2="${y(max)}" stroke="#f0f2f5"/>
      <text x="0" y="${y(max) + 4}" font-size="10" fill="#667085">${h(label(max))}</text>
      <text x="0" y="${y(0) + 4}" font-size="10" fill="#667085">0</text>
      <text x="${pad}" y="${hgt - 2}" font-size="10" fill="#667085">${h(first)}</text>
      <text x="${w}" y="${hgt - 2}" font-size="10" fill="#667085" text-anchor="end">${h(last)}</text>
      ${lines}
    </svg>
    <div class="legend">${series.map((s) => `<span><i style="background:${s.color}"></i>${h(s.name)}</span>`).join("")}</div>
  </div>`;
}

// ---- views --------------------------------------------------------------------------

async function overview() {
  const [queues, workers, jobs, history] = await Promise.all([
    api("/api/queues"), api("/api/workers"), api("/api/jobs"), api("/api/history"),
  ]);
  const total = (st) => queues.reduce((n, q) => n + (q.counts[st] || 0), 0);
  const waiting = total("available") + total("scheduled") + total("retryable");
  const done = queues.reduce((n, q) => n + q.completed_last_minute, 0);
  const failed = queues.reduce((n, q) => n + q.failed_last_minute, 0);
  const running = jobs.filter((j) => j.status === "running").length;
  const times = history.map((s) => s.at);
  return `<h1>Overview</h1>
    <div class="cards">
      <div class="card"><div class="n">${num(waiting)}</div><div class="l">Waiting</div></div>
      <div class="card"><div class="n">${num(total("running"))}</div><div class="l">Running</div></div>
      <div class="card"><div class="n">${num(done)}</div><div class="l">Completed / min</div></div>
      <div class="card"><div class="n">${num(failed)}</div><div class="l">Failed / min</div></div>
      <div class="card"><div class="n"><a href="#/dead">${num(total("dead"))}</a></div><div class="l">Dead</div></div>
      <div class="card"><div class="n"><a href="#/workers">${num(workers.length)}</a></div><div class="l">Workers</div></div>
      <div class="card"><div class="n"><a href="#/jobs">${num(running)}</a></div><div class="l">Jobs running</div></div>
    </div>
    <div class="charts">
      ${chart("Throughput (attempts per minute)", times, [
        { name: "completed", color: "#1f9d55", values: history.map((s) => s.completed) },
        { name: "failed", color: "#d64545", values: history.map((s) => s.failed) },
      ])}
      ${chart("Latency (oldest due task's wait)", times, [
        { name: "oldest wait", color: "#2f6fed", values: history.map((s) => s.oldest_wait_seconds) },
      ], "s")}
      ${chart("Backlog (tasks waiting and running)", times, [
        { name: "waiting", color: "#c98a00", values: history.map((s) => s.waiting) },
        { name: "running", color: "#2f6fed", values: history.map((s) => s.running) },
      ])}
    </div>
    <p class="muted">Sampled by this server since it started (every 10 s unless
      <code>--history-every</code> says otherwise; the last 360 samples).</p>
    <h2>Queues</h2>${queueTable(queues)}`;
}

function queueTable(queues) {
  if (!queues.length) return empty("No queue has tasks yet.");
  const states = ["available", "scheduled", "running", "retryable", "dead", "completed"];
  return `<table><thead><tr><th>Queue</th>${states.map((s) => `<th class="num">${s}</th>`).join("")}
    <th class="num">Oldest wait</th><th class="num">Done/min</th><th class="num">Failed/min</th><th></th></tr></thead>
    <tbody>${queues.map((q) => `<tr data-queue="${h(q.queue)}">
      <td><a href="#/tasks?queue=${encodeURIComponent(q.queue)}">${h(q.queue)}</a> ${q.paused ? state("paused") : ""}</td>
      ${states.map((s) => `<td class="num">${num(q.counts[s] || 0)}</td>`).join("")}
      <td class="num">${q.oldest_due_at ? duration((Date.now() - Date.parse(q.oldest_due_at)) / 1000) : ""}</td>
      <td class="num">${num(q.completed_last_minute)}</td><td class="num">${num(q.failed_last_minute)}</td>
      <td class="actions"><button data-action="${q.paused ? "resume" : "pause"}" data-queue="${h(q.queue)}">${q.paused ? "Resume" : "Pause"}</button></td>
    </tr>`).join("")}</tbody></table>`;
}

async function queues() {
  return `<h1>Queues</h1>${queueTable(await api("/api/queues"))}`;
}

function taskRows(tasks, actions) {
  return `<table><thead><tr><th class="num">Id</th><th>Kind</th><th>Queue</th><th>State</th>
    <th class="num">Attempt</th><th>Created</th><th>Finished</th><th>Error</th>${actions ? "<th></th>" : ""}</tr></thead>
    <tbody>${tasks.map((t) => `<tr data-task="${t.id}">
      <td class="num"><a href="#/task/${t.id}">${t.id}</a></td><td>${h(t.kind)}</td><td>${h(t.queue)}</td>
      <td>${state(t.state)}</td><td class="num">${t.attempt}/${t.max_attempts}</td>
      <td>${h(ago(t.created_at))}</td><td>${h(ago(t.finished_at))}</td>
      <td class="muted">${h((t.error || "").slice(0, 80))}</td>
      ${actions ? `<td class="actions">${actions(t)}</td>` : ""}</tr>`).join("")}</tbody></table>`;
}

async function tasks(params) {
  const query = new URLSearchParams();
  for (const key of ["state", "queue", "job", "before"]) if (params.get(key)) query.set(key, params.get(key));
  query.set("limit", "50");
  const page = await api(`/api/tasks?${query}`);
  const states = ["", "scheduled", "available", "running", "retryable", "completed", "dead", "cancelled"];
  const next = new URLSearchParams(params);
  if (page.next) next.set("before", page.next);
  return `<h1>Tasks</h1>
    <form class="filters" id="task-filters">
      <label>State <select name="state">${states.map((s) =>
        `<option value="${s}" ${params.get("state") === s ? "selected" : ""}>${s || "any"}</option>`).join("")}</select></label>
      <label>Queue <input name="queue" value="${h(params.get("queue") || "")}" size="12"></label>
      <label>Job <input name="job" value="${h(params.get("job") || "")}" size="12"></label>
      <button type="submit">Filter</button>
    </form>
    ${page.tasks.length ? taskRows(page.tasks) : empty("No task matches.")}
    <p>${params.get("before") ? `<a href="#/tasks?${h(withoutBefore(params))}">First page</a> · ` : ""}
       ${page.next ? `<a href="#/tasks?${h(next)}">Next page</a>` : ""}</p>`;
}

function withoutBefore(params) {
  const copy = new URLSearchParams(params);
  copy.delete("before");
  return copy.toString();
}

async function dead(params) {
  const query = new URLSearchParams({ state: "dead", limit: "50" });
  if (params.get("before")) query.set("before", params.get("before"));
  const page = await api(`/api/tasks?${query}`);
  const next = new URLSearchParams({ before: page.next || "" });
  return `<h1>Dead tasks</h1>
    <p class="actions"><button class="primary" data-action="retry-dead">Retry all</button>
      <button class="danger" data-action="discard-dead">Discard all</button></p>
    ${page.tasks.length ? taskRows(page.tasks, (t) =>
      `<button data-action="retry" data-task="${t.id}">Retry</button>`) : empty("No dead task.")}
    <p>${page.next ? `<a href="#/dead?${h(next)}">Next page</a>` : ""}</p>`;
}

async function task(id) {
  const [t, log] = await Promise.all([api(`/api/tasks/${id}`), api(`/api/tasks/${id}/log`)]);
  const json = (v) => `<pre>${h(JSON.stringify(v, null, 2))}</pre>`;
  const canRetry = ["scheduled", "retryable", "dead", "cancelled"].includes(t.state);
  const canCancel = ["scheduled", "available", "retryable", "running"].includes(t.state);
  return `<h1>Task ${t.id} ${state(t.state)}</h1>
    <p class="actions">
      ${canRetry ? `<button class="primary" data-action="retry" data-task="${t.id}">Retry</button>` : ""}
      ${canCancel ? `<button class="danger" data-action="cancel" data-task="${t.id}">Cancel</button>` : ""}</p>
    <dl class="fields">
      <dt>Kind</dt><dd>${h(t.kind)}</dd><dt>Queue</dt><dd>${h(t.queue)}</dd>
      <dt>Priority</dt><dd>${t.priority}</dd><dt>Attempt</dt><dd>${t.attempt} of ${t.max_attempts}</dd>
      <dt>Job</dt><dd>${t.job ? `<a href="#/job/${encodeURIComponent(t.job)}">${h(t.job)}</a>` : ""}</dd>
      <dt>Worker</dt><dd>${h(t.worker || "")}</dd><dt>Created</dt><dd>${h(t.created_at)}</dd>
      <dt>Run at</dt><dd>${h(t.run_at)}</dd><dt>Started</dt><dd>${h(t.started_at || "")}</dd>
      <dt>Finished</dt><dd>${h(t.finished_at || "")}</dd><dt>Unique key</dt><dd>${h(t.unique_key || "")}</dd>
    </dl>
    <h2>Payload</h2>${json(t.payload)}
    ${t.result !== null && t.result !== undefined ? `<h2>Result</h2>${json(t.result)}` : ""}
    ${t.error ? `<h2>Error</h2><pre>${h(t.error)}</pre>` : ""}
    <h2>Attempts</h2>${t.attempts.length ? `<table><thead><tr><th class="num">#</th><th>Worker</th><th>Started</th>
      <th>Ended</th><th>Outcome</th><th>Error</th></tr></thead><tbody>${t.attempts.map((a) => `<tr>
      <td class="num">${a.attempt}</td><td>${h(a.worker || "")}</td><td>${h(a.started_at || "")}</td>
      <td>${h(a.finished_at)}</td><td>${state(a.outcome)}</td><td>${h(a.error || "")}</td></tr>`).join("")}</tbody></table>`
      : empty("No attempt has ended yet.")}
    <h2>Output</h2>${log.length ? `<pre>${log.map((l) => h(`${l.source}: ${l.text}`)).join("\n")}</pre>`
      : empty("No output kept.")}`;
}

function progressBar(p) {
  const total = p.total.ids || 1;
  const pct = (n) => (100 * n) / total;
  const done = pct(p.done.ids), failed = pct(p.failed.ids), running = pct(p.running.ids);
  return `<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100"
      aria-valuenow="${(done + failed).toFixed(1)}" title="${(done + failed).toFixed(1)}% finished">
    <span class="done" style="width:${done}%"></span>
    <span class="failed" style="left:${done}%;width:${failed}%"></span>
    <span class="running" style="left:${done + failed}%;width:${running}%"></span></div>`;
}

function jobActions(p) {
  const name = h(p.job.name);
  return `${p.status === "running" ? `<button data-action="cancel-job" data-job="${name}">Cancel</button>` : ""}
    ${p.failed.blocks ? `<button data-action="retry-job" data-job="${name}">Retry dead</button>` : ""}
    <button class="danger" data-action="delete-job" data-job="${name}">Delete</button>`;
}

async function jobs() {
  const all = await api("/api/jobs");
  if (!all.length) return `<h1>Jobs</h1>${empty("No job. Create one with wrangle job create.")}`;
  return `<h1>Jobs</h1><table><thead><tr><th>Job</th><th>Status</th><th>Progress</th>
    <th class="num">Done</th><th class="num">Failed</th><th class="num">Ids/s</th><th class="num">ETA</th><th></th></tr></thead>
    <tbody>${all.map((p) => `<tr data-job="${h(p.job.name)}">
      <td><a href="#/job/${encodeURIComponent(p.job.name)}">${h(p.job.name)}</a></td><td>${state(p.status)}</td>
      <td>${progressBar(p)}</td><td class="num">${num(p.done.ids)} / ${num(p.total.ids)}</td>
      <td class="num">${num(p.failed.ids)}</td><td class="num">${p.rate.toFixed(1)}</td>
      <td class="num">${p.eta != null ? duration(p.eta / 1000) : ""}</td>
      <td class="actions">${jobActions(p)}</td></tr>`).join("")}</tbody></table>`;
}

async function job(name) {
  const p = await api(`/api/jobs/${encodeURIComponent(name)}`);
  const row = (label, c) => `<tr><td>${label}</td><td class="num">${num(c.blocks)}</td><td class="num">${num(c.ids)}</td></tr>`;
  return `<h1>Job ${h(p.job.name)} ${state(p.status)}</h1>
    <p data-job="${h(p.job.name)}">${progressBar(p)}</p>
    <p>${p.rate.toFixed(1)} ids/s over the last minute${p.eta != null ? `, about ${duration(p.eta / 1000)} left` : ""}.
      <span class="actions">${jobActions(p)}</span></p>
    <table><thead><tr><th></th><th class="num">Blocks</th><th class="num">Ids</th></tr></thead><tbody>
      ${row("done", p.done)}${row("failed", p.failed)}${row("running", p.running)}${row("waiting", p.waiting)}
      ${row("cancelled", p.cancelled)}${row("total", p.total)}</tbody></table>
    <h2>Workers</h2>${p.workers.length ? `<table><thead><tr><th>Worker</th><th class="num">Blocks done</th>
      <th class="num">Ids done</th><th class="num">Running</th></tr></thead><tbody>${p.workers.map((w) => `<tr>
      <td>${h(w.worker)}</td><td class="num">${num(w.done.blocks)}</td><td class="num">${num(w.done.ids)}</td>
      <td class="num">${w.running}</td></tr>`).join("")}</tbody></table>` : empty("No worker has taken a block yet.")}
    <p><a href="#/tasks?job=${encodeURIComponent(p.job.name)}">Its tasks</a></p>`;
}

async function workers() {
  const all = await api("/api/workers");
  if (!all.length) return `<h1>Workers</h1>${empty("No worker is registered. Start one with wrangle worker.")}`;
  return `<h1>Workers</h1>${all.map((w) => {
    const i = w.info;
    const lost = i.lease_ms && Date.now() - Date.parse(w.last_seen) > i.lease_ms;
    const name = h(i.name);
    return `<section class="worker" data-worker="${name}">
      <header><h3>${name}</h3> ${lost ? state("lost") : ""}
        <span class="muted">${h(i.host)} · pid ${i.pid} · started ${h(ago(i.started_at))} · seen ${h(ago(w.last_seen))}
          · ${bytes(i.rss_bytes)} · v${h(i.version)}</span>
        <span class="actions"><button data-action="reload" data-worker="${name}">Reload</button>
          <button class="danger" data-action="stop" data-worker="${name}">Stop</button></span></header>
      <table><thead><tr><th>Pool group</th><th class="num">Runners</th><th class="num">Running</th><th></th></tr></thead>
        <tbody>${i.pool.map((g) => `<tr data-group="${h(g.name)}"><td>${h(g.name)}</td>
          <td class="num runners">${g.runners}</td><td class="num">${g.tasks.length}</td>
          <td class="actions"><button data-action="scale" data-worker="${name}" data-group="${h(g.name)}"
              data-runners="${g.runners + 1}">+1</button>
            <button data-action="scale" data-worker="${name}" data-group="${h(g.name)}"
              data-runners="${Math.max(0, g.runners - 1)}" ${g.runners ? "" : "disabled"}>−1</button></td></tr>`).join("")}
        </tbody></table>
      ${i.processes.length ? `<table><thead><tr><th>Runner process</th><th class="num">Runner</th><th class="num">Pid</th>
        <th class="num">Tasks</th><th class="num">Memory</th><th class="num">Restarts</th></tr></thead><tbody>
        ${i.processes.map((p) => `<tr><td>${h(p.kind)}</td><td class="num">${p.runner}</td><td class="num">${p.pid}</td>
          <td class="num">${p.tasks}</td><td class="num">${bytes(p.rss_bytes)}</td><td class="num">${p.restarts}</td></tr>`).join("")}
        </tbody></table>` : ""}
    </section>`;
  }).join("")}`;
}

// ---- actions ------------------------------------------------------------------------

const actions = {
  pause: (b) => act(b, () => api(`/api/queues/${encodeURIComponent(b.dataset.queue)}/pause`, { method: "POST" }),
    () => `Queue ${b.dataset.queue} paused`),
  resume: (b) => act(b, () => api(`/api/queues/${encodeURIComponent(b.dataset.queue)}/resume`, { method: "POST" }),
    () => `Queue ${b.dataset.queue} resumed`),
  retry: (b) => act(b, () => api(`/api/tasks/${b.dataset.task}/retry`, { method: "POST" }),
    () => `Task ${b.dataset.task} will run again`),
  cancel: (b) => act(b, () => api(`/api/tasks/${b.dataset.task}/cancel`, { method: "POST" }),
    () => `Task ${b.dataset.task} cancelled`),
  "retry-dead": (b) => act(b, () => api("/api/dead/retry", { method: "POST" }), (r) => `${r.tasks} tasks will run again`),
  "discard-dead": (b) => confirm("Delete every dead task?") &&
    act(b, () => api("/api/dead/discard", { method: "POST" }), (r) => `${r.tasks} dead tasks deleted`),
  "cancel-job": (b) => act(b, () => api(`/api/jobs/${encodeURIComponent(b.dataset.job)}/cancel`, { method: "POST" }),
    (r) => `Job cancelled (${r.tasks} tasks)`),
  "retry-job": (b) => act(b, () => api(`/api/jobs/${encodeURIComponent(b.dataset.job)}/retry`, { method: "POST" }),
    (r) => `${r.tasks} dead blocks will run again`),
  "delete-job": (b) => confirm(`Delete job ${b.dataset.job} and its tasks?`) &&
    act(b, () => api(`/api/jobs/${encodeURIComponent(b.dataset.job)}`, { method: "DELETE" }),
      (r) => `Job deleted (${r.tasks} tasks)`),
  scale: (b) => act(b, () => command(b.dataset.worker, {
    command: "scale", queue: b.dataset.group, runners: Number(b.dataset.runners),
  }), (r) => r.message),
  reload: (b) => act(b, () => command(b.dataset.worker, { command: "reload" }), (r) => r.message),
  stop: (b) => confirm(`Stop worker ${b.dataset.worker}? Its running tasks finish first.`) &&
    act(b, () => command(b.dataset.worker, { command: "stop" }), (r) => r.message),
};

/** Sends a control command; resolves to the worker's acknowledgement. */
async function command(worker, body) {
  const ack = await api(`/api/workers/${encodeURIComponent(worker)}/commands`, { method: "POST", body });
  if (!ack.ok) throw new Error(ack.message);
  return ack;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button && actions[button.dataset.action]) {
    event.preventDefault();
    actions[button.dataset.action](button);
  }
});

document.addEventListener("submit", (event) => {
  if (event.target.id !== "task-filters") return;
  event.preventDefault();
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(event.target)) if (value) params.set(key, value);
  location.hash = `#/tasks?${params}`;
});

// ---- routing and refresh ------------------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean);
  const name = parts[0] || "overview";
  const arg = parts[1] ? decodeURIComponent(parts.slice(1).join("/")) : null;
  const views = {
    overview: () => overview(), queues: () => queues(), tasks: () => tasks(params), dead: () => dead(params),
    task: () => task(arg), jobs: () => jobs(), job: () => job(arg), workers: () => workers(),
  };
  current = { name, render: views[name] || views.overview };
  for (const link of document.querySelectorAll("nav a")) {
    const active = link.dataset.view === name || (name === "task" && link.dataset.view === "tasks") ||
      (name === "job" && link.dataset.view === "jobs");
    link.classList.toggle("active", active);
  }
  refresh();
}

/** Renders the current view again (at most one render at a time; one more if asked meanwhile). */
async function refresh() {
  if (pending) { pending.again = true; return; }
  pending = { again: false };
  try {
    const html = await current.render();
    // Keep what the user is typing in a filter.
    if (!view.contains(document.activeElement) || document.activeElement.tagName === "BUTTON") {
      view.innerHTML = html;
    }
  } catch (err) {
    if (err instanceof Unauthorized) {
      view.innerHTML = document.getElementById("login").innerHTML;
    } else {
      view.innerHTML = empty(err.message);
    }
  }
  const again = pending.again;
  pending = null;
  if (again) refresh();
}

function soon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 200);
}

function listen() {
  const events = new EventSource("/api/events");
  events.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  events.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  for (const topic of ["tasks", "outcomes", "commands", "workers"]) events.addEventListener(topic, soon);
}

window.addEventListener("hashchange", route);
setInterval(() => { if (!document.hidden) refresh(); }, 3000);
route();
listen();
