// Persona analytics (view=personas): sortable by any column, a score sparkline per persona.
const Personas = (() => {
  let personas = [];
  let sort = { key: "name", descending: false };

  function skeleton() {
    $("#personas tbody").replaceChildren(...Array.from({ length: 4 }, () =>
      el("tr", { "aria-hidden": "true" }, ...Array.from({ length: 6 }, () => el("td", {}, el("span", { class: "skeleton" }))))));
  }

  async function load() {
    try {
      personas = await get("personas");
    } catch (error) {
      $("#personas").removeAttribute("aria-busy");
      $("#personas tbody").replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "empty", text: `Could not load: ${error.message}` })));
      throw error;
    }
    render();
  }

  function render() {
    $("#personas").removeAttribute("aria-busy");
    const { key, descending } = sort;
    for (const header of $$("#personas th[data-sort]")) {
      if (header.dataset.sort === key) header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else header.removeAttribute("aria-sort");
    }
    if (!personas.length) {
      const cell = el("td", { colspan: 6, class: "empty" }, "No personas: run ", code("python -m lib generate-personas"), ".");
      $("#personas tbody").replaceChildren(el("tr", {}, cell));
      return;
    }
    const sorted = [...personas].sort((a, b) => {
      const x = a[key] ?? -Infinity, y = b[key] ?? -Infinity;
      return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
    });
    $("#personas tbody").replaceChildren(...sorted.map((p) => el("tr", { "data-name": p.name },
      el("td", { text: p.name + (p.active === false ? " (inactive)" : "") }),
      el("td", { class: "num", text: String(p.battles) }), el("td", { class: "num", text: score(p.averageScore) }),
      el("td", { class: "num", text: percent(p.agreedRate) }),
      el("td", { text: ago(p.lastBattledAt), title: when(p.lastBattledAt) }),
      el("td", {}, sparkline(p.recentScores)))));
  }

  function sparkline(values, width = 120, height = 24) {
    const chart = svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": values.length ? `last ${values.length} scores: ${values.join(", ")}` : "no scores yet" });
    chart.append(svg("line", { x1: 0, x2: width, y1: height / 2, y2: height / 2, stroke: "#e3e7ee" }));
    if (values.length < 2) return chart;
    const points = values.map((value, i) =>
      `${((i / (values.length - 1)) * (width - 4) + 2).toFixed(1)},${(height - 2 - (Number(value) / 100) * (height - 4)).toFixed(1)}`);
    chart.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#1f4fc4", "stroke-width": 1.5 }));
    return chart;
  }

  for (const header of $$("#personas th[data-sort]")) {
    $("button", header).addEventListener("click", () => {
      const key = header.dataset.sort;
      sort = { key, descending: sort.key === key ? !sort.descending : key !== "name" };
      render();
    });
  }

  skeleton();
  return { load };
})();
