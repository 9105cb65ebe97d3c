// The health strip: the switch and the tiles, refreshed by every poll (view=health).
const Health = (() => {
  let data = null;

  function tile(id, value, sub, { warn = false, valueClass = "", extra = null } = {}) {
    const node = $(`#${id}`);
    node.classList.toggle("warn", warn);
    const valueNode = $(".value", node);
    valueNode.className = `value ${valueClass}`.trim();
    valueNode.textContent = value;
    $(".sub", node).replaceChildren(...(Array.isArray(sub) ? sub : [sub]).filter(Boolean).map((part) =>
      typeof part === "string" ? document.createTextNode(part) : part));
    for (const old of $$(".extra", node)) old.remove();
    if (extra) { extra.classList.add("extra"); node.append(extra); }
  }

  function skeleton() {
    for (const node of $$(".tile")) {
      $(".value", node).replaceChildren(el("span", { class: "skeleton short" }));
      $(".sub", node).replaceChildren(el("span", { class: "skeleton" }), el("span", { class: "visually-hidden", text: "Loading" }));
    }
  }

  function meter(share) {
    const clamped = Math.max(0, Math.min(1, share));
    return el("div", { class: `meter${clamped >= 0.8 ? " high" : ""}`, role: "img",
                       "aria-label": `${Math.round(share * 100)}% of the budget` },
      el("span", { style: null }));
  }

  function setMeter(node, share) {
    // Width set through the CSSOM: the CSP allows no inline style attributes.
    node.firstChild.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;
    return node;
  }

  function renderState() {
    const state = $("#control-state");
    const running = data.running || [];
    $("#pause").dataset.blocked = String(Boolean(data.paused));
    $("#resume").dataset.blocked = String(!data.paused);
    applyServerState($("#control"));
    if (!connection.online) {  // what the last answer said may be out of date: the pill says so instead
      renderConnection();
      return;
    }
    if (data.paused) {
      state.textContent = "Paused";
      state.className = "pill paused";
      $("#control-reason").textContent = `${data.reason || "no reason given"} (since ${when(data.since)})`;
    } else if (running.length) {
      const run = running[running.length - 1];
      state.textContent = "Running";
      state.className = "pill running";
      $("#control-reason").textContent =
        `${running.length > 1 ? `${running.length} runs, latest ` : ""}started ${ago(run.startedAt)}: ` +
        `${run.battles} of ${run.batchSize} battles, ${dollars(run.cost)} so far`;
    } else {
      state.textContent = "Active";
      state.className = "pill active";
      $("#control-reason").textContent = "";
    }
  }

  function lastRunTile() {
    const run = data.lastRun;
    if (!run) return tile("tile-last-run", "none yet", "no run has finished");
    const outcome = run.costCapReached ? "killed: cost cap reached"
      : run.status === "killed" ? "killed: paused mid-run" : run.status.replace("_", " ");
    const parts = [`${outcome} · ${run.battles} battles · ${dollars(run.cost)}`];
    if (run.error) parts.push(` · ${run.error}`);
    tile("tile-last-run", ago(run.finishedAt || run.startedAt), parts.join(""),
         { warn: run.status === "failed" || run.status === "killed" });
  }

  function nextRunTile() {
    const next = data.nextRun;
    if (data.paused) return tile("tile-next-run", "none", "paused: no run starts until you resume");
    if (!next) return tile("tile-next-run", "unknown", "no train cron in vercel.json");
    if (!next.at) return tile("tile-next-run", "> 1 week", `cron ${next.schedule} (UTC)`);
    const at = new Date(next.at);
    tile("tile-next-run", ago(next.at), `${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} · cron ${next.schedule} (UTC)`);
  }

  function spendTiles() {
    const today = data.today, week = data.week;
    const budget = data.budget && data.budget.day;
    const sub = [`cap ${dollars(data.costCap)} per run`];
    let extra = null;
    if (budget) {
      const share = Math.max(Number(today.spend), Number(today.billedUpTo || 0)) / budget.limit;
      sub.push(` · budget ${dollars(budget.limit)}/day (${Math.round(share * 100)}%)`);
      extra = setMeter(meter(share), share);
    }
    // Calls that timed out or were cut off may have been billed without an answer to record.
    if (today.billingNote) sub.push(` · ${today.billingNote}`);
    tile("tile-spend-today", dollars(today.spend), sub.join(""), { extra });
    const month = data.budget && data.budget.month;
    tile("tile-spend-week", dollars(week.spend),
         `${week.battles} battles${month ? ` · budget ${dollars(month.limit)}/month` : ""}`);
  }

  function scoreTile() {
    const today = data.today.averageScore, week = data.week.averageScore;
    if (today == null) {
      return tile("tile-score", "–", week == null ? "no scored battle in 7 days"
        : `no scored battle today · 7-day average ${score(week)}`);
    }
    if (week == null) return tile("tile-score", score(today), `${data.today.scored} scored today`);
    const delta = Number(today) - Number(week);
    const arrow = Math.abs(delta) < 0.5 ? "→" : delta > 0 ? "▲" : "▼";
    const direction = Math.abs(delta) < 0.5 ? "level with" : delta > 0 ? "up on" : "down on";
    tile("tile-score", `${score(today)} ${arrow}`,
         `${direction} the 7-day average ${score(week)} (${delta >= 0 ? "+" : ""}${delta.toFixed(1)}) · ${data.today.scored} scored today`,
         { valueClass: Math.abs(delta) < 0.5 ? "" : delta > 0 ? "up" : "down" });
  }

  function pendingTile() {
    const pending = Number(data.pendingReviews);
    const open = pending ? el("button", { type: "button", text: "Review now",
                                          onclick: () => Review.openFirstPending() }) : null;
    tile("tile-pending", String(pending), pending ? "breakthroughs waiting for a decision" : "nothing to review",
         { warn: false, extra: open });
  }

  function problemsTile() {
    const t = data.today;
    const bad = Number(t.killed) + Number(t.failed);
    tile("tile-problems", `${t.killed} / ${t.failed}`,
         `${t.timedOut} timed out · ${t.completed} completed of ${t.battles} today`, { warn: bad > 0 });
  }

  function render() {
    serverOffsetMs = Date.parse(data.now) - Date.now();
    renderState();
    lastRunTile();
    nextRunTile();
    spendTiles();
    scoreTile();
    pendingTile();
    problemsTile();
    $(".tiles").removeAttribute("aria-busy");
  }

  // The parts that, when they change, mean other panels have news.
  function signature() {
    if (!data) return "";
    return JSON.stringify([data.paused, data.pendingReviews, data.lastRun && data.lastRun.id,
                           (data.running || []).map((run) => run.id)]);
  }

  async function poll() {
    data = await get("health");
    render();
    return data;
  }

  // ---- the switch ----
  $("#pause").addEventListener("click", () => {
    $("#pause-dialog").showModal();
    $("#pause-reason").select();
  });
  $("#pause-cancel").addEventListener("click", () => $("#pause-dialog").close());
  $("#pause-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = $("#pause-reason").value.trim();
    if (!reason) return;
    $("#pause-dialog").close();
    try { await post("pause", { reason }); } catch (error) { showAlert(`Pause failed: ${error.message}`); }
    await poll().catch(() => {});
    $("#resume").focus();
  });
  $("#resume").addEventListener("click", async () => {
    try { await post("resume"); } catch (error) { showAlert(`Resume failed: ${error.message}`); }
    await poll().catch(() => {});
    $("#pause").focus();
  });

  onReconnect(() => { if (data) renderState(); });
  skeleton();
  return { poll, signature, get data() { return data; } };
})();
