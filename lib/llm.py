"""Chat calls: the cost cap, deadline-bounded timeouts, retries, and the simulator.

Every call goes through `LLM.chat`, which (1) refuses a model with no price, (2) reserves the
call's worst-case cost in the run's `Budget` (lib.budget) and refuses the call if it does not fit
under the cost cap, (3) waits out a shared rate-limit cooldown, (4) gives the request the time left to the deadline as its
timeout, and retries only while a retry still fits, and (5) settles the reservation at the real
cost from `usage`.

The `openai` package is imported on the first real call, not at import time: cold starts of the
handlers stay small.
"""
from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from lib.budget import Budget, price_for, prompt_token_bound, usage_cost, worst_case_cost

MAX_ATTEMPTS = 3
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
MIN_USEFUL_CALL_S = 0.5


class LLMError(RuntimeError):
    """A chat call failed for good (after the retries that fit)."""


class BudgetExceeded(LLMError):
    """The call's worst case does not fit under the batch's cost cap."""


class DeadlineExceeded(LLMError):
    """No time is left for the call (or for a retry of it)."""


class Stopped(LLMError):
    """The run asked every battle to stop (deadline, cost cap or pause)."""


class RateGate:
    """A cooldown shared by all threads of a run: after a 429 every thread waits it out."""

    def __init__(self):
        self._until = 0.0
        self._lock = threading.Lock()

    def cool_down(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self, deadline: float, stop: threading.Event) -> None:
        with self._lock:
            until = self._until
        pause = until - time.monotonic()
        if pause <= 0:
            return
        if until + MIN_USEFUL_CALL_S > deadline:
            raise DeadlineExceeded("rate-limited by the provider until past the deadline")
        if stop.wait(pause):
            raise Stopped("run stopped")


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost


@dataclass
class Reply:
    text: str
    usage: Usage


@dataclass
class CallContext:
    """What every call of one run shares: its budget, deadline, cooldown and stop signal."""

    budget: Budget
    deadline: float
    gate: RateGate
    stop: threading.Event


_clients: dict = {}
_clients_lock = threading.Lock()


class LLM:
    """Chat calls through the `openai` SDK, bounded by the run's budget and deadline."""

    simulated = False

    def __init__(self, settings):
        self.api_key = settings.require_openai_key()
        self.base_url = settings.openai_base_url
        self.prices = settings.model_prices

    def client(self):
        """One SDK client per key and URL per process: a warm instance skips its ~0.1 s set-up."""
        key = (self.api_key, self.base_url)
        with _clients_lock:
            if key not in _clients:
                import openai

                # Retries are ours: the SDK's would sleep past the deadline.
                _clients[key] = openai.OpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=0)
            return _clients[key]

    def chat(self, ctx: CallContext, model: str, messages: list[dict], max_tokens: int,
             response_format: dict | None = None) -> Reply:
        price = price_for(model, self.prices)
        worst = worst_case_cost(prompt_token_bound(messages, response_format), max_tokens, price)
        if ctx.stop.is_set():
            raise Stopped("run stopped")
        if not ctx.budget.reserve(worst):
            ctx.stop.set()
            raise BudgetExceeded(ctx.budget.trip_reason)
        # Until a request leaves, nothing can be billed; after, a failure may still be (a timeout).
        sent = []
        actual = worst
        try:
            reply = self._call_with_retries(ctx, model, messages, max_tokens, response_format, price, sent)
            actual = reply.usage.cost
            return reply
        except LLMError:
            if not sent:
                actual = Decimal(0)
            raise
        finally:
            ctx.budget.settle(worst, actual)

    def prepare(self) -> None:
        """Sets up the SDK client (about 1 s on a cold start) before the battles start."""
        self.client()

    def _call_with_retries(self, ctx, model, messages, max_tokens, response_format, price, sent: list) -> Reply:
        last_error = "no attempt made"
        for attempt in range(MAX_ATTEMPTS):
            ctx.gate.wait(ctx.deadline, ctx.stop)
            if ctx.stop.is_set():
                raise Stopped("run stopped")
            remaining = ctx.deadline - time.monotonic()
            if remaining < MIN_USEFUL_CALL_S:
                raise DeadlineExceeded(f"no time left for a call to {model} ({last_error})")
            sent.append(attempt)
            try:
                return self._request(model, messages, max_tokens, response_format, price, remaining)
            except _Retryable as exc:
                last_error = exc.reason
                if exc.retry_after is not None:
                    ctx.gate.cool_down(exc.retry_after)
                elif attempt + 1 < MAX_ATTEMPTS:
                    if ctx.stop.wait(min(2.0, 0.25 * 2 ** attempt)):
                        raise Stopped("run stopped") from None
        raise LLMError(f"{model}: {last_error} after {MAX_ATTEMPTS} attempts")

    def _request(self, model, messages, max_tokens, response_format, price, timeout) -> Reply:
        import openai

        kwargs = {"response_format": response_format} if response_format else {}
        try:
            completion = self.client().chat.completions.create(
                model=model, messages=messages, max_completion_tokens=max_tokens, timeout=timeout, **kwargs)
        except openai.APITimeoutError:
            raise DeadlineExceeded(f"{model} did not answer within {timeout:.1f}s") from None
        except openai.APIConnectionError:
            raise _Retryable("connection error") from None
        except openai.APIStatusError as exc:
            if exc.status_code in RETRYABLE_STATUS:
                raise _Retryable(f"HTTP {exc.status_code}", _retry_after(exc.response.headers)
                                 if exc.status_code == 429 else None) from None
            raise LLMError(f"{model}: HTTP {exc.status_code} {_error_message(exc)}") from None
        if not completion.choices:
            raise LLMError(f"{model}: the answer had no choices")
        usage = completion.usage
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        spent = Usage(usage.prompt_tokens, cached, usage.completion_tokens,
                      usage_cost(usage.prompt_tokens, cached, usage.completion_tokens, price))
        return Reply(completion.choices[0].message.content or "", spent)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(headers) -> float:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                pass
    return 1.0


