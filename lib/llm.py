"""The chat client: the cost cap, deadline-bounded timeouts and retries, over a transport.

Every call goes through `LLM.chat`, which (1) refuses a model with no price, (2) waits out a
shared rate-limit cooldown, (3) reserves each attempt's worst-case cost in the holder's `CostCap`
(durably, before it is sent) and refuses the attempt if it does not fit under the cap, (4) gives
the request the time left to the deadline as its timeout, and retries only while a retry still
fits, and (5) settles each attempt: at its real cost, computed here from the token counts the
transport reports; released when the request was never sent; kept at its worst case when it may
have been billed without an answer (a timeout, a dropped connection, a 5xx).

A transport sends one request and answers with the raw text and token counts, or raises: an
`LLMError` for good, `Retryable` for a failure worth another attempt. `OpenAITransport` is the
real one; `lib.simulator.SimulatedTransport` is the offline stand-in. The `openai` package is
imported on the first real call, not at import time: cold starts of the handlers stay small.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, cast

from lib.budget import (
    CostCap,
    CostCapClosed,
    Price,
    estimated_tokens,
    price_for,
    prompt_token_bound,
    usage_cost,
    worst_case_cost,
)
from lib.redact import redact
from lib.text import clean_model_text

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionMessageParam

MAX_ATTEMPTS = 3
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
MIN_USEFUL_CALL_S = 0.5
# Reasoning models take `reasoning_effort`, and count their reasoning in `max_completion_tokens`:
# gpt-5, gpt-5-mini, gpt-5.1…, o1, o3, o4-mini… (not gpt-5-chat-latest, a chat model).
REASONING_MODEL = re.compile(r"^(?:gpt-5(?![\w.-]*-chat)|o\d)")

# A chat message as the API takes it: `role` and `content`.
type Message = dict[str, str]
# A `response_format` (a JSON schema the answer must follow).
type ResponseFormat = dict[str, Any]


class Role(StrEnum):
    """Who is speaking: every call says so, and a transport may answer by it."""

    CLOSER = "closer"
    PERSONA = "persona"  # the home seller the closer battles: a transcript line's speaker is "persona" too
    REFEREE = "referee"
    SCOUT = "scout"
    PERSONA_WRITER = "persona_writer"
    PROPOSER = "proposer"


class LLMError(RuntimeError):
    """A chat call failed for good (after the retries that fit). The message is redacted: a
    provider's error text may echo a key or a URL. Raised by a transport, `billed` says whether
    the provider may have billed the attempt (False only when its answer proves it did not)."""

    def __init__(self, message: str = "", usage: Usage | None = None, billed: bool = True):
        super().__init__(redact(message))
        self.usage = usage  # what the failed call was billed, when the provider answered
        self.billed = billed


class ProviderRefused(LLMError):
    """The provider refuses every call until a person acts (no quota left, a rejected key): the
    run stops at once, with the provider's words and what to do, instead of failing each battle."""


class ProviderUnavailable(LLMError):
    """Every attempt failed with an error worth retrying (no connection, or an HTTP status in
    RETRYABLE_STATUS): most often the provider's trouble, though it may be the request's."""


class BudgetExceeded(LLMError):
    """The call's worst case does not fit under the batch's cost cap."""


class DeadlineExceeded(LLMError):
    """No time is left for the call (or for a retry of it)."""


class Stopped(LLMError):
    """The run asked every battle to stop (deadline, cost cap or pause)."""


