"""One battle: the closer and a persona take turns, then the referee scores the transcript.

Each side sees the whole conversation from its own point of view (its own lines as `assistant`,
the other side's as `user`). The referee scores the transcript through `lib.referee.score`, the
same call the scout's re-scores make.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lib import referee
from lib.llm import LLM, CallContext, LLMError, Message, ResponseFormat, Role, Usage
from lib.referee import Verdict

ACCEPT_MARK = "[ACCEPT]"
HANG_UP_MARK = "[HANG UP]"

# One line of a transcript: `speaker` (closer or persona) and `text`.
type Line = dict[str, str]

PERSONA_RULES = (
    f"When you truly accept the offer, end your reply with {ACCEPT_MARK}. If you end the call, end "
    f"your reply with {HANG_UP_MARK}."
)


@dataclass
class BattleState:
    """A battle as it goes; the runner reads it to save a battle it has to cut short."""

    id: str
    persona: Mapping[str, Any]  # a `Persona` row, or a catalog entry (`lib.personas`) in a benchmark
    transcript: list[Line] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    verdict: Verdict | None = None
    status: str = "running"
    error: str | None = None

    def snapshot(self) -> tuple[list[Line], Usage]:
        """Copies of the transcript and usage so far (the caller holds the run's lock)."""
        return list(self.transcript), Usage(**vars(self.usage))


def count_turns(transcript: list[Line]) -> int:
    """A turn is one exchange: the closer speaks, the seller answers."""
    return sum(1 for line in transcript if line["speaker"] == "persona")


TACTICS_HEADING = "## Proven tactics (promoted from training)"


def closer_system_prompt(base_prompt: str, tactics: list[dict[str, str]]) -> str:
    """A version's closer prompt: the base prompt plus its tactics, in the version's order."""
    if not tactics:
        return base_prompt
    lines = "\n".join(f"- {t['tactic_text']}" for t in tactics)
    return f"{base_prompt.rstrip()}\n\n{TACTICS_HEADING}\n{lines}\n"


def persona_system_prompt(persona: Mapping[str, Any]) -> str:
    patterns = "\n".join(f"- {p}" for p in persona.get("attack_patterns") or [])
    traits = ", ".join(f"{k}: {v}" for k, v in (persona.get("characteristics") or {}).items())
    return (f"{persona['system_prompt']}\n\nCharacteristics: {traits}\n\nAttack patterns (use them "
            f"naturally):\n{patterns}\n\n{PERSONA_RULES}")


def _view(transcript: list[Line], me: str) -> list[Message]:
    return [{"role": "assistant" if line["speaker"] == me else "user", "content": line["text"]}
            for line in transcript]


@dataclass
class BattleSetup:
    """Who plays a battle (the three models) and how long it may go (turns, tokens per turn)."""

    closer: str
    persona: str
    referee: str
    max_turns: int
    max_tokens: int


def fight(llm: LLM, ctx: CallContext, setup: BattleSetup, closer_prompt: str, state: BattleState,
          on_turn: Callable[[BattleState], None] | None = None) -> None:
    """Runs the conversation and the referee, recording into `state` as it goes.

    `on_turn(state)` is called after each completed turn (the runner saves progress there).

    Raises `LLMError` (including `Stopped`, `BudgetExceeded`, `DeadlineExceeded`) with the
    transcript so far kept in `state`; a malformed referee answer is retried once, then the
    battle fails.
    """
    persona_prompt = persona_system_prompt(state.persona)
    opening = {"role": "user", "content": "(The homeowner picks up the phone.) Hello?"}
    for _ in range(setup.max_turns):
        closer = _say(llm, ctx, state, Role.CLOSER, setup.closer, setup.max_tokens,
                      [{"role": "system", "content": closer_prompt}, opening, *_view(state.transcript, "closer")])
        state.transcript.append({"speaker": "closer", "text": closer})
        seller = _say(llm, ctx, state, Role.PERSONA, setup.persona, setup.max_tokens,
                      [{"role": "system", "content": persona_prompt}, *_view(state.transcript, "persona")])
        ended = ACCEPT_MARK in seller or HANG_UP_MARK in seller
        text = seller.replace(ACCEPT_MARK, "").replace(HANG_UP_MARK, "").strip()
        state.transcript.append({"speaker": "persona", "text": text or "(hangs up)"})
        if on_turn is not None:
            on_turn(state)
        if ended:
            break
    state.verdict = referee.score(llm, ctx, setup.referee, state.transcript, state.usage, seed=state.id)


def _say(llm: LLM, ctx: CallContext, state: BattleState, role: Role, model: str, max_tokens: int,
         messages: list[Message], response_format: ResponseFormat | None = None) -> str:
    try:
        # The battle id seeds a transport that wants one (the simulator); the API ignores it.
        reply = llm.chat(ctx, role, model, messages, max_tokens, response_format, seed=state.id)
    except LLMError as exc:
        if exc.usage is not None:  # billed though it failed (an empty reply): the battle's cost says so
            state.usage.add(exc.usage)
        raise
    state.usage.add(reply.usage)
    return reply.text.strip()
