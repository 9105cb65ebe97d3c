"""The proposer (`PROPOSER_MODEL`, with `AUTO_PROPOSE=all`): a reflective step that learns from failures.

Every `PROPOSER_EVERY` completed battles (the turn is claimed in the database, so parallel runs
take one turn; it is given back when its call brings no answer, so the next run takes it), one call
reads the lowest-scoring battles since its last turn with the referee's feedback and sub-scores,
the active tactics with their measured contributions, and the outcomes of past proposals, and
answers with one change: a new tactic or the removal of one, with its reasoning (a strict JSON
schema). That is GEPA's reflective mutation (Agrawal et al. 2025, arXiv 2507.19457): the learning
signal is the failures' text, not only their scores; what it proposes then faces the canary like
any other proposal. Its call goes through the LLM client under its own cost cap, like the scout's.
"""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

from lib.config import Settings
from lib.llm import LLM, CallContext, LLMError, Role
from lib.log import log
from lib.referee import render_transcript
from lib.spending import spend
from lib.store import StoreError
from lib.store.proposal_queries import Proposal, ProposalQueries, ProposerTurn

PROPOSER_COST_CAP_USD = Decimal("0.25")
PROPOSER_MAX_TOKENS = 600
WORST_BATTLES = 5
# Each transcript is cut to this many characters: five of them stay within one prompt.
TRANSCRIPT_CHARS = 4000

PROPOSAL_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "closer_proposal", "strict": True, "schema": {
        "type": "object", "additionalProperties": False,
        "required": ["kind", "tactic", "remove_tactic_id", "reasoning"],
        "properties": {"kind": {"type": "string", "enum": ["add", "remove"]},
                       "tactic": {"type": "string"},
                       "remove_tactic_id": {"type": "string"},
                       "reasoning": {"type": "string"}}}},
}
PROPOSER_PROMPT = (
    "You improve the system prompt of a phone acquisitions agent (the CLOSER) who calls homeowners. You are "
    "shown the calls that went worst recently, each with the referee's feedback and sub-scores, the tactics "
    "the closer follows now with the score difference each made when a canary measured it, and what happened "
    "to earlier proposals. Diagnose what went wrong in the failures, then propose ONE change: either kind "
    "\"add\" with one new reusable tactic (at most two imperative sentences, not a repeat of a current or "
    "earlier one) and remove_tactic_id \"\", or kind \"remove\" with the id of a current tactic that hurts "
    "and tactic \"\". Explain the reasoning in two or three sentences."
)


def context_text(turn: ProposerTurn) -> str:
    """What the proposer reads, as one user message."""
    worst = "\n\n".join(
        f"--- battle {b['id']}: score {b['score']}, sub-scores {json.dumps(b['scores'] or {})}\n"
        f"Referee feedback: {b['feedback'] or '-'}\n{render_transcript(b['transcript'])[:TRANSCRIPT_CHARS]}"
        for b in turn["worst"])
    tactics = "\n".join(f"- [{t['id']}] {t['text']} (measured: "
                        f"{'not measured' if t['contribution'] is None else f'{t['contribution']:+} points'})"
                        for t in turn["tactics"]) or "(none)"
    past = "\n".join(f"- {p['kind']} \"{p['text']}\": {p['outcome'].replace('_', ' ')}"
                     + (f" ({p['reason']})" if p.get("reason") else "") for p in turn["past"]) or "(none)"
    return (f"WORST RECENT CALLS\n{worst or '(none)'}\n\nCURRENT TACTICS\n{tactics}\n\n"
            f"PAST PROPOSALS AND OUTCOMES\n{past}")