class Retryable(Exception):
    """A transport's failure worth another attempt; `retry_after` (seconds) cools every thread down."""

    def __init__(self, reason: str, retry_after: float | None = None, headers: dict[str, str] | None = None,
                 billed: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.headers = headers  # the answer's rate-limit headers, for the run's pacer
        # False only when the request provably did no work: a 429, a connection never made.
        self.billed = billed


class RateGate:
    """A cooldown shared by all threads of a run: after a 429 every thread waits it out."""

    def __init__(self) -> None:
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

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost


@dataclass
class Reply:
    text: str
    usage: Usage
    finish_reason: str | None = None


@dataclass
class Completion:
    """What a transport answers: the raw text and the token counts the provider reported."""

    text: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    finish_reason: str | None = None  # "stop", "length" (cut by the token limit)…
    headers: dict[str, str] | None = None  # the provider's x-ratelimit-* headers, for the run's pacer


class RatePacer[Ticket](Protocol):
    """What a call asks of its run's pacer (`lib.pacing.Pacer`, which imports this module): room
    under the provider's rate limits before the request leaves, then the answer's figures."""

    def acquire(self, model: str, tokens: int, deadline: float, stop: threading.Event) -> Ticket:
        """Waits for room for one request of `tokens`; raises `DeadlineExceeded` or `Stopped`."""
        ...

    def observe(self, ticket: Ticket, headers: Mapping[str, str] | None) -> None:
        """Takes the provider's rate-limit headers from the answer to `ticket`'s request."""
        ...


@dataclass
class CallContext:
    """What every call of one holder (a run, a scan…) shares: its cost cap, deadline, cooldown and
    stop signal, and the pacer (`lib.pacing.Pacer`) that keeps its calls under the provider's rate
    limits, if any."""

    cap: CostCap
    deadline: float
    gate: RateGate
    stop: threading.Event
    pacer: RatePacer[Any] | None = None
    halted: str | None = None  # why the provider stopped the run (`ProviderRefused`), if it did

    @classmethod
    def for_cap(cls, cap: CostCap | Decimal, deadline: float, stop: threading.Event | None = None) -> CallContext:
        """A fresh context: this cost cap (or a new one of this amount), its own cooldown, and `stop`
        (or a new event)."""
        cap = cap if isinstance(cap, CostCap) else CostCap(cap)
        return cls(cap, deadline, RateGate(), threading.Event() if stop is None else stop)

    def halt(self, reason: str) -> None:
        """Stops every call of the run for good; the first reason is kept."""
        if self.halted is None:
            self.halted = reason
        self.stop.set()


class Transport(Protocol):
    """Sends one request: `OpenAITransport`, or `lib.simulator.SimulatedTransport` offline."""

    simulated: bool

    def prepare(self) -> None:
        """Sets up what the first call needs (the SDK client); may be slow, is safe to repeat."""

    def complete(self, role: Role, model: str, messages: list[Message], max_tokens: int,
                 response_format: ResponseFormat | None, timeout: float, nonce: int = 0,
                 seed: str | None = None) -> Completion:
        """The answer, or `LLMError` for good, `Retryable` for a failure worth another attempt."""
        ...


class LLM:
    """Chat calls through a transport, bounded by the run's budget and deadline."""

    def __init__(self, transport: Transport, prices: dict[str, Price]):
        self.transport = transport
        self.prices = prices
        self._warming: threading.Thread | None = None

    @property
    def simulated(self) -> bool:
        return self.transport.simulated

    def warm_up(self) -> None:
        """Starts the transport's set-up (importing the SDK: about 1 s cold) on a thread, so that it
        overlaps the database work before the first battle; `prepare` waits for it."""
        if self._warming is None:
            self._warming = threading.Thread(target=self._prepare_quietly, name="llm-warm-up", daemon=True)
            self._warming.start()

    def _prepare_quietly(self) -> None:
        try:
            self.transport.prepare()
        except Exception:  # raised again, in the caller's thread, by prepare()
            pass

    def prepare(self) -> None:
        """Lets the transport set up (the SDK client, about 1 s on a cold start) before battles start."""
        if self._warming is not None:
            self._warming.join()
        self.transport.prepare()

    def chat(self, ctx: CallContext, role: Role, model: str, messages: list[Message], max_tokens: int,
             response_format: ResponseFormat | None = None, nonce: int = 0, *, seed: str | None = None) -> Reply:
        """One call. `nonce` tells apart independent draws of the same request (a re-score): a
        provider samples each request anew anyway. `seed` is an opaque key a transport may use to
        make its answers reproducible (the simulator seeds a battle's randomness with the battle
        id). OpenAI's transport sends neither."""
        price = price_for(model, self.prices)
        worst = worst_case_cost(prompt_token_bound(messages, response_format), max_tokens, price)
        if ctx.stop.is_set():
            raise Stopped("run stopped")
        reply = self._call_with_retries(ctx, role, model, messages, max_tokens, response_format, price, worst,
                                        nonce, seed)
        if not reply.text.strip():
            # Billed, but no line: never a line of the conversation, nor a verdict.
            raise LLMError(f"{model} returned an empty reply{_why_empty(reply.finish_reason)}", usage=reply.usage)
        return reply

    def _call_with_retries(self, ctx: CallContext, role: Role, model: str, messages: list[Message], max_tokens: int,
                           response_format: ResponseFormat | None, price: Price, worst: Decimal, nonce: int,
                           seed: str | None) -> Reply:
        last_error = "no attempt made"
        for attempt in range(MAX_ATTEMPTS):
            ctx.gate.wait(ctx.deadline, ctx.stop)
            if ctx.stop.is_set():
                raise Stopped("run stopped")
            remaining = ctx.deadline - time.monotonic()
            if remaining < MIN_USEFUL_CALL_S:
                raise DeadlineExceeded(f"no time left for a call to {model} ({last_error})")
            ticket = None
            if ctx.pacer is not None:  # may wait for the provider's rate limits to make room
                ticket = ctx.pacer.acquire(model, estimated_tokens(messages, response_format, max_tokens),
                                           ctx.deadline, ctx.stop)
                remaining = ctx.deadline - time.monotonic()
            # Each attempt is reserved on its own: a retry may be billed as much as the first try.
            try:
                fits = ctx.cap.reserve(worst)
            except CostCapClosed:
                raise Stopped("the spend was already settled") from None
            if not fits:
                ctx.stop.set()
                raise BudgetExceeded(str(ctx.cap.trip_reason))  # set when reserve refuses
            try:
                done = self.transport.complete(role, model, messages, max_tokens, response_format, remaining,
                                               nonce=nonce, seed=seed)
            except Retryable as exc:
                _end_unanswered(ctx.cap, worst, exc.billed)
                if ticket is not None and ctx.pacer is not None:
                    ctx.pacer.observe(ticket, exc.headers)
                last_error = exc.reason
                if exc.retry_after is not None:
                    ctx.gate.cool_down(exc.retry_after)
                elif attempt + 1 < MAX_ATTEMPTS and ctx.stop.wait(min(2.0, 0.25 * 2 ** attempt)):
                    raise Stopped("run stopped") from None
                continue
            except ProviderRefused as exc:
                ctx.cap.release(worst)  # refused before any work: nothing billed
                ctx.halt(str(exc))
                raise
            except LLMError as exc:
                _end_unanswered(ctx.cap, worst, exc.billed)
                raise
            except BaseException:
                ctx.cap.keep(worst)  # sent or not, unknown: counted as billed
                raise
            if ticket is not None and ctx.pacer is not None:
                ctx.pacer.observe(ticket, done.headers)
            cost = usage_cost(done.prompt_tokens, done.cached_tokens, done.completion_tokens, price)
            ctx.cap.settle(worst, cost)
            # Every model's text enters here: cleaned of what PostgreSQL cannot store (U+0000, lone
            # surrogates), in a JSON answer's escapes too, so no later write of it can fail.
            text = clean_model_text(done.text, json_escapes=response_format is not None)
            return Reply(text, Usage(done.prompt_tokens, done.cached_tokens, done.completion_tokens, cost),
                         done.finish_reason)
        raise ProviderUnavailable(f"{model}: {last_error} after {MAX_ATTEMPTS} attempts")


def _end_unanswered(cap: CostCap, worst: Decimal, billed: bool) -> None:
    """An attempt with no usage to read: kept at its worst case if it may have been billed."""
    if billed:
        cap.keep(worst)
    else:
        cap.release(worst)


def _why_empty(finish_reason: str | None) -> str:
    if finish_reason == "length":
        return (" (finish_reason length: reasoning used the whole token limit; lower REASONING_EFFORT or raise "
                "MAX_TOKENS_PER_TURN)")
    return f" (finish_reason {finish_reason})" if finish_reason else ""


_clients: dict[tuple[str, str | None], openai.OpenAI] = {}
_clients_lock = threading.Lock()


class OpenAITransport:
    """Requests through the `openai` SDK, imported on first use."""

    simulated = False

    def __init__(self, api_key: str, base_url: str | None, reasoning_effort: str = "low"):
        self.api_key = api_key
        self.base_url = base_url
        self.reasoning_effort = reasoning_effort

    def client(self) -> openai.OpenAI:
        """One SDK client per key and URL per process: a warm instance skips its ~0.1 s set-up."""
        key = (self.api_key, self.base_url)
        with _clients_lock:
            if key not in _clients:
                import openai

                # Retries are the client's: the SDK's would sleep past the deadline.
                _clients[key] = openai.OpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=0)
            return _clients[key]

    def prepare(self) -> None:
        self.client()

    def complete(self, role: Role, model: str, messages: list[Message], max_tokens: int,
                 response_format: ResponseFormat | None, timeout: float, nonce: int = 0,
                 seed: str | None = None) -> Completion:
        # Neither `nonce` nor `seed` is sent: every request is already an independent sample.
        import openai

        kwargs: dict[str, Any] = {"response_format": response_format} if response_format else {}
        if REASONING_MODEL.match(model):
            kwargs["reasoning_effort"] = self.reasoning_effort
        try:
            # The raw response: its headers carry the rate limits the pacer keeps under.
            raw = self.client().chat.completions.with_raw_response.create(
                model=model, messages=cast("list[ChatCompletionMessageParam]", messages),
                max_completion_tokens=max_tokens, timeout=timeout, **kwargs)
            completion = raw.parse()
        except openai.APITimeoutError as exc:
            raise DeadlineExceeded(f"{model} did not answer within {timeout:.1f}s",
                                   billed=not _never_connected(exc)) from None
        except openai.APIConnectionError as exc:
            raise Retryable("connection error", billed=not _never_connected(exc)) from None
        except openai.APIStatusError as exc:
            refusal = _refusal(model, exc)
            if refusal:
                raise ProviderRefused(refusal, billed=False) from None
            # A 4xx answer refused the request (nothing generated); a 5xx may come after the work.
            billed = exc.status_code >= 500 or exc.status_code in (408, 409)
            if exc.status_code in RETRYABLE_STATUS:
                raise Retryable(f"HTTP {exc.status_code}", _retry_after(exc.response.headers)
                                if exc.status_code == 429 else None, _rate_limits(exc.response.headers),
                                billed=billed) from None
            raise LLMError(f"{model}: HTTP {exc.status_code} {_error_message(exc)}", billed=billed) from None
        if not completion.choices:
            raise LLMError(f"{model}: the answer had no choices")
        usage = completion.usage
        if usage is None:  # nothing to bill by: the cost cap could not hold
            raise LLMError(f"{model}: the answer reported no token usage")
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        return Completion(completion.choices[0].message.content or "", usage.prompt_tokens, cached,
                          usage.completion_tokens, completion.choices[0].finish_reason, _rate_limits(raw.headers))


