// One banner for simulated data, instead of a tag on every row: shown while any panel that reports
// (the feed, the breakthroughs) holds a simulated battle.
const Banner = (() => {
  const sources = {};
  function update(source, simulated) {
    sources[source] = simulated;
    $("#simulated-banner").hidden = !Object.values(sources).some(Boolean);
  }
  return { update };
})();
