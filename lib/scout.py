"""The Tactical Scout: confirms breakthroughs, audits the referee, extracts the winning moment, alerts Slack.

A scan:

1. triages completed battles it has not seen, once each (in SQL): a referee score at or above
   SCOUT_BREAKTHROUGH_THRESHOLD makes a candidate; REFEREE_AUDIT_SHARE of the battles of the
   last days (picked by id) await an audit re-score;
2. leases up to `SCAN_LIMIT` battles with work left, oldest first, so overlapping scans never
   handle one battle at once and a larger backlog drains over the next scans;
3. for each: re-scores a candidate with REFEREE_CONFIRM_MODEL and applies the confirmation rule
   (`lib.referee.confirm`): confirmed, it becomes a breakthrough pending review and pending Slack
   delivery; unconfirmed, it is kept with the reason and never alerted. Re-scores an audited
   battle with REFEREE_MODEL. Extracts a breakthrough's defining moment. Delivers its Slack alert
   when SLACK_WEBHOOK_URL is set (without it, alerts wait and the rest of the work goes on);
4. posts a drift alert, at most once a day, when the audit pairs of the last 7 days differ by
   more than REFEREE_DRIFT_ALERT points on average.

Each task is its own state in SQL and advances once: a confirmation, an audit or a moment is
recorded once; an alert is recorded only after Slack answers 2xx, stays pending on 429/5xx or
network errors, and fails for good (with Slack's reason) on other 4xx. A model call that fails
for this battle's sake counts an attempt; after `MAX_ATTEMPTS` its model work is given up (shown
in `python -m lib status`). A scan with model work takes a block of the daily and monthly budget
(`lib.spending`), like a run; when the budget is spent its model work waits (alerts still go out).
Inside that block the re-scores spend under REFEREE_RESCORE_CAP_USD per scan and the extraction
under `SCOUT_COST_CAP_USD`; both are reserved attempt by attempt like every model call.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import ExitStack
from decimal import Decimal

from lib import referee, slack
from lib.budget import COST_CAP_REACHED, CostCap, price_for
from lib.config import Settings
from lib.llm import LLM, BudgetExceeded, CallContext, DeadlineExceeded, LLMError, Role, Stopped, Usage
from lib.log import log
from lib.redact import redact
from lib.referee import render_transcript
from lib.spending import BudgetReached, Paused, spend
from lib.store import JSONObject, Store, Unavailable
from lib.store.queries import Queries
from lib.store.scout_queries import Rescore, ScoutWork
from lib.text import clean_model_text

SCAN_LIMIT = 20
LEASE_SECONDS = 120
# The scout's own spending cap per scan for extraction: it is small, a runaway loop must not be.
SCOUT_COST_CAP_USD = Decimal("0.50")
MOMENT_MAX_TOKENS = 400
# Model work on one battle is given up after this many failed calls (its last error is kept).
MAX_ATTEMPTS = 5
# The drift alert needs this many audit pairs in the window: one pair says little.
DRIFT_MIN_PAIRS = 5
# Below this much time left, a scan stops starting work and releases what it leased.
MIN_TIME_S = 0.5

MOMENT_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "defining_moment", "strict": True, "schema": {
        "type": "object", "additionalProperties": False,
        "required": ["defining_moment", "tactical_snippet"],
        "properties": {"defining_moment": {"type": "string"}, "tactical_snippet": {"type": "string"}}}},
}
MOMENT_PROMPT = (
    "You study winning sales calls. From this transcript between an acquisitions agent (CLOSER) and a "
    "homeowner (SELLER), quote as defining_moment the two or three sentences of the CLOSER that beat the "
    "seller's hardest objection, exactly as said. As tactical_snippet, write one reusable instruction "
    "(at most two sentences, imperative) that another agent could follow to repeat the win."
)


def extract_moment(llm: LLM, ctx: CallContext, model: str, battle: ScoutWork) -> tuple[str, str]:
    reply = llm.chat(ctx, Role.SCOUT, model, [{"role": "system", "content": MOMENT_PROMPT},
                                              {"role": "user", "content": render_transcript(battle["transcript"])}],
                     MOMENT_MAX_TOKENS, MOMENT_FORMAT)
    try:
        data = json.loads(reply.text)
        moment, snippet = data["defining_moment"].strip(), data["tactical_snippet"].strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LLMError("the scout model's answer was not the requested JSON") from None
    if not moment or not snippet:
        raise LLMError("the scout model left the defining moment or the snippet empty")
    return moment, snippet


def scan(settings: Settings, store: Store, llm: LLM, deadline: float) -> JSONObject:
    """One scan; returns what it did (see `Scan.result`)."""
    for model in (settings.referee_confirm_model, settings.referee_model, settings.scout_model):
        price_for(model, settings.model_prices)  # a model with no price is refused before anything is leased
    queries = Queries(store)
    triage = queries.triage_battles(settings.scout_threshold, settings.referee_audit_share,
                                    referee.CONSISTENCY_DAYS, deadline=deadline)
    lease = queries.lease_scout_work(SCAN_LIMIT, LEASE_SECONDS, slack=bool(settings.slack_webhook_url),
                                     max_attempts=MAX_ATTEMPTS, deadline=deadline)
    work = Scan(settings, queries, llm, deadline)
    try:
        with ExitStack() as money:
            if any(work.needs_model(battle) for battle in lease["items"]):
                try:
                    work.hold(money.enter_context(spend(settings, store, "scout", work.block_cap, deadline,
                                                        llm.simulated)))
                except (BudgetReached, Paused) as exc:
                    work.errors.append(f"{exc}: model work waits for the next scan (alerts still go out)")
            for index, battle in enumerate(lease["items"]):
                if deadline - time.monotonic() < MIN_TIME_S:
                    work.errors.append(f"no time left: {len(lease['items']) - index} leased battle(s) left for "
                                       "the next scan")
                    break
                work.handle_or_count(battle)
    finally:  # whatever happened, the leases go back (a lease left behind lapses in LEASE_SECONDS)
        for battle in lease["items"]:
            queries.release_scout_lease(battle["id"], deadline=deadline + 1)
    work.check_drift()
    result = work.result(backlog=lease["due"] - work.processed)
    result["triaged"] = triage["triaged"]
    log("scout_scan", processed=result["processed"], breakthroughs=len(result["breakthroughs"]),
        unconfirmed=len(result["unconfirmed"]), audited=result["audited"], moments=result["moments"],
        alerted=result["alerted"], backlog=result["backlog"], cost=result["cost"], errors=len(result["errors"]))
    return result


class Scan:
    def __init__(self, settings: Settings, queries: Queries, llm: LLM, deadline: float):
        self.settings = settings
        self.queries = queries
        self.llm = llm
        self.deadline = deadline
        self.block_cap = settings.referee_rescore_cap_usd + SCOUT_COST_CAP_USD
        # Set by `hold` once the scan has its block of the budget; without one, no model call.
        self.rescore_ctx: CallContext | None = None
        self.extract_ctx: CallContext | None = None
        self.processed = 0
        self.confirmed: list[JSONObject] = []
        self.unconfirmed: list[JSONObject] = []
        self.audited = 0
        self.moments = 0
        self.alerted = 0
        self.slack_failed = 0
        self.drift_alerted = False
        self.errors: list[str] = []
        self._budget_reported: set[int] = set()

    def hold(self, block: CostCap) -> None:
        """The scan's block of the budget; the per-scan caps are inner limits inside it."""
        self.rescore_ctx = CallContext.for_cap(CostCap(self.settings.referee_rescore_cap_usd, parent=block),
                                               self.deadline)
        self.extract_ctx = CallContext.for_cap(CostCap(SCOUT_COST_CAP_USD, parent=block), self.deadline)

    def needs_model(self, battle: ScoutWork) -> bool:
        return battle["attempts"] < MAX_ATTEMPTS and (battle["confirmStatus"] == "pending"
                                                      or battle["auditStatus"] == "pending"
                                                      or (bool(battle["breakthrough"])
                                                          and not battle["definingMoment"]))

    def handle(self, battle: ScoutWork) -> None:
        self.processed += 1
        if battle["confirmStatus"] == "pending" and self._may_call(battle):
            self._confirm(battle)
        if battle["auditStatus"] == "pending" and self._may_call(battle):
            self._audit(battle)
        if battle["breakthrough"] and not battle["definingMoment"] and self._may_call(battle):
            self._extract(battle)
        if battle["breakthrough"] and battle["slackStatus"] == "pending" and self.settings.slack_webhook_url:
            self._alert(battle)

    def handle_or_count(self, battle: ScoutWork) -> None:
        """`handle`, where an unexpected error is this battle's failed attempt, not the scan's end: a
        battle that always fails (the oldest, leased first) must not block every later one, nor be
        paid for again forever. The database out of reach ends the scan (the leases go back)."""
        try:
            self.handle(battle)
        except Unavailable:
            raise
        except Exception as exc:
            log("scout_battle_failed", level=logging.WARNING, battleId=battle["id"], error=type(exc).__name__)
            cause = f"unexpected {type(exc).__name__}: {clean_model_text(redact(str(exc)))[:200]}"
            attempts = self.queries.record_scout_error(battle["id"], cause, deadline=self.deadline + 1)
            retry = "retried next scan" if attempts < MAX_ATTEMPTS else "given up"
            self.errors.append(f"battle {battle['id']}: {cause} (attempt {attempts} of {MAX_ATTEMPTS}, {retry})")

    def _may_call(self, battle: ScoutWork) -> bool:
        return battle["attempts"] < MAX_ATTEMPTS and self.rescore_ctx is not None

    def _rescore(self, battle: ScoutWork, model: str, nonce: int, what: str) -> Rescore | None:
        usage = Usage()
        ctx = self.rescore_ctx
        if ctx is None:  # no block of the budget: `_may_call` let nothing through
            return None
        try:
            verdict = referee.score(self.llm, ctx, model, battle["transcript"], usage, nonce=nonce,
                                    seed=battle["id"])
        except LLMError as exc:
            self._failed(battle, what, exc, ctx, "REFEREE_RESCORE_CAP_USD")
            return None
        return Rescore(model, verdict.total, verdict.scores, usage.cost)

    def _confirm(self, battle: ScoutWork) -> None:
        model = self.settings.referee_confirm_model
        rescore = self._rescore(battle, model, referee.CONFIRM_NONCE, "confirmation")
        if rescore is None:
            return
        first = Decimal(str(battle["score"]))
        decision = referee.confirm(first, rescore.score, self.settings.scout_threshold,
                                   self.settings.referee_confirm_margin)
        # With the same model, the confirmation is also an independent audit pair: no second call.
        as_audit = battle["auditStatus"] == "pending" and model == self.settings.referee_model
        if not self.queries.record_confirmation(battle["id"], rescore, decision.confirmed, decision.reason,
                                                as_audit=as_audit, deadline=self.deadline + 1):
            return
        if as_audit:
            battle["auditStatus"] = "done"
            self.audited += 1
        item: JSONObject = {"battleId": battle["id"], "persona": battle["persona"], "score": battle["score"],
                "confirmScore": float(rescore.score)}
        if decision.confirmed:
            battle.update({"breakthrough": "pending_review", "slackStatus": "pending",
                           "confirmScore": float(rescore.score)})
            self.confirmed.append(item)
        else:
            self.unconfirmed.append({**item, "reason": decision.reason})

    def _audit(self, battle: ScoutWork) -> None:
        rescore = self._rescore(battle, self.settings.referee_model, referee.AUDIT_NONCE, "audit re-score")
        if rescore is not None and self.queries.record_audit(battle["id"], rescore, deadline=self.deadline + 1):
            battle["auditStatus"] = "done"
            self.audited += 1

    def _extract(self, battle: ScoutWork) -> None:
        ctx = self.extract_ctx
        if ctx is None:  # no block of the budget: `_may_call` let nothing through
            return
        try:
            moment, snippet = extract_moment(self.llm, ctx, self.settings.scout_model, battle)
        except LLMError as exc:
            self._failed(battle, "defining moment", exc, ctx, None)
            return
        self.queries.record_defining_moment(battle["id"], moment, snippet, deadline=self.deadline + 1)
        battle.update({"definingMoment": moment, "tacticalSnippet": snippet})
        self.moments += 1

    def _failed(self, battle: ScoutWork, what: str, exc: LLMError, ctx: CallContext, cap_setting: str | None) -> None:
        """Reports a failed model call; only a failure of this battle's own counts an attempt."""
        if isinstance(exc, BudgetExceeded):
            if id(ctx) not in self._budget_reported:  # once per cap, not once per battle
                self._budget_reported.add(id(ctx))
                # The day's or month's budget speaks for itself; only the scan's own cap takes a hint.
                own_cap = str(exc).startswith(COST_CAP_REACHED)
                hint = f" (raise {cap_setting})" if cap_setting and own_cap else ""
                self.errors.append(f"{what} for battle {battle['id']}: {exc}{hint}; the rest waits for the next scan")
            return
        if isinstance(exc, (DeadlineExceeded, Stopped)):
            self.errors.append(f"{what} for battle {battle['id']}: {exc} (retried next scan)")
            return
        attempts = self.queries.record_scout_error(battle["id"], f"{what}: {exc}", deadline=self.deadline + 1)
        battle["attempts"] = attempts
        retry = "retried next scan" if attempts < MAX_ATTEMPTS else "given up"
        self.errors.append(f"{what} for battle {battle['id']}: {exc} (attempt {attempts} of {MAX_ATTEMPTS}, {retry})")

    def _alert(self, battle: ScoutWork) -> None:
        timeout = self.deadline - time.monotonic()
        if timeout < MIN_TIME_S:
            self.errors.append(f"alert for battle {battle['id']}: no time left (retried next scan)")
            return
        failure = slack.send(self.settings, slack.breakthrough_message(battle, self.settings.app_url),
                             timeout=min(5.0, timeout), battleId=battle["id"])
        if failure:
            if not failure.permanent:
                self.errors.append(f"alert for battle {battle['id']}: {failure} (retried next scan)")
            else:
                self.queries.mark_alert_failed(battle["id"], str(failure), deadline=self.deadline + 1)
                self.slack_failed += 1
                self.errors.append(f"alert for battle {battle['id']}: {failure}; not retried")
            return
        if self.queries.mark_alerted(battle["id"], deadline=self.deadline + 1):
            self.alerted += 1

    def check_drift(self) -> None:
        """One Slack alert a day at most while the referee disagrees with itself past the limit."""
        if not self.settings.slack_webhook_url or self.deadline - time.monotonic() < MIN_TIME_S:
            return
        figures = self.queries.referee_consistency(referee.CONSISTENCY_DAYS, self.settings.scout_threshold,
                                                   deadline=self.deadline)
        limit = self.settings.referee_drift_alert
        if (figures["pairs"] < DRIFT_MIN_PAIRS or figures["meanAbsDiff"] is None
                or Decimal(str(figures["meanAbsDiff"])) <= limit):
            return
        claim = self.queries.claim_drift_alert(figures["meanAbsDiff"], figures["pairs"], deadline=self.deadline)
        if claim is None:
            return
        failure = slack.send(self.settings,
                             slack.drift_message(figures, limit, self.settings.scout_threshold, self.settings.app_url),
                             timeout=min(5.0, max(0.1, self.deadline - time.monotonic())))
        if failure:
            if not failure.permanent:  # a transient failure frees today's slot; a permanent one keeps it
                self.queries.release_drift_alert(claim, deadline=self.deadline + 1)
            self.errors.append(f"drift alert: {failure}")
            return
        self.drift_alerted = True

    def result(self, backlog: int) -> JSONObject:
        """What this scan did.

        `processed`: battles it worked on; `breakthroughs`: candidates it confirmed, each with both
        scores; `unconfirmed`: candidates it did not confirm, with the reason; `audited`: audit
        re-scores recorded; `moments`: defining moments extracted; `alerted`: Slack alerts
        delivered; `slackFailed`: alerts Slack refused for good; `driftAlerted`; `backlog`:
        battles with work left that it did not reach; `cost`: USD it spent on model calls.
        """
        cost = sum((ctx.cap.committed for ctx in (self.rescore_ctx, self.extract_ctx) if ctx is not None), Decimal(0))
        return {"processed": self.processed, "breakthroughs": self.confirmed, "unconfirmed": self.unconfirmed,
                "audited": self.audited, "moments": self.moments, "alerted": self.alerted,
                "slackFailed": self.slack_failed, "driftAlerted": self.drift_alerted, "backlog": max(0, backlog),
                "cost": float(cost), "errors": self.errors}
