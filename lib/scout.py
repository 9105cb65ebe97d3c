"""The Tactical Scout: flags breakthroughs, extracts the winning moment, alerts Slack.

A scan flags new breakthroughs and leases its work in SQL, so overlapping scans never handle one
battle at once. A failed extraction leaves the breakthrough flagged and is retried on the next scan; an
alert is recorded only after Slack answers 2xx, so a failed alert is retried and a delivered one
is never repeated.
"""
from __future__ import annotations

import json
import time
from decimal import Decimal

from lib import slack
from lib.battle import render_transcript
from lib.llm import CallContext, LLMError, Role
from lib.log import log
from lib.store.queries import Queries

SCAN_LIMIT = 20
LEASE_SECONDS = 120
# The scout's own spending cap per scan: extraction is small, a runaway loop must not be.
SCOUT_COST_CAP_USD = Decimal("0.50")
MOMENT_MAX_TOKENS = 400

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


def extract_moment(llm, ctx: CallContext, model: str, battle: dict) -> tuple[str, str]:
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


def scan(settings, store, llm, deadline: float) -> dict:
    """One scan; returns `{"processed", "breakthroughs", "alerted", "errors"}`."""
    queries = Queries(store)
    queries.flag_breakthroughs(settings.scout_threshold, deadline=deadline)
    work = queries.lease_scout_work(SCAN_LIMIT, LEASE_SECONDS, deadline=deadline)
    ctx = CallContext.for_cap(SCOUT_COST_CAP_USD, deadline)
    alerted, errors, flagged = 0, [], []
    for battle in work:
        try:
            if not battle["definingMoment"]:
                try:
                    moment, snippet = extract_moment(llm, ctx, settings.scout_model, battle)
                except LLMError as exc:
                    errors.append(f"defining moment for battle {battle['id']}: {exc} (retried next scan)")
                    continue
                queries.record_defining_moment(battle["id"], moment, snippet, deadline=deadline)
                battle.update(definingMoment=moment, tacticalSnippet=snippet)
                # Reported by the scan that did the work: the one that flagged a battle may not be
                # the one that leased it (another scan can lease in between).
                flagged.append({"battleId": battle["id"], "persona": battle["persona"], "score": battle["score"]})
            if not battle["alerted"] and settings.slack_webhook_url:
                if _alert(settings, queries, battle, deadline, errors):
                    alerted += 1
        finally:
            queries.release_scout_lease(battle["id"], deadline=deadline + 1)
    log("scout_scan", processed=len(work), breakthroughs=len(flagged), alerted=alerted, errors=len(errors))
    return {"processed": len(work), "breakthroughs": flagged, "alerted": alerted, "errors": errors}


def _alert(settings, queries: Queries, battle: dict, deadline: float, errors: list) -> bool:
    timeout = deadline - time.monotonic()
    if timeout < 0.5:
        errors.append(f"alert for battle {battle['id']}: no time left (retried next scan)")
        return False
    failure = slack.send(settings, slack.breakthrough_message(battle, settings.app_url),
                         timeout=min(5.0, timeout), battleId=battle["id"])
    if failure:
        errors.append(f"alert for battle {battle['id']}: {failure} (retried next scan)")
        return False
    return queries.mark_alerted(battle["id"], deadline=deadline + 1)
