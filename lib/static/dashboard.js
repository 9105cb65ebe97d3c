"use strict";
// The training monitor. Every value from the server goes into the page as text (textContent,
// SVG attributes), never as HTML: transcripts are written by a model and may contain anything.
(() => {
  const POLL_MS = 2000;
  const $ = (selector) => document.querySelector(selector);
  const feed = new Map();
  let cursor = null;
  let personas = [];
  let personaSort = { key: "name", descending: false };

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    return node;
  }

  async function get(view, params = {}) {
    const query = new URLSearchParams({ view, ...params });
    const response = await fetch(`?${query}`, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`${view}: HTTP ${response.status}`);
    return response.json();
  }

  async function post(action, body) {
    const response = await fetch(`?${new URLSearchParams({ action })}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || data.error || `HTTP ${response.status}`);
    return data;
  }

  function notice(message) {
    const box = $("#notice");
    box.hidden = !message;
    box.textContent = message || "";
  }

  const money = (value) => (value == null ? "–" : `$${Number(value).toFixed(4)}`);
  const score = (value) => (value == null ? "–" : Number(value).toFixed(1));
  const seconds = (ms) => (ms == null ? "–" : `${(ms / 1000).toFixed(1)}s`);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

  // ---- live feed ----------------------------------------------------------------------------
  async function pollFeed() {
    const params = cursor ? { afterUpdatedAt: cursor.updatedAt, afterId: cursor.id } : {};
    const data = await get("feed", params);
    for (const battle of data.battles) {
      battle.fresh = cursor !== null;
      feed.set(battle.id, battle);
    }
    if (data.cursor) cursor = data.cursor;
    if (data.battles.length || !cursor) renderFeed();
    $("#feed-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    return data.battles.length;
  }

  function renderFeed() {
    const rows = [...feed.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1)).slice(0, 100);
    const body = $("#feed tbody");
    body.replaceChildren(...rows.map((battle) => {
      const status = el("td", {}, el("span", { class: `tag ${battle.status}`, text: battle.status }));
      if (battle.simulated) status.append(el("span", { class: "tag sim", text: "simulated" }));
      const row = el("tr", { class: `clickable${battle.fresh ? " fresh" : ""}`, "data-id": battle.id,
                              onclick: () => openTranscript(battle.id) },
        el("td", { text: battle.persona }), status, el("td", { text: score(battle.score) }),
        el("td", { text: money(battle.cost) }), el("td", { text: seconds(battle.durationMs) }),
        el("td", { class: "muted", text: battle.runId.slice(0, 8) }));
      battle.fresh = false;
      return row;
    }));
  }

  async function openTranscript(id) {
    const battle = await get("battle", { id });
    $("#transcript-title").textContent = `${battle.persona} — ${battle.status}` +
      (battle.score != null ? ` — ${score(battle.score)}` : "");
    $("#transcript-meta").textContent = `${battle.turns} turns · ${money(battle.cost)} · run ${battle.runId}` +
      (battle.simulated ? " · simulated LLM" : "") + (battle.error ? ` · ${battle.error}` : "");
    $("#transcript-body").replaceChildren(...(battle.transcript || []).map((line) =>
      el("p", { class: `line ${line.speaker}` },
        el("b", { text: line.speaker === "closer" ? "Closer" : "Seller" }), document.createTextNode(line.text))));
    const verdict = $("#transcript-verdict");
    verdict.replaceChildren();
    if (battle.feedback) verdict.append(el("p", {}, el("b", { text: "Referee: " }), document.createTextNode(battle.feedback)));
    if (battle.scores) verdict.append(el("p", { class: "muted",
      text: Object.entries(battle.scores).map(([name, value]) => `${name} ${value}`).join(" · ") }));
    $("#transcript").showModal();
  }

  // ---- breakthroughs ------------------------------------------------------------------------
  async function loadBreakthroughs() {
    const data = await get("breakthroughs");
    const badge = $("#pending");
    badge.textContent = String(data.pending);
    badge.classList.toggle("zero", data.pending === 0);
    $("#breakthroughs").replaceChildren(...(data.items.length ? data.items.map(breakthroughCard)
      : [el("p", { class: "muted", text: "No breakthroughs yet." })]));
  }

  function breakthroughCard(item) {
    const title = el("h3", {}, document.createTextNode(`${score(item.score)} · ${item.persona}`),
      el("span", { class: "tag", text: item.status.replace("_", " ") }));
    if (item.simulated) title.append(el("span", { class: "tag sim", text: "simulated" }));
    const card = el("article", { class: "card", "data-id": item.id }, title);
    if (item.definingMoment) card.append(el("blockquote", { text: item.definingMoment }));
    card.append(el("p", {}, el("b", { text: "Tactic: " }),
      document.createTextNode(item.tacticalSnippet || "(the scout has not extracted it yet)")));
    if (item.status === "pending_review" || item.status === "reviewed") {
      const act = (action, label, primary) => el("button", {
        type: "button", class: primary ? "primary" : "", text: label,
        onclick: async (event) => {
          event.target.disabled = true;
          try { await post(action, { battleId: item.id }); notice(""); } catch (error) { notice(error.message); }
          await refreshSlow();
        },
      });
      const actions = el("div", { class: "actions" });
      if (item.tacticalSnippet) actions.append(act("promote", "Promote", true));
      if (item.status === "pending_review") actions.append(act("review", "Mark reviewed"));
      actions.append(act("reject", "Reject"));
      card.append(actions);
    }
    card.append(el("a", { href: "#", text: "Transcript", onclick: (event) => {
      event.preventDefault(); openTranscript(item.id);
    } }));
    return card;
  }

  // ---- personas -----------------------------------------------------------------------------
  async function loadPersonas() {
    personas = await get("personas");
    renderPersonas();
  }

  function renderPersonas() {
    const { key, descending } = personaSort;
    const sorted = [...personas].sort((a, b) => {
      const x = a[key] ?? -Infinity, y = b[key] ?? -Infinity;
      return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
    });
    $("#personas tbody").replaceChildren(...sorted.map((p) => el("tr", { "data-name": p.name },
      el("td", { text: p.name }), el("td", { text: String(p.battles) }), el("td", { text: score(p.averageScore) }),
      el("td", { text: p.agreedRate == null ? "–" : `${Math.round(p.agreedRate * 100)}%` }),
      el("td", { class: "muted", text: when(p.lastBattledAt) }), el("td", {}, sparkline(p.recentScores)))));
  }

  function sparkline(values, width = 96, height = 22) {
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                               "aria-label": `recent scores ${values.join(", ")}` });
    if (values.length < 2) return chart;
    const points = values.map((value, i) =>
      `${(i / (values.length - 1)) * (width - 4) + 2},${height - 2 - (Number(value) / 100) * (height - 4)}`);
    chart.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#2456d6", "stroke-width": 1.5 }));
    return chart;
  }

  for (const header of document.querySelectorAll("#personas th[data-sort]")) {
    header.addEventListener("click", () => {
      const key = header.dataset.sort;
      personaSort = { key, descending: personaSort.key === key ? !personaSort.descending : key !== "name" };
      renderPersonas();
    });
  }

  // ---- run history chart ----------------------------------------------------------------------
  async function loadRuns() {
    const runs = await get("runs");
    const width = 560, height = 180, pad = 24;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
                               "aria-label": `${runs.length} runs` });
    chart.append(svg("line", { x1: pad, y1: height - pad, x2: width - 4, y2: height - pad, stroke: "#c9ced8" }));
    const step = runs.length ? (width - pad - 8) / runs.length : 0;
    const line = [];
    runs.forEach((run, i) => {
      const x = pad + i * step + step * 0.15;
      const share = Math.min(1, Number(run.totalCost) / Number(run.costCap || 1));
      const barHeight = share * (height - 2 * pad);
      const bar = svg("rect", { x, y: height - pad - barHeight, width: Math.max(1, step * 0.7), height: barHeight,
                                fill: run.killSwitchTriggered ? "#b3261e" : "#9db5f0" });
      const tip = svg("title");
      tip.textContent = `${run.status}${run.simulated ? " (simulated)" : ""}: ${run.battlesStarted} battles, ` +
        `$${run.totalCost} of $${run.costCap}, average ${score(run.averageScore)}`;
      bar.append(tip);
      chart.append(bar);
      if (run.averageScore != null) {
        line.push(`${x + step * 0.35},${height - pad - (Number(run.averageScore) / 100) * (height - 2 * pad)}`);
      }
    });
    if (line.length > 1) chart.append(svg("polyline", { points: line.join(" "), fill: "none", stroke: "#1d7a46",
                                                         "stroke-width": 2 }));
    const label = svg("text", { x: 2, y: pad, "font-size": 10, fill: "#677285" });
    label.textContent = "100";
    chart.append(label);
    $("#runs-chart").replaceChildren(runs.length ? chart : el("p", { class: "muted", text: "No runs yet." }));
  }

  // ---- kill-switch ----------------------------------------------------------------------------
  async function loadControl() {
    const control = await get("control");
    const state = $("#control-state");
    state.textContent = control.paused ? "Paused" : "Active";
    state.className = `pill ${control.paused ? "paused" : "active"}`;
    $("#control-reason").textContent = control.paused ? `${control.reason} (since ${when(control.updatedAt)})` : "";
    $("#pause").disabled = control.paused;
    $("#resume").disabled = !control.paused;
  }

  $("#pause").addEventListener("click", async () => {
    const reason = window.prompt("Why pause training?", "Paused from the dashboard");
    if (!reason) return;
    try { await post("pause", { reason }); notice(""); } catch (error) { notice(error.message); }
    await loadControl();
  });
  $("#resume").addEventListener("click", async () => {
    try { await post("resume"); notice(""); } catch (error) { notice(error.message); }
    await loadControl();
  });

  // ---- refresh loop ---------------------------------------------------------------------------
  async function refreshSlow() {
    await Promise.all([loadBreakthroughs(), loadPersonas(), loadRuns(), loadControl()]);
  }

  async function tick() {
    try {
      const changed = await pollFeed();
      if (changed) await refreshSlow();
      notice("");
    } catch (error) {
      notice(`Could not refresh: ${error.message}`);
    }
    setTimeout(tick, POLL_MS);
  }

  refreshSlow().catch((error) => notice(error.message)).finally(tick);
})();
