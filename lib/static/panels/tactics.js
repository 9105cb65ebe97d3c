// The tactics in the live closer prompt (view=tactics), with a preview of that prompt and
// Deactivate (POST action=deactivate {"tacticId"}).
const Tactics = (() => {
  const box = $("#tactics");

  function item(tactic) {
    const source = tactic.battleId
      ? el("button", { type: "button", class: "link", "data-focus-key": `tactic-battle:${tactic.id}`,
                       text: "source battle", onclick: (event) => Review.open(tactic.battleId, event.currentTarget) })
      : document.createTextNode("added by hand");
    const deactivate = actionButton("Deactivate", async () => {
      if (!window.confirm("Remove this tactic from the closer's prompt? Later runs will not use it.")) return;
      try {
        const answer = await post("deactivate", { tacticId: tactic.id });
        const message = answer && answer.result && answer.result.message;
        showAlert(message || "Tactic deactivated: later runs do not use it.", "info");
      } catch (error) {
        showAlert(`Deactivate failed: ${error.message}`);
      }
      await Promise.allSettled([load(), Versions.load()]);
    }, { danger: true });
    return el("li", { class: "tactic", "data-id": tactic.id },
      el("p", { text: tactic.text }),
      el("p", { class: "muted" }, `promoted ${ago(tactic.promotedAt)} · `, source, " "), deactivate);
  }

  function render(data) {
    box.removeAttribute("aria-busy");
    const tactics = data.tactics || [];
    const list = tactics.length ? el("ul", { class: "plain" }, ...tactics.map(item))
      : el("p", { class: "empty", text: "No active tactics: promote a breakthrough to add one to the closer's prompt." });
    const preview = el("details", {}, el("summary", { text: "Closer prompt preview" }),
      el("pre", { class: "prompt", tabindex: "0", text: data.promptPreview || "" }));
    box.replaceChildren(list, preview);
  }

  async function load() {
    try {
      render(await get("tactics"));
    } catch (error) {
      panelError(box, error);
      throw error;
    }
  }

  box.replaceChildren(...skeletonLines(3));
  return { load };
})();