def _error_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)[:200]
    return ""


class SimulatedLLM(LLM):
    """An offline, deterministic stand-in: same interface, same budget and deadline rules.

    Replies are seeded by the conversation so far, built from the persona's attack patterns, with
    realistic latency and token usage priced at the model's real price. The referee's scores vary,
    and some battles reach breakthrough level.
    """

    simulated = True

    def __init__(self, settings, latency_scale: float = 1.0):
        self.prices = settings.model_prices
        self.latency_scale = latency_scale

    def prepare(self) -> None:
        pass

    def _request(self, model, messages, max_tokens, response_format, price, timeout) -> Reply:
        seed = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        rng = random.Random(seed)
        latency = rng.uniform(0.15, 0.45) * self.latency_scale
        if latency > timeout:
            time.sleep(timeout)
            raise DeadlineExceeded(f"{model} (simulated) did not answer within {timeout:.1f}s")
        time.sleep(latency)
        schema_name = (response_format or {}).get("json_schema", {}).get("name")
        if schema_name == "battle_verdict":
            text = json.dumps(_simulated_verdict(rng, messages))
        elif schema_name == "defining_moment":
            text = json.dumps(_simulated_moment(messages))
        elif schema_name == "persona_batch":
            text = json.dumps(_simulated_personas(rng, messages, max_tokens))
        else:
            text = _simulated_line(rng, messages)
        words = text.split()
        text = " ".join(words[: max(1, int(max_tokens * 0.75))])
        prompt_tokens = prompt_token_bound(messages, response_format) // 4
        cached = (prompt_tokens // 2) if len(messages) > 4 else 0
        completion_tokens = min(max_tokens, max(1, len(text.encode()) // 4))
        return Reply(text, Usage(prompt_tokens, cached, completion_tokens,
                                 usage_cost(prompt_tokens, cached, completion_tokens, price)))


_CLOSER_LINES = [
    "I hear you, and that concern makes sense. Can I ask what would need to be true for this to feel fair to you?",
    "Let me be straight with you: we buy as-is, we cover closing costs, and you pick the date.",
    "Here's how we got to our number: recent sales on your street, minus the repairs, and nothing hidden.",
    "If we could close on your timeline and put the earnest money in escrow today, would that help?",
    "I'd rather lose the deal than have you feel pushed. What matters most to you in this sale?",
    "Other buyers may say a higher number now and cut it after inspection. We put ours in writing.",
]
_SELLER_OPENERS = ["Look,", "Honestly,", "Hold on.", "I don't know.", "Fine, but", "Listen,"]


def _simulated_line(rng: random.Random, messages: list[dict]) -> str:
    system = messages[0]["content"] if messages else ""
    if "homeowner" in system and "Attack patterns" in system:
        patterns = [line[2:] for line in system.splitlines() if line.startswith("- ")] or ["I'm not sure"]
        pattern = rng.choice(patterns)
        if len(messages) > 7 and rng.random() < 0.12:
            return "You've answered what worried me. I accept your offer. [ACCEPT]"
        return f"{rng.choice(_SELLER_OPENERS)} {pattern[0].lower() + pattern[1:]}. Why should I trust you on that?"
    return rng.choice(_CLOSER_LINES)


def _simulated_verdict(rng: random.Random, messages: list[dict]) -> dict:
    from lib.battle import CRITERIA

    transcript = messages[-1]["content"]
    agreed = "I accept" in transcript
    base = rng.uniform(85, 100) if agreed else rng.uniform(50, 88)
    scores = {name: max(0, min(100, round(base + rng.uniform(-5, 5)))) for name in CRITERIA}
    return {
        "scores": scores,
        "feedback": "Strong discovery; the price justification landed." if agreed
        else "Good rapport, but the core objection was never fully resolved.",
        "winning_rebuttal": rng.choice(_CLOSER_LINES),
        "seller_agreed": agreed,
    }


def _simulated_moment(messages: list[dict]) -> dict:
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


def _simulated_personas(rng: random.Random, messages: list[dict], max_tokens: int) -> dict:
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


def make_llm(settings, latency_scale: float = 1.0) -> LLM:
    if settings.simulated:
        return SimulatedLLM(settings, latency_scale)
    return LLM(settings)
