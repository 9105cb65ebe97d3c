"""The proposal queue and the autonomous loop (docs/versions.md, "Autonomous training").

A proposal is a change to the closer waiting for its canary (add, remove or edit a tactic); the
queue lives in PostgreSQL (lib/sql/functions/proposals.sql holds every rule), reached through
`lib.store.proposal_queries.ProposalQueries`. `after_run` is the loop's step, taken once after
every run, once the canary has looked: the proposer takes its turn (`AUTO_PROPOSE=all` with
`PROPOSER_MODEL`), then in one round trip confirmed breakthroughs enter the queue
(`AUTO_PROPOSE`), the next proposal becomes the candidate when none is under canary, and the
proposals that entered are claimed for Slack, which hears of each once.
"""
from __future__ import annotations

import logging
import time

from lib import slack
from lib.config import Settings
from lib.deadline import Deadline
from lib.llm import LLM
from lib.log import log
from lib.store import JSONObject, Store, StoreError
from lib.store.proposal_queries import ProposalQueries

# The proposer's call is made only with this long left before the response leaves, and given at
# most PROPOSER_MAX_S; Slack messages of entries take at most ALERT_MAX_S, like a canary decision's.
PROPOSER_MIN_S, PROPOSER_MAX_S = 15.0, 60.0
ALERT_MAX_S = 5.0
SOURCES_OF = {"off": (), "breakthroughs": ("breakthrough",), "all": ("breakthrough", "proposer")}


def after_run(settings: Settings, store: Store, llm: LLM, *, run_deadline: Deadline, respond_by: Deadline,
              simulated: bool, errors: list[str]) -> JSONObject:
    """The loop's step after a run (and its canary look), called by `lib.followups.follow_up`.
    Never raises: what failed is added to `errors`. Returns `{"queued", "proposed", "taken",
    "refused"}`. The proposer's call needs time: it waits for a run that leaves PROPOSER_MIN_S
    before `respond_by` (the CLI always does), and its turn is not claimed until then."""
    queries = ProposalQueries(store)
    writes_by = run_deadline.for_writes()
    result: JSONObject = {"queued": 0, "proposed": None, "taken": None, "refused": []}
    sources = SOURCES_OF[settings.auto_propose]
    try:
        if "proposer" in sources and settings.proposer_model and respond_by.left() >= PROPOSER_MIN_S:
            from lib import (
                proposer,  # the proposer's prompt and schema load only where it runs
            )

            calls_by = min(respond_by.at, time.monotonic() + PROPOSER_MAX_S)
            result["proposed"] = proposer.take_turn(settings, queries, llm, deadline=calls_by, errors=errors)
        step = queries.step(settings.max_active_tactics, "breakthrough" in sources, deadline=writes_by)
    except StoreError as exc:  # the queue stays as it was: the next run's step tries again
        errors.append(f"Proposal queue step failed: {exc}")
        log("proposals_failed", level=logging.WARNING, error=str(exc))
        return result
    result.update(queued=step["queued"], taken=step["taken"], refused=step["refused"])
    if step["taken"]:
        log("proposal_taken", proposalId=step["taken"]["id"], versionId=step["taken"]["versionId"])
    for proposal in step["entered"]:  # claimed once: each is told at most once
        failure = slack.send(settings, slack.proposal_message(proposal, settings.app_url, simulated),
                             timeout=run_deadline.for_alert(ALERT_MAX_S), proposalId=proposal["id"])
        if failure:
            errors.append(f"Proposal #{proposal['id']} to Slack failed: {failure}")
    return result
