// Shared by every panel. Every value from the server goes into the page as text (textContent,
// SVG attributes), never as HTML: transcripts are written by a model and may contain anything.
const POLL_MS = 2000;
const MAX_BACKOFF_MS = 60000;
const REQUEST_TIMEOUT_MS = 10000;
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child != null && child !== false) node.append(child);
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// ---- requests ---------------------------------------------------------------------------------

class RequestError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status; // 0 when the server could not be reached
    this.code = code;     // the body's "error"
  }
}

// The server's own words: {"error": "Database error", "message": "schema not applied: run …"}.
async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", cache: "no-store", ...options,
                                  signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    throw new RequestError(error && error.name === "TimeoutError"
      ? `the server did not answer within ${REQUEST_TIMEOUT_MS / 1000} s` : "the server could not be reached", 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const body = data && typeof data === "object" ? data : {};
    const message = body.message ? (body.error ? `${body.error}: ${body.message}` : body.message)
      : body.error || `HTTP ${response.status} (the answer was not the dashboard's JSON)`;
    throw new RequestError(message, response.status, body.error);
  }
  return data;
}

function get(view, params = {}) {
  return request(`?${new URLSearchParams({ view, ...params })}`);
}

function post(action, body) {
  return request(`?${new URLSearchParams({ action })}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
}

// ---- alerts: an action's error stays until dismissed ---------------------------------------------

function showAlert(message, kind = "error") {
  const box = $("#alerts");
  const existing = $$(".alert", box).find((node) => node.dataset.message === message);
  if (existing) { existing.remove(); }
  const alert = el("div", { class: `alert ${kind}`, role: kind === "error" ? "alert" : "status",
                            "data-message": message },
    el("p", { text: message }),
    el("button", { type: "button", class: "dismiss", text: "Dismiss",
                   onclick: () => alert.remove() }));
  box.prepend(alert);
  return alert;
}

// ---- the connection: every poll says whether the server answers ----------------------------------

const connection = {
  online: true,
  lostAt: null,
  lastUpdate: null,
  failures: 0,
  retryAt: null,
  lastError: "",
  listeners: [],
};

function onReconnect(listener) { connection.listeners.push(listener); }

function markOnline() {
  const wasLost = !connection.online;
  connection.online = true;
  connection.failures = 0;
  connection.lostAt = null;
  connection.lastUpdate = new Date();
  document.body.classList.remove("offline");
  $("#connection").hidden = true;
  applyServerState();
  if (wasLost) for (const listener of connection.listeners) listener();
}

// Returns how long to wait before the next try: 2 s, 4 s, 8 s … up to a minute.
function markFailed(error) {
  connection.failures += 1;
  connection.lastError = error.message;
  connection.lastStatus = error.status || 0;
  if (connection.online) {
    connection.online = false;
    connection.lostAt = new Date();
  }
  document.body.classList.add("offline");
  const delay = Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** (connection.failures - 1));
  connection.retryAt = Date.now() + delay;
  applyServerState();
  renderConnection();
  return delay;
}

function renderConnection() {
  if (connection.online) return;
  const wait = Math.max(0, Math.ceil((connection.retryAt - Date.now()) / 1000));
  const since = connection.lostAt.toLocaleTimeString();
  const unreachable = connection.lastStatus === 0;
  const last = connection.lastUpdate ? `Last update ${connection.lastUpdate.toLocaleTimeString()}.` : "No data yet.";
  $("#connection-text").textContent = `${unreachable ? "Disconnected" : "Not updating"} since ${since}: ` +
    `${connection.lastError.replace(/\.$/, "")}. ${last} Retrying in ${wait} s.`;
  $("#connection").hidden = false;
  const state = $("#control-state");
  state.textContent = unreachable ? "Disconnected" : "Server error";
  state.className = "pill offline";
  $("#control-reason").textContent = `since ${since}; the state shown may be out of date`;
}

// Buttons that change something need the server: disabled while it does not answer, and while
// their own state forbids them (data-blocked, set by the panel that owns them).
function applyServerState(root = document) {
  for (const button of $$("[data-needs-server]", root)) {
    button.disabled = !connection.online || button.dataset.blocked === "true" || button.dataset.busy === "true";
  }
}

function actionButton(label, handler, { primary = false, danger = false, title = null, shortcut = null } = {}) {
  const button = el("button", { type: "button", class: primary ? "primary" : danger ? "danger" : null,
                                "data-needs-server": true, title, "aria-keyshortcuts": shortcut, text: label });
  button.addEventListener("click", async () => {
    button.dataset.busy = "true";
    applyServerState(button.parentNode || document);
    try { await handler(button); } finally { delete button.dataset.busy; applyServerState(); }
  });
  button.disabled = !connection.online;
  return button;
}

// ---- formatting ---------------------------------------------------------------------------------

let serverOffsetMs = 0; // server clock minus ours, from the health strip's `now`
const serverNow = () => Date.now() + serverOffsetMs;
const money = (value, digits = 4) => (value == null ? "–" : `$${Number(value).toFixed(digits)}`);
const dollars = (value) => {
  if (value == null) return "–";
  const number = Number(value);
  return `$${number.toFixed(number !== 0 && Math.abs(number) < 1 ? 3 : 2)}`;
};
const score = (value) => (value == null ? "–" : Number(value).toFixed(1));
const percent = (value) => (value == null ? "–" : `${Math.round(Number(value) * 100)}%`);
const seconds = (ms) => (ms == null ? "–" : `${(ms / 1000).toFixed(1)} s`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

function ago(iso) {
  if (!iso) return "never";
  const diff = (serverNow() - Date.parse(iso)) / 1000;
  const future = diff < 0;
  const span = Math.abs(diff);
  const text = span < 45 ? "moments" : span < 90 * 60 ? `${Math.round(span / 60)} min`
    : span < 36 * 3600 ? `${Math.round(span / 3600)} h` : `${Math.round(span / 86400)} days`;
  if (text === "moments") return future ? "in a moment" : "just now";
  return future ? `in ${text}` : `${text} ago`;
}

function emptyState(node, ...parts) {
  node.replaceChildren(el("p", { class: "empty" }, ...parts.map((part) =>
    typeof part === "string" ? document.createTextNode(part) : part)));
}

const code = (text) => el("code", { text });

function skeletonLines(count, short = false) {
  return Array.from({ length: count }, (_, i) => el("span", { class: `skeleton${short || i % 2 ? " short" : ""}` }));
}

function panelError(node, error) {
  node.removeAttribute("aria-busy");
  node.replaceChildren(el("p", { class: "empty", text: `Could not load: ${error.message}` }));
}

// Re-rendering replaces nodes: give the focus back to the element with the same data-focus-key.
function keepingFocus(container, render) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : null;
  render();
  if (key) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}
