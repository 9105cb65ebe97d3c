// Runs over time (view=runs&range=…): dates on the x-axis, spend in dollars on the left axis with
// the cost cap as a line, the average score 0–100 on the right axis, one gridline set for both.
const Runs = (() => {
  const H = 260, M = { left: 56, right: 44, top: 18, bottom: 34 };
  const PLOT_H = H - M.top - M.bottom;
  let W = 720, PLOT_W = W - M.left - M.right; // drawn at the panel's own width, so text stays 11 px
  const COLORS = { completed: "#4a78d9", killed: "#c0392b", failed: "#7a4a12", timed_out: "#d08c00", running: "#8fb0ee" };
  const LABELS = { completed: "completed", killed: "killed (cost cap reached or paused)", failed: "failed",
                   timed_out: "timed out", running: "running" };
  const TABLE_ROWS = 300;
  let range = "7d";
  let data = null;

  function nice(value) {
    const exponent = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 2.5, 5, 10].map((f) => f * exponent).find((step) => step >= value);
  }

  function dollarLabel(value, step) {
    const significant = String(step).replace(/^0\.0*/, "").replace(".", "").length;
    const digits = step >= 1 ? (Number.isInteger(step) ? 0 : 1)
      : Math.min(4, Math.max(2, -Math.floor(Math.log10(step)) + (significant > 1 ? 1 : 0)));
    return `$${value.toFixed(digits)}`;
  }

  // Where the time axis starts: the range's start, or, with less history than the range (a fresh
  // database), a little before the first run, so the runs spread over the plot instead of
  // crowding its right edge.
  function axisStart(since, now, runs) {
    if (!runs.length) return since;
    const first = Math.min(...runs.map((run) => Date.parse(run.startedAt)));
    const margin = Math.max((now - first) * 0.05, 5 * 60000);
    return new Date(Math.max(since.getTime(), first - margin));
  }

  function timeTicks(since, now) {
    const hours = (now - since) / 3600000;
    const ticks = [];
    const start = new Date(since);
    start.setMinutes(Math.floor(start.getMinutes() / 5) * 5, 0, 0);
    if (hours <= 48) {
      // Every 5 minutes to 6 hours: the smallest step that keeps about 8 ticks at most.
      const every = [5, 10, 15, 30, 60, 120, 180, 360].find((minutes) => hours * 60 / minutes <= 8) || 360;
      for (let t = new Date(start); t <= now; t.setMinutes(t.getMinutes() + 5)) {
        if (t >= since && (t.getHours() * 60 + t.getMinutes()) % every === 0) {
          ticks.push([new Date(t), t.getHours() === 0 && t.getMinutes() === 0
            ? t.toLocaleDateString([], { month: "short", day: "numeric" })
            : t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })]);
        }
      }
    } else {
      start.setMinutes(0);
      const every = hours <= 24 * 8 ? 1 : 5;
      start.setHours(0);
      for (let t = new Date(start), i = 0; t <= now; t.setDate(t.getDate() + 1), i++) {
        if (t >= since && t.getDate() % every === (every === 1 ? 0 : 1)) {
          ticks.push([new Date(t), t.toLocaleDateString([], every === 1
            ? { weekday: "short", day: "numeric" } : { month: "short", day: "numeric" })]);
        }
      }
    }
    return ticks;
  }

  function chart() {
    const runs = data.runs;
    const now = new Date(data.now), since = axisStart(new Date(data.since), now, runs);
    const x = (iso) => M.left + ((Date.parse(iso) - since) / (now - since)) * PLOT_W;
    const maxCost = Math.max(0, ...runs.map((run) => Number(run.cost)));
    const caps = [...new Set(runs.map((run) => Number(run.costCap)))];
    const cap = Math.max(...caps, 0);
    // The cap is drawn when it fits in a readable scale; far above the spend it is named instead.
    const capOnScale = cap > 0 && cap <= 4 * Math.max(maxCost, 1e-9);
    const step = nice(Math.max(capOnScale ? cap : maxCost, 0.0001) * 1.05 / 4);
    const top = step * 4;
    const yCost = (value) => M.top + PLOT_H - (Number(value) / top) * PLOT_H;
    const yScore = (value) => M.top + PLOT_H - (Number(value) / 100) * PLOT_H;

    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `${runs.length} runs since ${since.toLocaleString()}: spend per run in dollars and average score. ` +
                    "The table below the chart has every value." });
    const grid = svg("g", { class: "grid" });
    const axes = svg("g", { class: "axis" });
    for (let i = 0; i <= 4; i++) {
      const y = M.top + PLOT_H - (i / 4) * PLOT_H;
      grid.append(svg("line", { x1: M.left, x2: W - M.right, y1: y, y2: y }));
      axes.append(svg("text", { x: M.left - 6, y: y + 4, "text-anchor": "end", text: dollarLabel(i * step, step) }));
      axes.append(svg("text", { x: W - M.right + 6, y: y + 4, text: String(i * 25) }));
    }
    axes.append(svg("text", { x: 4, y: 11, text: "spend per run ($)" }));
    axes.append(svg("text", { x: W - 4, y: 11, "text-anchor": "end", text: "avg score" }));
    axes.append(svg("line", { x1: M.left, x2: W - M.right, y1: M.top + PLOT_H, y2: M.top + PLOT_H, stroke: "#8d97a8" }));
    for (const [moment, label] of timeTicks(since, now)) {
      const tx = x(moment.toISOString());
      axes.append(svg("line", { x1: tx, x2: tx, y1: M.top + PLOT_H, y2: M.top + PLOT_H + 4, stroke: "#8d97a8" }));
      axes.append(svg("text", { x: tx, y: H - 14, "text-anchor": "middle", text: label }));
    }
    root.append(grid, axes);

    const width = Math.max(2, Math.min(12, (PLOT_W / ((now - since) / 1800000)) * 0.6));
    const bars = svg("g", { class: "bars" });
    for (const run of runs) {
      const cost = Number(run.cost);
      const height = cost > 0 ? Math.max(1, (cost / top) * PLOT_H) : 0;
      const bar = svg("rect", { class: `bar ${run.status}`, "data-id": run.id, "data-cost": cost,
        x: (x(run.startedAt) - width / 2).toFixed(2), y: (M.top + PLOT_H - height).toFixed(2),
        width: width.toFixed(2), height: height.toFixed(2), fill: COLORS[run.status] || COLORS.completed });
      bar.append(svg("title", { text: describe(run) }));
      bars.append(bar);
    }
    root.append(bars);

    if (cap > 0 && capOnScale) {
      const ordered = runs.length ? runs : [{ startedAt: data.since, costCap: cap }];
      let path = `M ${M.left} ${yCost(ordered[0].costCap)}`;
      for (const run of ordered) path += ` H ${x(run.startedAt).toFixed(2)} V ${yCost(run.costCap).toFixed(2)}`;
      path += ` H ${W - M.right}`;
      root.append(svg("path", { class: "cap", d: path, fill: "none", stroke: "#a3221b", "stroke-width": 1.5,
                                "stroke-dasharray": "5 4" }));
      root.append(svg("text", { x: W - M.right - 4, y: yCost(ordered[ordered.length - 1].costCap) - 4,
                                "text-anchor": "end", fill: "#a3221b", "font-size": 11,
                                text: `cap ${dollars(ordered[ordered.length - 1].costCap)} per run` }));
    } else if (cap > 0) {
      root.append(svg("text", { x: M.left + 4, y: M.top + 10, fill: "#a3221b", "font-size": 11,
                                text: `cap ${dollars(cap)} per run: far above this scale` }));
    }

    const scored = runs.filter((run) => run.averageScore != null);
    if (scored.length) {
      const points = scored.map((run) => `${x(run.startedAt).toFixed(2)},${yScore(run.averageScore).toFixed(2)}`);
      root.append(svg("polyline", { class: "score", points: points.join(" "), fill: "none", stroke: "#17663a",
                                    "stroke-width": 2 }));
      if (scored.length <= 200) {
        const dots = svg("g", { class: "score-dots" });
        for (const run of scored) {
          dots.append(svg("circle", { cx: x(run.startedAt).toFixed(2), cy: yScore(run.averageScore).toFixed(2), r: 2.5,
                                      fill: "#17663a" }, svg("title", { text: describe(run) })));
        }
        root.append(dots);
      }
    }
    return { root, x, capOnScale, cap };
  }

  function describe(run) {
    const outcome = run.costCapReached ? "killed: cost cap reached" : LABELS[run.status] || run.status;
    return `${new Date(run.startedAt).toLocaleString()} · ${outcome}${run.simulated ? " (simulated)" : ""} · ` +
      `${run.battles} battles · ${dollars(run.cost)} of ${dollars(run.costCap)} cap · average score ${score(run.averageScore)}`;
  }

  function legend(capOnScale, cap) {
    const present = new Set(data.runs.map((run) => run.status));
    const items = ["completed", "killed", "failed", "timed_out", "running"]
      .filter((status) => present.has(status) || status === "completed" || status === "killed")
      .map((status) => el("li", {}, el("span", { class: `swatch ${status}`, "aria-hidden": "true" }),
                          `bar: spend of a ${LABELS[status]} run`));
    items.push(el("li", {}, el("span", { class: "swatch dashed", "aria-hidden": "true" }),
                  capOnScale ? "dashed line: the cost cap per run" : `cost cap per run (${dollars(cap)}), above the scale`));
    items.push(el("li", {}, el("span", { class: "swatch line score", "aria-hidden": "true" }),
                  "green line: average referee score of the run (right axis, 0–100)"));
    $("#runs-legend").replaceChildren(...items);
  }

  function table() {
    const rows = [...data.runs].reverse().slice(0, TABLE_ROWS);
    $("#runs-table tbody").replaceChildren(...rows.map((run) => el("tr", {},
      el("td", { text: when(run.startedAt) }),
      el("td", {}, el("span", { class: `tag ${run.status}`, text: run.costCapReached ? "killed: cost cap" : run.status.replace("_", " ") })),
      el("td", { class: "num", text: String(run.battles) }), el("td", { class: "num", text: money(run.cost) }),
      el("td", { class: "num", text: dollars(run.costCap) }), el("td", { class: "num", text: score(run.averageScore) }))));
  }

  function tooltip(box, root, x) {
    const tip = el("div", { class: "tooltip", hidden: true, "aria-hidden": "true" });
    box.append(tip);
    root.addEventListener("pointermove", (event) => {
      const bounds = root.getBoundingClientRect();
      const px = ((event.clientX - bounds.left) / bounds.width) * W;
      let best = null, distance = Infinity;
      for (const run of data.runs) {
        const d = Math.abs(x(run.startedAt) - px);
        if (d < distance) { best = run; distance = d; }
      }
      if (!best || distance > 14) { tip.hidden = true; return; }
      tip.textContent = describe(best);
      tip.hidden = false;
      const left = Math.min(event.clientX - box.getBoundingClientRect().left + 12, box.clientWidth - tip.offsetWidth - 4);
      tip.style.left = `${Math.max(0, left)}px`;
      tip.style.top = `${event.clientY - box.getBoundingClientRect().top + 12}px`;
    });
    root.addEventListener("pointerleave", () => { tip.hidden = true; });
  }

  function render() {
    const box = $("#runs-chart");
    box.removeAttribute("aria-busy");
    const runs = data.runs;
    const spent = runs.reduce((sum, run) => sum + Number(run.cost), 0);
    const killed = runs.filter((run) => run.status === "killed").length;
    const failed = runs.filter((run) => run.status === "failed").length;
    const label = { "24h": "24 hours", "7d": "7 days", "30d": "30 days" }[data.range];
    $("#runs-summary").textContent = runs.length
      ? `${runs.length} runs in the last ${label} · ${dollars(spent)} spent · ${killed} killed · ${failed} failed`
      : "";
    if (!runs.length) {
      emptyState(box, `No runs in the last ${label}. The cron starts one every 30 minutes; to start one now, run `,
                 code("python -m lib train"), ".");
      $("#runs-legend").replaceChildren();
      table();
      return;
    }
    W = Math.max(320, Math.round(box.clientWidth || 720));
    PLOT_W = W - M.left - M.right;
    const { root, x, capOnScale, cap } = chart();
    box.replaceChildren(root);
    tooltip(box, root, x);
    legend(capOnScale, cap);
    table();
  }

  async function load() {
    try {
      data = await get("runs", { range });
    } catch (error) {
      panelError($("#runs-chart"), error);
      throw error;
    }
    render();
  }

  for (const button of $$("#runs-panel [data-range]")) {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      for (const other of $$("#runs-panel [data-range]")) other.setAttribute("aria-pressed", String(other === button));
      load().catch(() => {});
    });
  }

  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (data && data.runs.length) render(); }, 200);
  });

  $("#runs-chart").replaceChildren(el("div", { class: "skeleton-card", "aria-hidden": "true" }, ...skeletonLines(3)));
  return { load };
})();
