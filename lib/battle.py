"""One battle: the closer and a persona take turns, then the referee scores the transcript.

Each side sees the whole conversation from its own point of view (its own lines as `assistant`,
the other side's as `user`). The referee answers in a strict JSON schema; the 0–100 total is
computed here from the sub-scores and `CRITERIA`'s weights, never taken from the model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

from lib.llm import CallContext, LLMError, Role, Usage

# Referee criteria and their weights (summing to 1): the one place the total is defined.
CRITERIA = {
    "rapport": Decimal("0.15"),
    "discovery": Decimal("0.20"),
    "objection_handling": Decimal("0.30"),
    "value_framing": Decimal("0.15"),
    "closing": Decimal("0.20"),
}
ACCEPT_MARK = "[ACCEPT]"
HANG_UP_MARK = "[HANG UP]"
REFEREE_MAX_TOKENS = 600

REFEREE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "battle_verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scores", "feedback", "winning_rebuttal", "seller_agreed"],
            "properties": {
                "scores": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(CRITERIA),
                    # The range is in the description, not minimum/maximum: strict mode on some models
                    # refuses numeric constraints. parse_verdict enforces it.
                    "properties": {name: {"type": "integer", "description": "0 to 100"} for name in CRITERIA},
                },
                "feedback": {"type": "string"},
                "winning_rebuttal": {"type": "string"},
                "seller_agreed": {"type": "boolean"},
            },
        },
    },
}

REFEREE_PROMPT = (
    "You are a strict, fair sales coach judging a phone call between an acquisitions agent (CLOSER) "
    "and a homeowner (SELLER). Score each criterion from 0 to 100: rapport, discovery (learning the "
    "seller's real situation), objection_handling (answering the hardest objection, not dodging it), "
    "value_framing (a clear, honest case for the offer) and closing (a concrete, fair next step). "
    "Reserve scores above 90 for exceptional work. Give short feedback, quote the closer's single "
    "most effective line as winning_rebuttal (empty if none), and say whether the seller agreed."
)

PERSONA_RULES = (
    f"When you truly accept the offer, end your reply with {ACCEPT_MARK}. If you end the call, end "
    f"your reply with {HANG_UP_MARK}."
)


class MalformedVerdict(ValueError):
    pass


@dataclass
class Verdict:
    scores: dict
    total: Decimal
    feedback: str
    winning_rebuttal: str
    seller_agreed: bool


@dataclass
class BattleState:
    """A battle as it goes; the runner reads it to save a battle it has to cut short."""

    id: str
    persona: dict
    transcript: list = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    verdict: Verdict | None = None
    status: str = "running"
    error: str | None = None

    def snapshot(self) -> tuple[list, Usage]:
        """Copies of the transcript and usage so far (the caller holds the run's lock)."""
        return list(self.transcript), Usage(**vars(self.usage))


def count_turns(transcript: list) -> int:
    """A turn is one exchange: the closer speaks, the seller answers."""
    return sum(1 for line in transcript if line["speaker"] == "persona")


def total_score(scores: dict) -> Decimal:
    return sum(CRITERIA[name] * Decimal(scores[name]) for name in CRITERIA).quantize(Decimal("0.01"))


def parse_verdict(text: str) -> Verdict:
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise MalformedVerdict("referee answer is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("scores"), dict):
        raise MalformedVerdict("referee answer has no scores object")
    scores = data["scores"]
    for name in CRITERIA:
        value = scores.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise MalformedVerdict(f"referee score {name!r} is not an integer from 0 to 100")
    for name in ("feedback", "winning_rebuttal"):
        if not isinstance(data.get(name), str):
            raise MalformedVerdict(f"referee {name!r} is not a string")
    if not isinstance(data.get("seller_agreed"), bool):
        raise MalformedVerdict("referee 'seller_agreed' is not a boolean")
    scores = {name: scores[name] for name in CRITERIA}
    return Verdict(scores, total_score(scores), data["feedback"], data["winning_rebuttal"], data["seller_agreed"])


TACTICS_HEADING = "## Proven tactics (promoted from training)"


def closer_system_prompt(base_prompt: str, tactics: list[dict]) -> str:
    """A version's closer prompt: the base prompt plus its tactics, in the version's order."""
    if not tactics:
        return base_prompt
    lines = "\n".join(f"- {t['tactic_text']}" for t in tactics)
    return f"{base_prompt.rstrip()}\n\n{TACTICS_HEADING}\n{lines}\n"


def persona_system_prompt(persona: dict) -> str:
    patterns = "\n".join(f"- {p}" for p in persona.get("attack_patterns") or [])
    traits = ", ".join(f"{k}: {v}" for k, v in (persona.get("characteristics") or {}).items())
    return (f"{persona['system_prompt']}\n\nCharacteristics: {traits}\n\nAttack patterns (use them "
            f"naturally):\n{patterns}\n\n{PERSONA_RULES}")


def _view(transcript: list, me: str) -> list[dict]:
    return [{"role": "assistant" if line["speaker"] == me else "user", "content": line["text"]}
            for line in transcript]


def render_transcript(transcript: list) -> str:
    return "\n".join(f"{'CLOSER' if line['speaker'] == 'closer' else 'SELLER'}: {line['text']}"
                     for line in transcript)


@dataclass
class Models:
    closer: str
    persona: str
    referee: str
    max_turns: int
    max_tokens: int


def fight(llm, ctx: CallContext, models: Models, closer_prompt: str, state: BattleState,
          on_turn=None) -> None:
    """Runs the conversation and the referee, recording into `state` as it goes.

    `on_turn(state)` is called after each completed turn (the runner saves progress there).

    Raises `LLMError` (including `Stopped`, `BudgetExceeded`, `DeadlineExceeded`) with the
    transcript so far kept in `state`; a malformed referee answer is retried once, then the
    battle fails.
    """
    persona_prompt = persona_system_prompt(state.persona)
    opening = {"role": "user", "content": "(The homeowner picks up the phone.) Hello?"}
    for _ in range(models.max_turns):
        closer = _say(llm, ctx, state, Role.CLOSER, models.closer, models.max_tokens,
                      [{"role": "system", "content": closer_prompt}, opening, *_view(state.transcript, "closer")])
        state.transcript.append({"speaker": "closer", "text": closer})
        seller = _say(llm, ctx, state, Role.SELLER, models.persona, models.max_tokens,
                      [{"role": "system", "content": persona_prompt}, *_view(state.transcript, "persona")])
        ended = ACCEPT_MARK in seller or HANG_UP_MARK in seller
        text = seller.replace(ACCEPT_MARK, "").replace(HANG_UP_MARK, "").strip()
        state.transcript.append({"speaker": "persona", "text": text or "(hangs up)"})
        if on_turn is not None:
            on_turn(state)
        if ended:
            break
    messages = [{"role": "system", "content": REFEREE_PROMPT},
                {"role": "user", "content": render_transcript(state.transcript)}]
    problem = None
    for _ in range(2):
        answer = _say(llm, ctx, state, Role.REFEREE, models.referee, REFEREE_MAX_TOKENS, messages, REFEREE_FORMAT)
        try:
            state.verdict = parse_verdict(answer)
            return
        except MalformedVerdict as exc:
            problem = str(exc)
    raise LLMError(f"malformed referee answer twice: {problem}")


def _say(llm, ctx, state, role, model, max_tokens, messages, response_format=None) -> str:
    # The battle id seeds a transport that wants one (the simulator); the API ignores it.
    reply = llm.chat(ctx, role, model, messages, max_tokens, response_format, seed=state.id)
    state.usage.add(reply.usage)
    return reply.text.strip()
