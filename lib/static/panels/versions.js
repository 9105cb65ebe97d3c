// Closer versions and the canary (view=versions; the closed-loop work provides it). Roll back to an
// earlier version with POST action=rollback {"versionId"}.
const Versions = (() => {
  const box = $("#versions");

  function ci(range) {
    return range ? `${score(range[0])} to ${score(range[1])}` : "–";
  }

  function signed(value) {
    return value == null ? "–" : `${Number(value) >= 0 ? "+" : ""}${Number(value).toFixed(1)}`;
  }

  function canary(data) {
    const c = data.canary;
    if (!c) return el("p", { class: "muted", text: "No canary running: the active version takes every battle." });
    const share = c.maxPairs ? c.pairs / c.maxPairs : 0;
    const bar = el("div", { class: "meter", role: "img", "aria-label": `${c.pairs} of ${c.maxPairs} pairs` }, el("span"));
    bar.firstChild.style.width = `${Math.min(1, share) * 100}%`;
    return el("div", { class: "canary" },
      el("p", {}, el("b", { text: `Canary: v${c.candidateId} against v${c.activeId}` })),
      el("p", { text: `${c.pairs} of ${c.maxPairs} persona pairs · ${measure(c)} ${signed(c.diff)} ` +
                      `(95% CI ${ci(c.ci95)})` }), bar, outlook(c), lean(c), halfDone(c));
  }

  // A note from lib/canary.py (a clause in lower case) shown as a sentence.
  function sentence(note) {
    return `${note[0].toUpperCase()}${note.slice(1)}.`;
  }

  // The pairs left out with one side unfinished (lib/canary.py incomplete_note).
  function halfDone(c) {
    const note = c.incomplete && c.incomplete.note;
    return note ? el("p", { class: "incomplete muted", text: sentence(note) }) : null;
  }

  // The head-to-head judge's lean to the call it reads first (lib/canary.py lean_note).
  function lean(c) {
    const note = c.positionBias && c.positionBias.note;
    return note ? el("p", { class: "lean muted", text: `Head-to-head: ${note}.` }) : null;
  }

  // What the canary measures (CANARY_VERDICT): score points, or head-to-head verdicts (±100 a pair).
  function measure(c) {
    return c.unit === "head_to_head" ? "head-to-head verdicts (wins − losses per 100 pairs)" : "score difference in points";
  }

  // How many pairs a 5-point difference needs at the spread seen so far (lib/canary.py outlook_note).
  function outlook(c) {
    if (c.unit === "head_to_head") return el("p", { class: "muted", text: "Pairs needed: estimated for score points only." });
    if (!c.outlookNote) return el("p", { class: "muted", text: "Pairs needed: shown from 2 scored pairs." });
    return el("p", { class: "outlook", text: sentence(c.outlookNote) });
  }

  function row(version, active) {
    const cells = [
      el("td", { text: `v${version.id}` }),
      el("td", {}, el("span", { class: `tag ${version.status}`, text: version.status.replace("_", " ") })),
      el("td", { class: "change", text: version.change || "–" }),
      el("td", { class: "num", text: String(version.battles) }),
      el("td", { class: "num", text: `${score(version.meanScore)}${version.ci95 ? ` (${ci(version.ci95)})` : ""}` }),
      el("td", { text: version.decision ? `${version.decision.replace("_", " ")}${version.pairs ? ` · ${version.pairs} pairs` : ""}` +
                                          `${version.diff != null ? ` · ${signed(version.diff)}` : ""}` +
                                          `${version.unit === "head_to_head" ? " head-to-head" : ""}` : "–" }),
      el("td", { text: ago(version.createdAt), title: when(version.createdAt) }),
    ];
    const action = el("td");
    if (active && version.id < active.id && version.status !== "active" && version.status !== "candidate") {
      action.append(actionButton(`Roll back to v${version.id}`, async () => {
        if (!window.confirm(`Make v${version.id} the active closer version again?`)) return;
        try {
          const answer = await post("rollback", { versionId: version.id });
          const message = answer && answer.result && answer.result.message;
          showAlert(message || `Rolled back to v${version.id}.`, "info");
        } catch (error) {
          showAlert(`Roll back failed: ${error.message}`);
        }
        await Promise.allSettled([load(), Health.poll()]);
      }));
    }
    cells.push(action);
    return el("tr", { "data-id": String(version.id) }, ...cells);
  }

  function render(data) {
    box.removeAttribute("aria-busy");
    const versions = data.versions || [];
    if (!versions.length) {
      box.replaceChildren(canary(data), el("p", { class: "empty", text: "No versions recorded yet." }));
      return;
    }
    const active = versions.find((version) => version.status === "active");
    const head = el("thead", {}, el("tr", {}, ...["Version", "Status", "What changed", "Battles", "Mean score (95% CI)",
      "Decision", "Created", ""].map((label) => el("th", { scope: "col", text: label }))));
    box.replaceChildren(canary(data), el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Closer versions" },
      el("table", { id: "versions-table" }, head, el("tbody", {}, ...versions.map((version) => row(version, active))))));
  }

  async function load() {
    try {
      render(await get("versions"));
    } catch (error) {
      panelError(box, error);
      throw error;
    }
  }

  box.replaceChildren(...skeletonLines(3));
  return { load };
})();