def parse(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
        kind, tactic, remove_id, reasoning = (str(data["kind"]), data["tactic"].strip(),
                                              data["remove_tactic_id"].strip(), data["reasoning"].strip())
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LLMError("the proposer model's answer was not the requested JSON") from None
    if kind not in ("add", "remove") or (kind == "add" and not tactic) or (kind == "remove" and not remove_id):
        raise LLMError(f"the proposer model's answer names no {'tactic' if kind == 'add' else 'tactic to remove'}")
    return {"kind": kind, "tactic": str(tactic), "removeTacticId": str(remove_id), "reasoning": str(reasoning)}


def take_turn(settings: Settings, queries: ProposalQueries, llm: LLM, *, deadline: float,
              errors: list[str]) -> Proposal | None:
    """The proposer's turn, when due: one call, one proposal queued (or refused by the tactic checks,
    said in `errors`). Returns the queued proposal, or None. Without PROPOSER_MODEL, nothing."""
    if not settings.proposer_model:
        return None
    turn = queries.proposer_turn(settings.proposer_every, WORST_BATTLES, deadline=deadline)
    if turn is None:
        return None
    try:
        messages = [{"role": "system", "content": PROPOSER_PROMPT}, {"role": "user", "content": context_text(turn)}]
        model = settings.proposer_model
        # The turn takes its block of the daily and monthly budget, like a run (BudgetReached when spent).
        with spend(settings, queries.store, "proposer", PROPOSER_COST_CAP_USD, deadline, llm.simulated) as block:
            reply = llm.chat(CallContext.for_cap(block, deadline), Role.PROPOSER, model, messages,
                             PROPOSER_MAX_TOKENS, PROPOSAL_FORMAT)
    except (LLMError, StoreError) as exc:  # no answer: the turn goes back, and the next run takes it
        errors.append(f"Proposer failed: {exc}")
        log("proposer_failed", level=logging.WARNING, error=str(exc))
        give_back(queries, turn, deadline)
        return None
    # An answer was paid for: an unusable one spends the turn like a refused proposal, so a model
    # that keeps answering badly costs one call per PROPOSER_EVERY battles, not one a run.
    try:
        answer = parse(reply.text)
    except LLMError as exc:
        errors.append(f"Proposer failed: {exc} (${reply.usage.cost} spent; the next turn comes after "
                      f"PROPOSER_EVERY battles)")
        log("proposer_failed", level=logging.WARNING, error=str(exc))
        return None
    ids = {str(t["id"]) for t in turn["tactics"]}
    if answer["kind"] == "remove" and answer["removeTacticId"] not in ids:
        errors.append(f"Proposer refused: it named {answer['removeTacticId'][:40]!r}, not an active tactic's id "
                      f"(${reply.usage.cost} spent)")
        return None
    # A refused proposal is kept too (refused, with the reason): its call was paid for, and the
    # proposer reads it among the past outcomes.
    result = queries.propose(answer["kind"], text=answer["tactic"] if answer["kind"] == "add" else None,
                             tactic_id=answer["removeTacticId"] if answer["kind"] == "remove" else None,
                             source="proposer", proposed_by=f"proposer ({settings.proposer_model})",
                             reasoning=answer["reasoning"], cost_usd=reply.usage.cost, keep_refused=True,
                             deadline=deadline)
    proposal = result["proposal"]
    if proposal["status"] == "refused":
        errors.append(f"Proposer's proposal {result['message']}")
        log("proposer_refused", proposalId=proposal["id"], reason=proposal["outcome"])
        return None
    log("proposer_proposed", proposalId=proposal["id"], kind=answer["kind"], cost=str(reply.usage.cost))
    return proposal


def give_back(queries: ProposalQueries, turn: ProposerTurn, deadline: float) -> None:
    """A turn whose call brought no answer is given back: the next run takes it, not one
    PROPOSER_EVERY battles later. A failure to give it back only delays the next turn (logged)."""
    try:
        # Past the deadline too: like a spend's settlement, the claim must not outlive the failure.
        if queries.give_back_proposer_turn(turn, deadline=max(deadline, time.monotonic()) + 1):
            log("proposer_turn_given_back")
    except StoreError as exc:
        log("proposer_give_back_failed", level=logging.WARNING, error=str(exc))
