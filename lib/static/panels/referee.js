// How far the referee can be trusted (view=referee; the referee work provides it): its consistency
// on repeated scoring, the precision of its breakthrough calls, unconfirmed ones, its calibration.
const Referee = (() => {
  const box = $("#referee");

  function kv(pairs) {
    return el("dl", { class: "kv" }, ...pairs.flatMap(([key, value]) => [el("dt", { text: key }), el("dd", { text: value })]));
  }

  function render(data) {
    box.removeAttribute("aria-busy");
    const c = data.consistency || {};
    const p = data.precision || {};
    const parts = [];
    const section = (...children) => parts.push(el("div", { class: "referee-part" }, ...children));
    section(el("h3", { text: `Consistency, last ${c.days ?? 7} days` }), kv([
      ["pairs scored twice", String(c.pairs ?? 0)],
      ["mean difference", c.meanAbsDiff == null ? "–" : `${Number(c.meanAbsDiff).toFixed(1)} points`],
      ["agreement", percent(c.agreement)],
      ...Object.entries(c.perCriterion || {}).map(([name, value]) =>
        [`${name.replace(/_/g, " ")}`, value == null ? "–" : `${Number(value).toFixed(1)} points`]),
    ]));
    section(el("h3", { text: `Breakthrough precision, last ${p.days ?? 30} days` }), kv([
      ["decisions", String(p.decisions ?? 0)], ["precision", percent(p.precision)],
      ...(p.byPersonaType || []).map((row) => [row.type, `${percent(row.precision)} of ${row.decisions}`]),
    ]));
    const unconfirmed = data.unconfirmed || [];
    section(el("h3", { text: `Unconfirmed breakthroughs (${unconfirmed.length})` }),
      unconfirmed.length ? el("ul", {}, ...unconfirmed.map((item) => el("li", {},
      el("button", { type: "button", class: "link", "data-focus-key": `unconfirmed:${item.id}`,
                     text: `${item.persona}: ${score(item.score)} then ${score(item.confirmScore)}`,
                     onclick: (event) => Review.open(item.id, event.currentTarget) }),
      document.createTextNode(` · ${item.reason} · ${ago(item.detectedAt)}`))))
      : el("p", { class: "muted", text: "None: every breakthrough was confirmed by a second scoring." }));
    const cal = data.calibration;
    section(el("h3", { text: "Calibration" }), cal
      ? kv([["last run", `${when(cal.at)} · ${cal.model}`], ["rank correlation (Spearman)", Number(cal.spearman).toFixed(2)],
            ["in the expected band", percent(cal.inBand)], ["items", String(cal.items)]])
      : el("p", { class: "muted", text: "Not calibrated yet." }));
    box.replaceChildren(el("div", { class: "referee-grid" }, ...parts));
  }

  async function load() {
    try {
      render(await get("referee"));
    } catch (error) {
      panelError(box, error);
      throw error;
    }
  }

  box.replaceChildren(...skeletonLines(3));
  return { load };
})();
