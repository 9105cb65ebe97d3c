// Autonomous training: the closer's quality over time (view=quality: mean score by version per hour,
// adoption and rollback markers, the true quality when simulated) and the proposal queue
// (view=proposals) with its actions: POST action=propose {"tacticText"}, move {"proposalId",
// "position"}, fast-track {"proposalId"}, edit-proposal {"proposalId", "tacticText"}, veto {"proposalId"}.
const Autonomy = (() => {
  const box = $("#autonomy");
  const PALETTE = ["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22"];
  const W = 640, H = 220, M = { left: 34, right: 10, top: 12, bottom: 22 };

  function chart(data) {
    const points = data.points || [];
    if (!points.length) return el("p", { class: "empty", text: "No completed battles in this range yet." });
    const truth = data.trueQuality || {};
    const values = points.map((p) => Number(p.meanScore)).concat(Object.values(truth).map(Number));
    const low = Math.floor(Math.min(...values) - 1), high = Math.ceil(Math.max(...values) + 1);
    const t0 = Date.parse(data.since), t1 = Date.parse(data.now);
    const x = (iso) => M.left + ((Date.parse(iso) - t0) / Math.max(1, t1 - t0)) * (W - M.left - M.right);
    const y = (v) => M.top + (1 - (Number(v) - low) / Math.max(1, high - low)) * (H - M.top - M.bottom);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "quality", role: "img",
      "aria-label": "Mean score by closer version over time, with adoptions and rollbacks" });
    const step = Math.max(1, Math.ceil((high - low) / 5));
    for (let v = low; v <= high; v += step) {
      root.append(svg("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), stroke: "#e3e6ea" }),
        svg("text", { x: M.left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, text: String(v) }));
    }
    const byVersion = {};
    for (const p of points) (byVersion[p.versionId] = byVersion[p.versionId] || []).push(p);
    Object.entries(byVersion).forEach(([version, list], index) => {
      const colour = PALETTE[index % PALETTE.length];
      const line = svg("polyline", { class: "version-line", "data-version": version, fill: "none", stroke: colour,
        "stroke-width": 2, points: list.map((p) => `${x(p.at).toFixed(1)},${y(p.meanScore).toFixed(1)}`).join(" ") });
      line.append(svg("title", { text: `v${version}: ${list.length} hours, mean score by hour` }));
      root.append(line);
      if (truth[version] != null) {
        root.append(svg("line", { class: "true-quality", "data-version": version, x1: x(list[0].at),
          x2: Math.max(x(list[list.length - 1].at), x(list[0].at) + 3), y1: y(truth[version]), y2: y(truth[version]),
          stroke: colour, "stroke-dasharray": "4 3" }, svg("title", { text: `v${version} true quality ${score(truth[version])}` })));
      }
    });
    for (const d of data.decisions || []) {
      const colour = d.decision === "adopted" ? "#2ca02c" : "#d62728";
      root.append(svg("line", { class: `marker ${d.decision}`, x1: x(d.at), x2: x(d.at), y1: M.top, y2: H - M.bottom,
        stroke: colour, "stroke-dasharray": "2 2" }, svg("title", { text: `v${d.versionId} ${d.decision.replace("_", " ")}: ${d.change}` })));
    }
    root.append(svg("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, stroke: "#8d97a8" }));
    return root;
  }

  async function act(action, body, done, succeeded = () => {}) {
    try {
      const answer = await post(action, body);
      succeeded();
      showAlert((answer && answer.result && answer.result.message) || done, "info");
    } catch (error) {
      showAlert(`${done.split(":")[0]} failed: ${error.message}`);
    }
    await Promise.allSettled([load(), Versions.load()]);
  }

  function describe(p) {
    if (p.kind === "add") return `add "${p.text}"`;
    if (p.kind === "remove") return `remove "${p.tacticText || "?"}"`;
    return `edit "${p.tacticText || "?"}" to "${p.text}"`;
  }

  function item(p, place) {
    const buttons = [];
    if (p.status === "queued") {
      if (place > 1) buttons.push(actionButton("Up", () => act("move", { proposalId: p.id, position: place - 1 }, "Moved")));
      if (!p.fastTracked) buttons.push(actionButton("Fast-track", () => act("fast-track", { proposalId: p.id }, "Fast-tracked")));
      if (p.kind !== "remove") {
        buttons.push(actionButton("Edit", () => {
          const text = window.prompt("The tactic's new text", p.text);
          if (text != null && text.trim()) act("edit-proposal", { proposalId: p.id, tacticText: text }, "Edited");
        }));
      }
    }
    buttons.push(actionButton(p.status === "canary" ? "Veto (withdraw)" : "Veto", () => {
      if (!window.confirm(`Veto proposal #${p.id}?`)) return;
      act("veto", { proposalId: p.id }, "Vetoed");
    }, { danger: true }));
    const meta = `#${p.id} · ${p.source}${p.fastTracked ? " · fast-tracked" : ""} · ${p.proposedBy} · ${ago(p.createdAt)}`;
    return el("li", { class: "proposal", "data-id": String(p.id) },
      el("p", { text: describe(p) }), el("p", { class: "muted", text: p.reasoning ? `${meta} · ${p.reasoning}` : meta }),
      el("div", { class: "actions" }, ...buttons));
  }

  // What is typed in the propose box: the panel re-renders after every action and when a poll sees a
  // change, and the text (and the focus) must outlive that; cleared once the proposal is queued.
  let draft = "";

  function proposeForm() {
    const input = el("input", { type: "text", id: "propose-text", maxlength: "1000", placeholder: "A tactic to add",
      "aria-label": "A tactic to propose", "data-focus-key": "propose-text" });
    input.value = draft;
    input.addEventListener("input", () => { draft = input.value; });
    const form = el("form", { class: "propose" }, input, el("button", { type: "submit", text: "Propose" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.value.trim()) act("propose", { tacticText: input.value }, "Proposed", () => { draft = ""; });
    });
    return form;
  }

  function render(quality, proposals) {
    box.removeAttribute("aria-busy");
    const queue = proposals.queue || [];
    const canary = proposals.canary;
    const decided = (proposals.decided || []).slice(0, 5);
    keepingFocus(box, () => box.replaceChildren(
      el("h3", { text: "Closer quality (mean score by version, last 7 days)" }),
      el("div", { class: "scroll" }, chart(quality)),
      el("h3", { text: `Proposal queue (${queue.length})` }),
      canary ? el("ul", { class: "plain", id: "proposal-canary" }, item(canary, 0))
        : el("p", { class: "muted", text: "No proposal under canary." }),
      queue.length ? el("ol", { class: "plain", id: "proposal-queue" }, ...queue.map((p, i) => item(p, i + 1)))
        : el("p", { class: "empty", text: "The queue is empty." }),
      proposeForm(),
      decided.length ? el("details", {}, el("summary", { text: "Recently decided" }),
        el("ul", { class: "plain" }, ...decided.map((p) => el("li", { text: `#${p.id} ${p.status.replace("_", " ")}: ${describe(p)}` +
          (p.outcome ? ` (${p.outcome})` : "") })))) : ""));
  }

  async function load() {
    try {
      const [quality, proposals] = await Promise.all([get("quality"), get("proposals")]);
      render(quality, proposals);
    } catch (error) {
      panelError(box, error);
      throw error;
    }
  }

  box.replaceChildren(...skeletonLines(3));
  return { load };
})();
