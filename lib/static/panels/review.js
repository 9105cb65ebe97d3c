// Breakthroughs (view=breakthroughs) and the review dialog: the whole transcript with the defining
// moment highlighted, the referee's verdict, and the tactic to promote, with keyboard shortcuts.
const Review = (() => {
  let items = [];
  let current = null;      // the battle shown in the dialog
  let returnFocus = null;  // {node, key}: where the focus goes back when the dialog closes
  const dialog = $("#transcript");
  const REVIEWABLE = new Set(["pending_review", "reviewed"]);

  // ---- the panel ----
  function skeleton() {
    $("#breakthroughs").replaceChildren(...Array.from({ length: 3 }, () =>
      el("div", { class: "skeleton-card", "aria-hidden": "true" }, ...skeletonLines(2))));
  }

  async function load() {
    let data;
    try {
      data = await get("breakthroughs");
    } catch (error) {
      panelError($("#breakthroughs"), error);
      throw error;
    }
    items = data.items;
    const badge = $("#pending");
    badge.textContent = String(data.pending);
    badge.classList.toggle("zero", data.pending === 0);
    Banner.update("breakthroughs", items.some((item) => item.simulated));
    render();
    return data;
  }

  function render() {
    const box = $("#breakthroughs");
    box.removeAttribute("aria-busy");
    if (!items.length) {
      emptyState(box, "No breakthroughs yet: the Tactical Scout flags battles the referee scores 95 or more.");
      return;
    }
    const pending = items.filter((item) => item.status === "pending_review");
    const decided = items.filter((item) => item.status !== "pending_review");
    const active = document.activeElement;
    const key = active && box.contains(active) ? active.dataset.focusKey : null;
    keepingFocus(box, () => box.replaceChildren(
      ...(pending.length ? [el("h3", { class: "group-title", text: `Pending review (${pending.length})` }), ...pending.map(card)] : []),
      ...(decided.length ? [el("h3", { class: "group-title", text: `Decided (${decided.length})` }), ...decided.map(card)] : [])));
    // A quick action's button may be gone (a promoted card has no Promote): focus its card instead.
    if (key && !box.contains(document.activeElement)) {
      const fallback = box.querySelector(`[data-focus-key="${CSS.escape(`card:${key.split(":")[1]}`)}"]`);
      if (fallback) fallback.focus();
    }
  }

  function card(item) {
    const title = el("h3", {}, document.createTextNode(`${score(item.score)} · ${item.persona}`),
      el("span", { class: `tag ${item.status}`, text: item.status.replace("_", " ") }));
    const node = el("article", { class: `card ${item.status}`, "data-id": item.id }, title);
    if (item.definingMoment) node.append(el("blockquote", { text: item.definingMoment }));
    node.append(el("p", {}, el("b", { text: "Tactic: " }),
      document.createTextNode(item.tacticalSnippet || "(the scout has not extracted it yet)")));
    const actions = el("div", { class: "actions" });
    const open = el("button", { type: "button", class: item.status === "pending_review" ? "primary" : null,
                                "data-focus-key": `card:${item.id}`, text: "Review in transcript" });
    open.addEventListener("click", () => Review.open(item.id, open));
    actions.append(open);
    if (REVIEWABLE.has(item.status)) {
      if (item.tacticalSnippet) actions.append(quick("promote", "Promote", item));
      if (item.status === "pending_review") actions.append(quick("review", "Mark reviewed", item));
      actions.append(quick("reject", "Reject", item));
    }
    node.append(actions);
    return node;
  }

  function quick(action, label, item) {
    const button = actionButton(label, () => decide(action, item.id), { danger: action === "reject" });
    button.dataset.focusKey = `${action}:${item.id}`;
    return button;
  }

  // ---- deciding ----
  const DONE = {
    promote: "Promoted: the tactic is in the closer's prompt from the next run on.",
    review: "Marked reviewed: kept for later, not promoted.",
    reject: "Rejected.",
  };

  async function decide(action, battleId, tacticText) {
    const body = { battleId };
    if (action === "promote" && tacticText != null) body.tacticText = tacticText;
    let answer;
    try {
      answer = await post(action, body);
    } catch (error) {
      const message = `${action === "review" ? "Mark reviewed" : action[0].toUpperCase() + action.slice(1)} failed: ${error.message}`;
      showAlert(message);
      if (dialog.open) showDialogError(message);
      return null;
    }
    const result = answer && answer.result;
    const extra = result && typeof result === "object" ? [result.message, ...(result.warnings || [])].filter(Boolean) : [];
    const said = [DONE[action], ...extra].join(" ");
    if (extra.length) showAlert(said, "info");
    await Promise.allSettled([load(), Health.poll(), Tactics.load(), Versions.load()]);
    return said;
  }

  // ---- the dialog ----
  async function open(id, opener) {
    if (!dialog.open) {
      const node = opener || document.activeElement;
      returnFocus = { node, key: node && node.dataset ? node.dataset.focusKey : null };
    }
    let battle;
    try {
      battle = await get("battle", { id });
    } catch (error) {
      showAlert(`Could not open the battle: ${error.message}`);
      return;
    }
    current = battle;
    show(battle);
    if (!dialog.open) dialog.showModal();
    // The transcript first: the shortcut keys work from there; Tab reaches the tactic to edit it.
    $("#transcript-body").focus();
  }

  function show(battle) {
    $("#review-status").textContent = "";
    hideDialogError();
    const title = $("#transcript-title");
    title.replaceChildren(document.createTextNode(`${battle.persona} — ${battle.score != null ? score(battle.score) : battle.status}`));
    if (battle.breakthrough) title.append(" ", el("span", { class: `tag ${battle.breakthrough}`, text: battle.breakthrough.replace("_", " ") }));
    const agreed = battle.sellerAgreed == null ? "unknown" : battle.sellerAgreed ? "yes" : "no";
    $("#transcript-meta").textContent = [
      `${battle.status.replace("_", " ")}`, `${battle.turns} turns`, money(battle.cost), `seller agreed: ${agreed}`,
      `started ${when(battle.startedAt)}`, `run ${battle.runId.slice(0, 8)}`,
      battle.simulated ? "simulated LLM" : null, battle.error ? `error: ${battle.error}` : null,
    ].filter(Boolean).join(" · ");
    renderTranscript(battle);
    renderVerdict(battle);
    const form = $("#review-form");
    form.hidden = !REVIEWABLE.has(battle.breakthrough);
    $("#tactic-text").value = battle.tacticalSnippet || "";
    $("#review-promote").dataset.blocked = String(!(battle.tacticalSnippet || "").trim());
    $("#review-reviewed").dataset.blocked = String(battle.breakthrough !== "pending_review");
    applyServerState(dialog);
    setNext();
  }

  function setNext() {
    const next = $("#review-next");
    const any = Boolean(nextPending());
    next.replaceChildren(any ? "Next pending " : "No more pending: close ", el("kbd", { text: any ? "N" : "Esc" }));
    next.disabled = !any;
    next.hidden = !any && !(current && current.breakthrough);
  }

  // The scout quotes the closer's winning sentences: find them in the transcript and mark them.
  function momentMatcher(moment) {
    const normalise = (text) => text.toLowerCase().replace(/\s+/g, " ").trim();
    const sentences = (moment || "").split(/(?<=[.!?])\s+/).map(normalise).filter((s) => s.length > 12);
    return (text) => {
      const line = normalise(text);
      return sentences.length > 0 && (line.includes(normalise(moment)) || sentences.some((s) => line.includes(s)));
    };
  }

  function highlighted(text, moment) {
    const index = moment ? text.indexOf(moment.trim()) : -1;
    if (index < 0) return [document.createTextNode(text)];
    const end = index + moment.trim().length;
    return [document.createTextNode(text.slice(0, index)), el("mark", { text: text.slice(index, end) }),
            document.createTextNode(text.slice(end))];
  }

  function renderTranscript(battle) {
    const isMoment = momentMatcher(battle.definingMoment);
    let first = null;
    const lines = (battle.transcript || []).map((line, index) => {
      const moment = line.speaker === "closer" && isMoment(line.text);
      const node = el("p", { class: `line ${line.speaker}${moment ? " moment" : ""}` },
        el("b", { text: `${line.speaker === "closer" ? "Closer" : "Seller"} · ${index + 1}` }),
        ...(moment ? highlighted(line.text, battle.definingMoment) : [document.createTextNode(line.text)]));
      if (moment && !first) first = node;
      return node;
    });
    const body = $("#transcript-body");
    body.replaceChildren(...(lines.length ? lines : [el("p", { class: "empty", text: "No transcript was saved." })]));
    if (first) requestAnimationFrame(() => first.scrollIntoView({ block: "center" }));
  }

  function renderVerdict(battle) {
    const box = $("#transcript-verdict");
    box.replaceChildren(el("h3", { text: "Referee" }));
    if (battle.scores && Object.keys(battle.scores).length) {
      box.append(el("ul", { class: "scores", "aria-label": "Sub-scores" }, ...Object.entries(battle.scores).map(([name, value]) => {
        const fill = el("span");
        fill.style.width = `${Math.max(0, Math.min(100, Number(value)))}%`;
        return el("li", {}, el("span", { text: name.replace(/_/g, " ") }),
          el("span", { class: "bar", "aria-hidden": "true" }, fill), el("span", { class: "num", text: String(value) }));
      })));
    } else {
      box.append(el("p", { class: "muted", text: "No verdict: the battle did not complete." }));
    }
    if (battle.feedback) box.append(el("p", {}, el("b", { text: "Feedback: " }), document.createTextNode(battle.feedback)));
    if (battle.winningRebuttal) box.append(el("p", {}, el("b", { text: "Winning rebuttal: " }), document.createTextNode(battle.winningRebuttal)));
    if (battle.definingMoment) box.append(el("p", {}, el("b", { text: "Defining moment: " }), document.createTextNode(battle.definingMoment)));
  }

  function showDialogError(message) {
    const box = $("#review-error");
    box.replaceChildren(el("p", { text: message }),
      el("button", { type: "button", text: "Dismiss", onclick: hideDialogError }));
    box.hidden = false;
  }

  function hideDialogError() {
    const box = $("#review-error");
    box.hidden = true;
    box.replaceChildren();
  }

  function nextPending() {
    const pending = items.filter((item) => item.status === "pending_review" && (!current || item.id !== current.id));
    if (!pending.length) return null;
    const order = items.map((item) => item.id);
    const here = current ? order.indexOf(current.id) : -1;
    return pending.find((item) => order.indexOf(item.id) > here) || pending[0];
  }

  async function act(action) {
    if (!current || $("#review-form").hidden) return;
    const button = { promote: $("#review-promote"), review: $("#review-reviewed"), reject: $("#review-reject") }[action];
    if (button.disabled) return;
    button.dataset.busy = "true";
    applyServerState(dialog);
    const said = await decide(action, current.id, action === "promote" ? $("#tactic-text").value.trim() : null);
    delete button.dataset.busy;
    if (said) {
      const id = current.id;
      try { current = await get("battle", { id }); show(current); } catch (error) { /* the panel still says it */ }
      $("#review-status").textContent = said;
      (nextPending() ? $("#review-next") : $("#transcript .close")).focus();
    }
    applyServerState(dialog);
  }

  async function goNext() {
    const next = nextPending();
    if (next) await open(next.id);
  }

  function openFirstPending() {
    const first = items.find((item) => item.status === "pending_review");
    if (first) open(first.id, document.activeElement);
  }

  $("#review-promote").addEventListener("click", () => act("promote"));
  $("#review-reviewed").addEventListener("click", () => act("review"));
  $("#review-reject").addEventListener("click", () => act("reject"));
  $("#review-next").addEventListener("click", goNext);

  dialog.addEventListener("keydown", (event) => {
    const typing = event.target.matches("textarea, input");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      act("promote");
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    const actions = { p: () => act("promote"), r: () => act("review"), x: () => act("reject"), n: goNext };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });

  dialog.addEventListener("close", () => {
    current = null;
    const target = returnFocus && (returnFocus.node && returnFocus.node.isConnected ? returnFocus.node
      : returnFocus.key && document.querySelector(`[data-focus-key="${CSS.escape(returnFocus.key)}"]`));
    returnFocus = null;
    if (target) target.focus();
  });

  skeleton();
  return { load, open, openFirstPending };
})();