def _never_connected(exc: Exception) -> bool:
    """True when the request never reached the provider (connection refused or not made in time):
    the SDK chains the HTTP library's error, whose class says so."""
    return type(exc.__cause__).__name__ in ("ConnectError", "ConnectTimeout")


def _rate_limits(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower().startswith("x-ratelimit-")}


def _retry_after(headers: Mapping[str, str]) -> float:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                pass
    return 1.0


BILLING_URL = "https://platform.openai.com/settings/organization/billing"


def _refusal(model: str, exc: openai.APIStatusError) -> str | None:
    """The message for an error no retry and no other call will fix, else None."""
    message = _error_message(exc)
    if exc.status_code == 429 and "insufficient_quota" in (getattr(exc, "code", None), getattr(exc, "type", None)):
        return (f"{model}: OpenAI refused the call: no quota left (HTTP 429 insufficient_quota: {message}). "
                f"Add credit or raise the usage limit at {BILLING_URL}, then run again; training stopped "
                "here, without retries")
    if exc.status_code == 401:
        return (f"{model}: OpenAI rejected the API key (HTTP 401: {message}). Check SANDBOX_OPENAI_API_KEY (or "
                "OPENAI_API_KEY); training stopped here, without retries")
    return None


def _error_message(exc: openai.APIStatusError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)[:200]
    return ""
