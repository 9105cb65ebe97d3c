// The live battle feed: only battles changed since the cursor travel (view=feed).
const Feed = (() => {
  const KEEP = 200;
  const STEP = window.matchMedia("(max-width: 600px)").matches ? 10 : 20;
  const battles = new Map();
  let cursor = null;
  let shown = STEP;
  let loaded = false;
  let context = { personas: null };

  function skeleton() {
    $("#feed tbody").replaceChildren(...Array.from({ length: 5 }, () =>
      el("tr", { "aria-hidden": "true" }, ...Array.from({ length: 6 }, (_, i) =>
        el("td", { class: i > 3 ? "optional" : null }, el("span", { class: "skeleton" }))))));
  }

  // Returns true when a battle is new or changed.
  function merge(list) {
    let changed = false;
    for (const battle of list) {
      const known = battles.get(battle.id);
      if (known && known.updatedAt === battle.updatedAt) continue;
      battle.fresh = loaded;
      battles.set(battle.id, battle);
      changed = true;
    }
    if (battles.size > KEEP) {
      const oldest = [...battles.values()].sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1));
      for (const battle of oldest.slice(0, battles.size - KEEP)) battles.delete(battle.id);
    }
    return changed;
  }

  async function poll() {
    const params = cursor ? { afterUpdatedAt: cursor.updatedAt, afterId: cursor.id } : {};
    const data = await get("feed", params);
    const changed = merge(data.battles);
    if (data.cursor) cursor = data.cursor;
    if (changed || !loaded) {
      loaded = true;
      render();
    }
    $("#feed-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    return changed;
  }

  function setContext(health) {
    const before = context.personas;
    context = { personas: health.personas ? health.personas.total : null };
    if (loaded && before !== context.personas && battles.size === 0) render();
  }

  function row(battle, allSimulated) {
    const status = el("td", {}, el("span", { class: `tag ${battle.status}`, text: battle.status.replace("_", " ") }));
    if (battle.simulated && !allSimulated) status.append(" ", el("span", { class: "tag sim", text: "simulated" }));
    const open = el("button", { type: "button", class: "link", "data-focus-key": `feed:${battle.id}`,
                                text: battle.persona, "aria-label": `Open the transcript: ${battle.persona}, ${battle.status}` });
    const tr = el("tr", { class: battle.fresh ? "fresh" : null, "data-id": battle.id,
                          onclick: (event) => { if (event.target !== open) Review.open(battle.id, open); } },
      el("td", {}, open), status,
      el("td", { class: "num" }, score(battle.score), battle.breakthrough
        ? el("span", { class: "star", title: "breakthrough", "aria-label": "breakthrough", text: " ★" }) : null),
      el("td", { class: "num", text: money(battle.cost) }),
      el("td", { class: "num optional", text: seconds(battle.durationMs) }),
      el("td", { class: "optional", text: ago(battle.startedAt), title: when(battle.startedAt) }));
    open.addEventListener("click", () => Review.open(battle.id, open));
    battle.fresh = false;
    return tr;
  }

  function render() {
    const table = $("#feed");
    table.removeAttribute("aria-busy");
    const rows = [...battles.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
    const allSimulated = rows.length > 0 && rows.every((battle) => battle.simulated);
    Banner.update("feed", rows.some((battle) => battle.simulated));
    const empty = $("#feed-empty");
    empty.hidden = rows.length > 0;
    if (!rows.length) {
      if (context.personas === 0) {
        emptyState(empty, "No personas: run ", code("python -m lib generate-personas"),
                   " (or ", code("make train"), " locally), then start a run.");
      } else {
        emptyState(empty, "No battles yet. The cron starts a run every 30 minutes; to start one now, run ",
                   code("python -m lib train"), " or POST ", code("/api/cron/train"),
                   " with the cron bearer (see the README).");
      }
      empty.hidden = false;
    }
    keepingFocus(table, () => {
      $("#feed tbody").replaceChildren(...rows.slice(0, shown).map((battle) => row(battle, allSimulated)));
    });
    const more = $("#feed-more");
    more.hidden = rows.length <= shown;
    more.textContent = `Show more (${Math.min(STEP, rows.length - shown)} of ${rows.length - shown} more)`;
  }

  $("#feed-more").addEventListener("click", () => {
    const firstNew = shown;
    shown += STEP;
    render();
    const next = $$("#feed tbody tr button.link")[firstNew];
    if (next) next.focus();
  });

  skeleton();
  return { poll, setContext, render };
})();
