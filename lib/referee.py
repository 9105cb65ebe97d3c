"""The referee: the one LLM call that scores a transcript 0–100, and everything that judges it.

The battle's score, the Tactical Scout's re-scores (confirmation and audit) and `python -m lib
referee-check` all go through `score()`: the same prompt, the same strict JSON schema, the same
parsing. The 0–100 total is computed here from the sub-scores and `CRITERIA`'s weights, never
taken from the model.

A re-score is a fresh, independent call. `nonce` says which draw it is (0 for the battle's own
score, `CONFIRM_NONCE` and `AUDIT_NONCE` for the scout's): a real provider samples each request
anew on its own; the offline simulator seeds its judge noise by it.

The confirmation rule (`confirm`): a candidate (first score at or above the cutoff) is a
breakthrough when the mean of the two scores is at or above the cutoff AND the re-score is at
least the cutoff minus REFEREE_CONFIRM_MARGIN. The mean of two independent calls has 1/√2 of one
call's noise, so a single lucky draw rarely carries a battle over the line; the floor refuses a
pair the referee disagrees on (a 100 and a 90 average 95, but that is a glitch, not agreement).
`python -m bench.referee_rule` simulates the alternatives and prints their precision and recall.
"""
from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lib.budget import CostCap, Price, price_for, prompt_token_bound, worst_case_cost
from lib.llm import LLM, CallContext, LLMError, Message, Role, Usage

# Referee criteria and their weights (summing to 1): the one place the total is defined.
CRITERIA = {
    "rapport": Decimal("0.15"),
    "discovery": Decimal("0.20"),
    "objection_handling": Decimal("0.30"),
    "value_framing": Decimal("0.15"),
    "closing": Decimal("0.20"),
}
REFEREE_MAX_TOKENS = 600
# A malformed answer is retried once, then the score fails.
ATTEMPTS = 2
CONFIRM_NONCE = 1
AUDIT_NONCE = 2
# The window of the consistency figures (audit pairs) and of the drift alert.
CONSISTENCY_DAYS = 7
# Reviewers' decisions count over this window; a persona type needs this many for its own figure.
PRECISION_DAYS = 30
PRECISION_MIN_DECISIONS = 5
CALIBRATION_PATH = Path(__file__).resolve().parent / "referee_calibration.json"

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


class MalformedVerdict(ValueError):
    pass


@dataclass
class Verdict:
    scores: dict[str, int]
    total: Decimal
    feedback: str
    winning_rebuttal: str
    seller_agreed: bool


def total_score(scores: dict[str, int]) -> Decimal:
    return sum((CRITERIA[name] * Decimal(scores[name]) for name in CRITERIA), Decimal(0)).quantize(Decimal("0.01"))


def parse_verdict(text: str) -> Verdict:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):  # ValueError: not JSON, or an integer past Python's 4,300 digits
        raise MalformedVerdict("referee answer is not JSON (or has an integer too long to read)") from None
    except RecursionError:
        raise MalformedVerdict("referee answer is nested too deep") from None
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


def render_transcript(transcript: list[dict[str, str]]) -> str:
    return "\n".join(f"{'CLOSER' if line['speaker'] == 'closer' else 'SELLER'}: {line['text']}"
                     for line in transcript)


def messages_for(transcript: list[dict[str, str]]) -> list[Message]:
    return [{"role": "system", "content": REFEREE_PROMPT}, {"role": "user", "content": render_transcript(transcript)}]


def score(llm: LLM, ctx: CallContext, model: str, transcript: list[dict[str, str]], usage: Usage, nonce: int = 0,
          seed: str | None = None) -> Verdict:
    """Scores a transcript; each call's usage is added to `usage` as it is paid, even if the score fails.

    `nonce` marks an independent re-score of the same transcript; `seed` is the battle's id (see
    `LLM.chat`).

    Raises `LLMError` (a malformed answer twice included; `BudgetExceeded`, `DeadlineExceeded`
    and `Stopped` as the client raises them).
    """
    messages = messages_for(transcript)
    problem = None
    for _ in range(ATTEMPTS):
        reply = llm.chat(ctx, Role.REFEREE, model, messages, REFEREE_MAX_TOKENS, REFEREE_FORMAT, nonce=nonce,
                         seed=seed)
        usage.add(reply.usage)
        try:
            return parse_verdict(reply.text)
        except MalformedVerdict as exc:
            problem = str(exc)
    raise LLMError(f"malformed referee answer twice: {problem}")


def score_bound(model: str, prices: dict[str, Price], transcript: list[dict[str, str]]) -> Decimal:
    """The most one `score()` of this transcript can cost: every attempt at its worst case."""
    worst = worst_case_cost(prompt_token_bound(messages_for(transcript), REFEREE_FORMAT), REFEREE_MAX_TOKENS,
                            price_for(model, prices))
    return worst * ATTEMPTS


# ---- confirmation ----

@dataclass(frozen=True)
class Confirmation:
    confirmed: bool
    reason: str


