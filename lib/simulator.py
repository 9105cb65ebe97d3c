"""The offline simulator: a deterministic transport for `LLM`, labelled as simulated.

Replies are seeded by the conversation so far and chosen by the caller's `Role`: the closer and
the seller speak lines (the seller's built from the attack patterns in its system prompt), the
referee, the scout and the persona writer answer their JSON schemas. Latency is realistic and
token counts are reported like a provider's, so the client prices them at the model's real price
and the cost cap, deadline and retries work as they do against the API. The referee's scores
vary, and some battles reach breakthrough level.
"""
from __future__ import annotations

import hashlib
import json
import random
import time

from lib.referee import CRITERIA
from lib.budget import prompt_token_bound
from lib.llm import Completion, DeadlineExceeded, Role


class SimulatedTransport:
    simulated = True

    def __init__(self, latency_scale: float = 1.0):
        self.latency_scale = latency_scale

    def prepare(self) -> None:
        pass

    def complete(self, role: Role, model: str, messages: list[dict], max_tokens: int,
                 response_format: dict | None, timeout: float, nonce: int = 0) -> Completion:
        seed = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        rng = random.Random(seed)
        latency = rng.uniform(0.15, 0.45) * self.latency_scale
        if latency > timeout:
            time.sleep(timeout)
            raise DeadlineExceeded(f"{model} (simulated) did not answer within {timeout:.1f}s")
        time.sleep(latency)
        if role == Role.REFEREE:
            # A re-score (nonce > 0) is a fresh call: its judge noise has a seed of its own.
            text = json.dumps(_verdict(rng, messages, random.Random(f"{seed}:{nonce}") if nonce else None))
        elif role == Role.SCOUT:
            text = json.dumps(_moment(messages))
        elif role == Role.PERSONA_WRITER:
            text = json.dumps(_personas(rng, max_tokens))
        elif role == Role.SELLER:
            text = _seller_line(rng, messages)
        elif role == Role.CLOSER:
            text = rng.choice(_CLOSER_LINES)
        else:
            raise ValueError(f"the simulator has no answer for role {role!r}")
        words = text.split()
        text = " ".join(words[: max(1, int(max_tokens * 0.75))])
        prompt_tokens = prompt_token_bound(messages, response_format) // 4
        cached = (prompt_tokens // 2) if len(messages) > 4 else 0
        completion_tokens = min(max_tokens, max(1, len(text.encode()) // 4))
        return Completion(text, prompt_tokens, cached, completion_tokens)


_CLOSER_LINES = [
    "I hear you, and that concern makes sense. Can I ask what would need to be true for this to feel fair to you?",
    "Let me be straight with you: we buy as-is, we cover closing costs, and you pick the date.",
    "Here's how we got to our number: recent sales on your street, minus the repairs, and nothing hidden.",
    "If we could close on your timeline and put the earnest money in escrow today, would that help?",
    "I'd rather lose the deal than have you feel pushed. What matters most to you in this sale?",
    "Other buyers may say a higher number now and cut it after inspection. We put ours in writing.",
]
_SELLER_OPENERS = ["Look,", "Honestly,", "Hold on.", "I don't know.", "Fine, but", "Listen,"]


def _seller_line(rng: random.Random, messages: list[dict]) -> str:
    """A line built from one of the attack patterns listed in the seller's system prompt."""
    system = messages[0]["content"] if messages else ""
    patterns = [line[2:] for line in system.splitlines() if line.startswith("- ")] or ["I'm not sure"]
    pattern = rng.choice(patterns)
    if len(messages) > 7 and rng.random() < 0.12:
        return "You've answered what worried me. I accept your offer. [ACCEPT]"
    return f"{rng.choice(_SELLER_OPENERS)} {pattern[0].lower() + pattern[1:]}. Why should I trust you on that?"


def _verdict(rng: random.Random, messages: list[dict], rescore: random.Random | None = None) -> dict:
    transcript = messages[-1]["content"]
    agreed = "I accept" in transcript
    base = rng.uniform(85, 100) if agreed else rng.uniform(50, 88)
    # A re-score judges the same call again: the same quality, fresh noise (about 2 points overall).
    shift = rescore.gauss(0, 2.0) if rescore else 0.0
    scores = {name: max(0, min(100, round(base + rng.uniform(-5, 5) + shift
                                          + (rescore.gauss(0, 2.0) if rescore else 0.0)))) for name in CRITERIA}
    return {
        "scores": scores,
        "feedback": "Strong discovery; the price justification landed." if agreed
        else "Good rapport, but the core objection was never fully resolved.",
        "winning_rebuttal": rng.choice(_CLOSER_LINES),
        "seller_agreed": agreed,
    }


def _moment(messages: list[dict]) -> dict:
    closer_lines = [line[len("CLOSER: "):] for line in messages[-1]["content"].splitlines()
                    if line.startswith("CLOSER: ")]
    moment = closer_lines[-1] if closer_lines else "We put our offer in writing."
    return {"defining_moment": moment,
            "tactical_snippet": "Answer the hardest objection with a specific, written commitment, then ask "
                                "for the next step."}


_FIRST_NAMES = ["Marge", "Dale", "Priya", "Otis", "Wendell", "Lucia", "Bev", "Gus", "Nadia", "Rex"]
_SITUATIONS = [
    ("flip_gone_wrong", "An investor whose renovation stalled halfway and who hates admitting it.",
     "You bought this house to flip it, ran out of money mid-renovation, and want to save face."),
    ("code_violations", "A homeowner facing city code-violation fines that grow every week.",
     "The city fined you for the roof and the fence; the fines double next month and you feel cornered."),
    ("absentee_owner", "An out-of-state owner of a vacant house they have not seen in years.",
     "You live three states away; the house sits empty and you suspect squatters, but you distrust callers."),
    ("medical_move", "A seller moving into assisted living, guided by a protective niece.",
     "Your health is failing and you must move soon; your niece screens every call and every number."),
]


def _personas(rng: random.Random, max_tokens: int) -> dict:
    count = max(1, max_tokens // 700)
    personas = []
    for index in range(count):
        kind, description, situation = _SITUATIONS[index % len(_SITUATIONS)]
        name = f"{rng.choice(_FIRST_NAMES)} {kind.split('_')[0].title()} {rng.randint(100, 999)}"
        personas.append({
            "name": name, "persona_type": kind, "description": description, "situation": situation,
            "characteristics": {"motivation": "high", "price_sensitivity": "medium", "trust": "low",
                                "timeline_days": rng.choice([30, 60, 90]), "difficulty": rng.randint(2, 5)},
            "attack_patterns": ["Questions every number", "Threatens to hang up",
                                "Claims a neighbour got a better deal"],
        })
    return {"personas": personas}
