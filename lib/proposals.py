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
from lib.log import log
from lib.store import StoreError
from lib.store.proposal_queries import ProposalQueries

SOURCES_OF = {"off": (), "breakthroughs": ("breakthrough",), "all": ("breakthrough", "proposer")}


def after_run(settings, store, llm, *, deadline: float, simulated: bool = False) -> dict:
    """The loop's step after a run (and its canary look). Never raises: what failed is returned in
    `errors` for the run to record. Returns `{"queued", "proposed", "taken", "refused", "errors"}`."""
    queries = ProposalQueries(store)
    result: dict = {"queued": 0, "proposed": None, "taken": None, "refused": [], "errors": []}
    sources = SOURCES_OF[settings.auto_propose]
    try:
        if "proposer" in sources and settings.proposer_model:
            from lib import proposer  # the proposer's prompt and schema load only where it runs

            result["proposed"] = proposer.take_turn(settings, queries, llm, deadline=deadline,
                                                    errors=result["errors"])
        step = queries.step(settings.max_active_tactics, "breakthrough" in sources, deadline=deadline)
    except StoreError as exc:  # the queue stays as it was: the next run's step tries again
        result["errors"].append(f"Proposal queue step failed: {exc}")
        log("proposals_failed", level=logging.WARNING, error=str(exc))
        return result
    result.update(queued=step["queued"], taken=step["taken"], refused=step["refused"])
    if step["taken"]:
        log("proposal_taken", proposalId=step["taken"]["id"], versionId=step["taken"]["versionId"])
    for proposal in step["entered"]:  # claimed once: each is told at most once
        failure = slack.send(settings, slack.proposal_message(proposal, settings.app_url, simulated),
                             timeout=max(0.5, min(5.0, deadline - time.monotonic())), proposalId=proposal["id"])
        if failure:
            result["errors"].append(f"Proposal #{proposal['id']} to Slack failed: {failure}")
    return result