def confirm(first: Decimal, second: Decimal, cutoff: int, margin: Decimal) -> Confirmation:
    """The confirmation rule (see the module docstring): mean ≥ cutoff and re-score ≥ cutoff − margin."""
    first, second, margin = Decimal(first), Decimal(second), Decimal(margin)
    mean = ((first + second) / 2).quantize(Decimal("0.01"))
    floor = Decimal(cutoff) - margin
    problems = []
    if second < floor:
        problems.append(f"re-score {second:.2f} is below {floor:g} (cutoff {cutoff} minus margin {margin:g})")
    if mean < cutoff:
        problems.append(f"mean of {first:.2f} and {second:.2f} is {mean:.2f}, below the cutoff {cutoff}")
    if problems:
        return Confirmation(False, "; ".join(problems))
    return Confirmation(True, f"mean {mean:.2f} ≥ {cutoff} and re-score {second:.2f} ≥ {floor:g}")


# ---- calibration ----

class CalibrationError(ValueError):
    """The calibration set is not usable: the message says which item and why."""


def load_calibration(path: Path = CALIBRATION_PATH) -> list[dict[str, Any]]:
    """The labelled set: `[{"id", "band": [low, high], "reason", "transcript": [{speaker, text}]}]`, checked."""
    try:
        items = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"calibration set {path}: {exc}") from None
    if not isinstance(items, list) or not items:
        raise CalibrationError(f"calibration set {path}: expected a non-empty JSON array")
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"calibration item {index} ({item.get('id') if isinstance(item, dict) else '?'})"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise CalibrationError(f"{where}: needs a string id")
        if item["id"] in seen:
            raise CalibrationError(f"{where}: duplicate id")
        seen.add(item["id"])
        band = item.get("band")
        if (not isinstance(band, list) or len(band) != 2 or not all(isinstance(v, (int, float)) for v in band)
                or not 0 <= band[0] <= band[1] <= 100):
            raise CalibrationError(f"{where}: band must be [low, high] within 0–100")
        if not isinstance(item.get("reason"), str) or not item["reason"].strip():
            raise CalibrationError(f"{where}: needs a one-line reason")
        transcript = item.get("transcript")
        if (not isinstance(transcript, list) or len(transcript) < 2
                or not all(isinstance(line, dict) and line.get("speaker") in ("closer", "persona")
                           and isinstance(line.get("text"), str) and line["text"].strip() for line in transcript)):
            raise CalibrationError(f"{where}: transcript must be lines of {{speaker: closer|persona, text}}")
    return items


def band_centre(item: dict[str, Any]) -> float:
    return float(item["band"][0] + item["band"][1]) / 2


def calibration_bound(items: list[dict[str, Any]], model: str, prices: dict[str, Price]) -> Decimal:
    return sum((score_bound(model, prices, item["transcript"]) for item in items), Decimal(0))


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing the mean of their positions (as Spearman's rho needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's r on tie-averaged ranks); None when undefined."""
    if len(xs) != len(ys) or len(xs) < 2:
        return None
    rx, ry = _ranks([float(x) for x in xs]), _ranks([float(y) for y in ys])
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    covariance = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    spread = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return None if spread == 0 else round(covariance / spread, 4)


def run_calibration(llm: LLM, items: list[dict[str, Any]], model: str, cap: CostCap, deadline: float,
                    workers: int = 4) -> dict[str, Any]:
    """Scores every item with `model` under the cost `cap` (the check's block of the budget); returns
    the agreement figures.

    `{"model", "simulated", "items", "scored", "spearman", "inBand", "cost", "outliers": [{"id",
    "band", "score", "reason"}], "failed": [{"id", "error"}], "results": [{"id", "band", "score",
    "inBand"}]}`: Spearman against the band centres and the in-band share are over the items
    that were scored.
    """
    ctx = CallContext.for_cap(cap, deadline)

    def one(item: dict[str, Any]) -> dict[str, Any]:
        try:
            verdict = score(llm, ctx, model, item["transcript"], Usage())
        except LLMError as exc:
            return {"id": item["id"], "band": item["band"], "score": None, "inBand": None, "error": str(exc)}
        low, high = item["band"]
        value = float(verdict.total)
        return {"id": item["id"], "band": item["band"], "score": value, "inBand": low <= value <= high}

    with ThreadPoolExecutor(max(1, min(workers, len(items)))) as pool:
        results = list(pool.map(one, items))
    scored = [(item, result) for item, result in zip(items, results, strict=True) if result["score"] is not None]
    in_band = sum(1 for _, result in scored if result["inBand"])
    return {
        "model": model,
        "simulated": llm.simulated,
        "items": len(items),
        "scored": len(scored),
        "spearman": spearman([band_centre(item) for item, _ in scored], [result["score"] for _, result in scored]),
        "inBand": round(in_band / len(scored), 4) if scored else None,
        "cost": float(ctx.cap.committed),
        "outliers": [{"id": item["id"], "band": item["band"], "score": result["score"], "reason": item["reason"]}
                     for item, result in scored if not result["inBand"]],
        "failed": [{"id": result["id"], "error": result["error"]} for result in results if result["score"] is None],
        "results": [{key: result[key] for key in ("id", "band", "score", "inBand")} for result in results],
    }

