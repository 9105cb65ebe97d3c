"""The head-to-head verdict: one referee call sees both calls of a canary pair and says which went better.

A pair's score difference carries each battle's whole score noise (on bimodal totals, a deal
closed or not, a spread of about 33 points). Asked to compare the two calls directly, the referee
answers with much less noise relative to the effect, and the answer is a difference bounded in
[−1, 1]: +1 the candidate's call was better, −1 the active version's, 0 a tie. `lib.canary`
decides on it with the same betting rule and `HEAD_TO_HEAD_BETS` (stakes for a [−1, 1] verdict).

**Position bias is removed by the order.** Which call is shown first is a fair coin per pair
(`candidate_first`, drawn by the caller and recorded). A referee that prefers the first call it
reads (models do) then favours the candidate and the active version equally often, so with no
effect (two versions whose calls are interchangeable) the verdict's mean is exactly 0 whatever a
lean that depends only on position, which is all the rule's guarantee needs (a lean that
interacts with content, "the first unless the second is longer", is a preference the coin does
not remove).
`position_bias` measures it: the share of decisive verdicts that went to the call shown first.

The call goes through `LLM.chat` like the referee's score (`Role.REFEREE`: the same budget, cost
cap, deadline and retries); the offline simulator answers it from the two calls' hidden qualities.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from lib.llm import LLM, CallContext, LLMError, Message, Role, Usage
from lib.referee import ATTEMPTS, render_transcript

HEAD_TO_HEAD_MAX_TOKENS = 300
SCHEMA_NAME = "head_to_head"
FIRST, SECOND, TIE = "A", "B", "tie"

HEAD_TO_HEAD_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": SCHEMA_NAME,
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["better", "reason"],
            "properties": {"better": {"type": "string", "enum": [FIRST, SECOND, TIE]},
                           "reason": {"type": "string"}},
        },
    },
}

HEAD_TO_HEAD_PROMPT = (
    "You are a strict, fair sales coach. Below are two phone calls, CALL A and CALL B, between an "
    "acquisitions agent (CLOSER) and the same kind of homeowner (SELLER). Judge which closer did the "
    "better job overall: rapport, discovery of the seller's real situation, answering the hardest "
    "objection rather than dodging it, honest value framing, and a clear close. The order of the calls "
    "means nothing. Answer \"A\", \"B\", or \"tie\" only when neither is better, with a one-sentence reason."
)


class MalformedHeadToHead(ValueError):
    pass


@dataclass(frozen=True)
class HeadToHead:
    """One pair's verdict, from the candidate's side (+1 better, −1 worse, 0 tie), and what was asked."""

    verdict: int
    candidate_first: bool
    answer: str  # "A", "B" or "tie", as the referee said it

    @property
    def first_won(self) -> bool | None:
        return None if self.answer == TIE else self.answer == FIRST


def messages_for(first: list[dict[str, str]], second: list[dict[str, str]]) -> list[Message]:
    calls = f"CALL A:\n{render_transcript(first)}\n\nCALL B:\n{render_transcript(second)}"
    return [{"role": "system", "content": HEAD_TO_HEAD_PROMPT}, {"role": "user", "content": calls}]


def parse_answer(text: str) -> str:
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise MalformedHeadToHead("head-to-head answer is not JSON") from None
    better = data.get("better") if isinstance(data, dict) else None
    if not isinstance(better, str) or better not in (FIRST, SECOND, TIE):
        raise MalformedHeadToHead(f"head-to-head 'better' is not one of {FIRST!r}, {SECOND!r}, {TIE!r}")
    return better


def judge(llm: LLM, ctx: CallContext, model: str, candidate: list[dict[str, str]], active: list[dict[str, str]],
          candidate_first: bool, usage: Usage, seed: str | None = None) -> HeadToHead:
    """Asks which of the pair's two calls went better, the candidate's shown first when
    `candidate_first` (a fair coin the caller draws and records). Each call's usage is added to
    `usage` as it is paid. `seed` is the two battles' ids joined by "|" (the simulator reads them).

    Raises `LLMError` (a malformed answer twice included; `BudgetExceeded`, `DeadlineExceeded`
    and `Stopped` as the client raises them)."""
    first, second = (candidate, active) if candidate_first else (active, candidate)
    messages = messages_for(first, second)
    problem = None
    for _ in range(ATTEMPTS):
        reply = llm.chat(ctx, Role.REFEREE, model, messages, HEAD_TO_HEAD_MAX_TOKENS, HEAD_TO_HEAD_FORMAT,
                         seed=seed)
        usage.add(reply.usage)
        try:
            answer = parse_answer(reply.text)
        except MalformedHeadToHead as exc:
            problem = str(exc)
            continue
        if answer == TIE:
            return HeadToHead(0, candidate_first, answer)
        candidate_won = (answer == FIRST) == candidate_first
        return HeadToHead(1 if candidate_won else -1, candidate_first, answer)
    raise LLMError(f"malformed head-to-head answer twice: {problem}")


def position_bias(verdicts: list[HeadToHead]) -> float | None:
    """The share of decisive verdicts that went to the call shown first (0.5: no bias); None without any."""
    decisive = [v.first_won for v in verdicts if v.first_won is not None]
    return sum(decisive) / len(decisive) if decisive else None


# The stakes `lib.canary` mixes for a verdict in [−1, 1], (c, weight): a 5-point effect makes the
# candidate's call the better one about 7 times in 10 (simulated), a mean verdict near 0.37, for
# which the best constant stake is about 0.4; the smaller ones keep power for smaller effects.
HEAD_TO_HEAD_BETS = ((0.4, 0.5), (0.2, 0.3), (0.1, 0.2))
HEAD_TO_HEAD_BOUND = 1.0
