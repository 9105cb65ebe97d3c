// The loop. The first load fetches each panel once; then every 2 s the feed (only what changed)
// and the health strip. Other panels reload when those say something moved, at most every few
// seconds. When a poll fails, the page says so, greys out, and backs off: 2 s, 4 s, 8 s … 60 s.
const PANELS = {
  review: () => Review.load(), runs: () => Runs.load(), personas: () => Personas.load(),
  versions: () => Versions.load(), tactics: () => Tactics.load(), referee: () => Referee.load(),
  autonomy: () => Autonomy.load(),
};
const lastLoaded = {};
const queued = {};
let timer = null;
let signature = null;

function refresh(names, throttleMs = 0) {
  for (const name of names) {
    const since = Date.now() - (lastLoaded[name] || 0);
    if (since >= throttleMs) {
      lastLoaded[name] = Date.now();
      PANELS[name]().catch(() => {});
    } else if (!queued[name]) {
      queued[name] = setTimeout(() => { queued[name] = null; refresh([name]); }, throttleMs - since);
    }
  }
}

function schedule(delay) {
  clearTimeout(timer);
  timer = setTimeout(tick, delay);
}

function afterPoll(changed) {
  Feed.setContext(Health.data);
  const now = Health.signature();
  if (signature !== null && now !== signature) refresh(["review", "runs", "versions", "tactics", "autonomy"]);
  signature = now;
  if (changed) {
    refresh(["review"], 4000);
    refresh(["runs", "personas"], 10000);
  }
}

async function tick() {
  let delay = POLL_MS;
  const [feed, health] = await Promise.allSettled([Feed.poll(), Health.poll()]);
  if (feed.status === "fulfilled" && health.status === "fulfilled") {
    markOnline();
    afterPoll(feed.value);
  } else {
    delay = markFailed(feed.status === "rejected" ? feed.reason : health.reason);
  }
  schedule(delay);
}

async function firstLoad() {
  for (const name of Object.keys(PANELS)) lastLoaded[name] = Date.now();
  const [feed, health] = await Promise.allSettled([Feed.poll(), Health.poll(),
    ...Object.values(PANELS).map((load) => load())]);
  let delay = POLL_MS;
  if (feed.status === "fulfilled" && health.status === "fulfilled") {
    markOnline();
    afterPoll(false);
  } else {
    delay = markFailed(feed.status === "rejected" ? feed.reason : health.reason);
  }
  document.body.dataset.loaded = "true";
  schedule(delay);
}

// Back online: panels that failed meanwhile load again.
onReconnect(() => refresh(Object.keys(PANELS)));
$("#retry").addEventListener("click", () => { clearTimeout(timer); tick(); });
setInterval(renderConnection, 1000);
firstLoad();
