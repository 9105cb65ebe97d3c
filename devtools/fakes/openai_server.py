"""A local OpenAI-compatible server for tests and benchmarks (127.0.0.1 only).

`POST /v1/chat/completions` answers like the real API, with knobs: latency and jitter, scripted
failures (429 with Retry-After, 500, a hang, malformed referee JSON), and usage either realistic
or the largest the request allows. It records every request so tests can check concurrency,
timing and cost (`GET /v1/_log?since=N` serves the record, without the messages, to a benchmark
running the fake in another process).

With `rpm` and/or `tpm`, it enforces OpenAI's rate limits: per model, a bucket of `rpm` requests
and one of `tpm` tokens, each refilling continuously over `window` seconds (a minute, as
OpenAI's; `window=1` makes them per second, as some compatible providers'). A request takes one
request and its estimated tokens (its prompt's bytes / 4, plus max_completion_tokens) when it
arrives, or is answered 429 at once when a bucket lacks them, with `retry-after-ms`. Every answer
carries `x-ratelimit-limit-*`, `x-ratelimit-remaining-*` (rounded down) and `x-ratelimit-reset-*`
(the time until the bucket is full, in OpenAI's format: "20ms", "1.5s", "6m0s") for both.

The referee's answers are under the test's control, call by call: `queue_referee(96, 80)` makes
the next referee calls score 96 then 80 (a number sets every criterion, so it is the total; a
dict sets each criterion); then `referee_fn(transcript_text)` if set; then a seeded random
referee if `referee_random` is set; else the constant `referee_score`.

Tactics can matter, the way they do with a real model: a tactic in the closer's system prompt may
carry a marker `[fake-effect:+12]` (or `-12`, `+0`). The closer then behaves accordingly: its
line ends with `(effect +12)`, the sum of its markers; and the referee, reading the transcript,
scores that much higher or lower. `referee_noise` adds battle-to-battle spread (normal, points),
drawn from a seeded sequence in request order, so a run with one battle at a time is reproducible.

A head-to-head request (schema `head_to_head`: CALL A and CALL B in one message) is answered by
the two calls' effects: the larger wins, equal effects tie, unless `head_to_head_lean` is "A" or
"B": then equal effects go to that position (a judge with a position bias).

Billing, as a provider bills: every request the fake processed is in `ledger` with its usage and
cost (at the built-in prices), whether or not the client read the answer, even after the client
gave up or died (`billed()` sums it; `GET /v1/_ledger` serves it to another process). Modes that
bill without a usable answer: `latency` past the client's timeout (the client gives up, the fake
finishes and bills); `drop_every = N` (every Nth request is processed and billed, then the
connection is closed without an answer); `gateway_error_every = N` (processed and billed, then
answered 502, as a gateway in front of the model may).
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections import deque
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from lib.budget import price_for, usage_cost
from lib.referee import CRITERIA

EFFECT_MARKER = re.compile(r"\[fake-effect:([+-]\d+)\]")
SAID_EFFECT = re.compile(r"^CLOSER: .*\(effect ([+-]\d+)\)$", re.MULTILINE)


class FakeOpenAI:
    def __init__(self, latency: float = 0.0, jitter: float = 0.0, usage: str = "realistic",
                 referee_score: int = 80, rpm: int | None = None, tpm: int | None = None,
                 start_level: float = 1.0, window: float = 60.0):
        self.latency = latency
        self.jitter = jitter
        self.rpm = rpm  # requests per window (the name says minute: OpenAI's window)
        self.tpm = tpm  # tokens per window
        self.window = window  # seconds over which a bucket refills from empty to full
        self._buckets: dict[str, dict] = {}  # model -> {"requests": [level, stamp], "tokens": [...]}
        self.start_level = start_level  # each bucket's share full at the first request (1: a fresh minute)
        self.usage = usage  # "realistic" or "max": the most tokens an honest API could bill
        self.referee_score = referee_score
        self.referee_fn = None  # transcript text -> score (int or per-criterion dict)
        self.referee_random: random.Random | None = None
        self._referee_queue: deque = deque()
        self.referee_noise = 0.0
        self.head_to_head_lean: str | None = None
        self._noise = random.Random(20240611)
        self.accept_after_turns: int | None = None
        self.taint = ""  # added to every answer's text (inside the verdict's strings): "\u0000" and the like
        self.hang_all = False
        self.generated_personas: list[dict] = []
        # The proposer's answer (lib/proposer.py's schema).
        self.proposal = {"kind": "add", "tactic": "Name the seller's worry back before answering it.",
                         "remove_tactic_id": "", "reasoning": "The worst calls deflected the main objection."}
        self.moment = {"defining_moment": "We put it in writing and you choose the date.",
                       "tactical_snippet": "Offer a written guarantee, then let the seller pick the date."}
        self._script: deque = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[dict] = []
        self.ledger: list[dict] = []  # every request processed: {"model", "usage", "cost", "answered"}
        self.drop_every = 0
        self.gateway_error_every = 0
        self._processed = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, kind: str, count: int = 1, retry_after: float | None = None,
                  referee_only: bool = False, text: str = "", schema: str | None = None) -> None:
        """Scripts the next `count` matching requests: "429", "500", "hang", "malformed", "quota" (429
        insufficient_quota, as OpenAI answers an account out of credit), "401" (a rejected key) or "empty" (a reply with no text,
        cut by the token limit, as a reasoning model's can be), "no_usage" (an answer without its token
        usage, as some compatible providers send), "text" (answers `text` verbatim); "pass" answers
        normally, to script a failure after some good answers. With `schema`, only requests for that
        response format (`closer_proposal`, say) match."""
        with self._lock:
            for _ in range(count):
                self._script.append({"kind": kind, "retry_after": retry_after, "referee_only": referee_only,
                                     "text": text, "schema": schema})

    def queue_referee(self, *scores) -> None:
        """The next referee calls answer these scores, in order (an int for every criterion, or a dict)."""
        with self._lock:
            self._referee_queue.extend(scores)

    def referee_calls(self) -> list[dict]:
        return [entry for entry in self.log if entry["referee"] and entry.get("status") == 200]

    def billed(self) -> Decimal:
        """What the provider would bill: every request it processed, read by the client or not."""
        with self._lock:
            return sum((entry["cost"] for entry in self.ledger), Decimal(0))

    def answered(self, status: int = 200) -> list[dict]:
        return [entry for entry in self.log if entry.get("status") == status]

    def _next_failure(self, is_referee: bool, schema: str | None):
        with self._lock:
            for index, item in enumerate(self._script):
                if (not item["referee_only"] or is_referee) and item["schema"] in (None, schema):
                    del self._script[index]
                    return item
        return None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # Without this, Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    schema = (body.get("response_format") or {}).get("json_schema", {}).get("name")
                    entry = {"arrived": time.monotonic(), "model": body.get("model"), "schema": schema,
                             "referee": schema == "battle_verdict", "messages": body.get("messages", []),
                             "reasoning_effort": body.get("reasoning_effort")}
                    fake.log.append(entry)
                try:
                    fake._answer(self, body, entry)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
                        entry["finished"] = time.monotonic()

            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path == "/v1/_ledger":
                    with fake._lock:
                        entries = [{**e, "cost": str(e["cost"])} for e in fake.ledger]
                    return fake._send(self, 200, {"entries": entries, "billed": str(fake.billed())}, {})
                if parts.path != "/v1/_log":
                    return fake._send(self, 404, {"error": {"message": "not found"}}, {})
                since = int(parse_qs(parts.query).get("since", ["0"])[0])
                with fake._lock:
                    entries = [{k: v for k, v in e.items() if k != "messages"} for e in fake.log[since:]]
                fake._send(self, 200, {"entries": entries, "now": time.monotonic()}, {})

        return Handler

    def _admit(self, model: str, tokens: int) -> tuple[dict, float | None]:
        """Takes one request and `tokens` from the model's buckets: (the rate-limit headers, None),
        or (the headers, seconds until they could) when a bucket lacks them."""
        limits = {"requests": self.rpm, "tokens": self.tpm}
        wanted = {"requests": 1, "tokens": tokens}
        now = time.monotonic()
        with self._lock:
            buckets = self._buckets.setdefault(model, {kind: [limit * self.start_level, now]
                                                       for kind, limit in limits.items() if limit})
            levels = {}
            for kind, (level, stamp) in buckets.items():
                levels[kind] = min(limits[kind], level + limits[kind] / self.window * (now - stamp))
            short = {kind: (wanted[kind] - levels[kind]) / (limits[kind] / self.window) for kind in levels
                     if levels[kind] < wanted[kind]}
            if not short:
                for kind in levels:
                    levels[kind] -= wanted[kind]
            for kind in levels:
                buckets[kind] = [levels[kind], now]
        headers = {}
        for kind, level in levels.items():
            headers[f"x-ratelimit-limit-{kind}"] = str(limits[kind])
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(level)))
            reset = (limits[kind] - level) / (limits[kind] / self.window)
            headers[f"x-ratelimit-reset-{kind}"] = duration_text(reset)
        return headers, (max(short.values()) if short else None)

    def _answer(self, handler, body: dict, entry: dict) -> None:
        # Jitter is a function of the request: the same conversation waits the same time, so a
        # sequential baseline and the runner replaying it are compared fairly.
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
        spread = int.from_bytes(digest[:8], "big") / 2 ** 64 * 2 - 1
        delay = self.latency + self.jitter * spread
        entry["delay"] = delay
        limit_headers = {}
        prompt = sum(len(m["content"].encode()) for m in body.get("messages", [])) + len(json.dumps(
            body["response_format"]).encode() if "response_format" in body else b"")
        # What the token bucket counts: OpenAI's estimate at admission, the prompt and max tokens.
        entry["estimate"] = math.ceil(prompt / 4) + int(body.get("max_completion_tokens") or body.get("max_tokens")
                                                        or 256)
        if self.rpm or self.tpm:
            limit_headers, retry = self._admit(str(body.get("model")), entry["estimate"])
            if retry is not None:
                return self._send(handler, 429, {"error": {"message": "Rate limit reached", "type": "requests",
                                                           "code": "rate_limit_exceeded"}},
                                  entry, {**limit_headers, "retry-after-ms": str(math.ceil(retry * 1000))})
        failure = self._next_failure(entry["referee"], entry["schema"])
        if failure and failure["kind"] == "pass":
            failure = None
        if self.hang_all or (failure and failure["kind"] == "hang"):
            entry["status"] = "hung"
            self._released.wait(120)
            return
        time.sleep(max(0.0, delay))
        if failure and failure["kind"] == "429":
            headers = {"retry-after": str(failure["retry_after"] or 1)}
            return self._send(handler, 429, {"error": {"message": "Rate limit reached", "type": "requests"}},
                              entry, {**limit_headers, **headers})
        if failure and failure["kind"] == "quota":
            return self._send(handler, 429, {"error": {
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}, entry)
        if failure and failure["kind"] == "401":
            return self._send(handler, 401, {"error": {
                "message": "Incorrect API key provided: sk-test****. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, entry)
        if failure and failure["kind"] == "500":
            return self._send(handler, 500, {"error": {"message": "The server had an error", "type": "server"}},
                              entry, limit_headers)
        messages = body.get("messages", [])
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 256
        schema = entry["schema"]
        finish_reason = "stop"
        if failure and failure["kind"] == "malformed":
            text = "{not json"
        elif schema == "defining_moment":
            text = json.dumps(self.moment)
        elif schema == "head_to_head":
            text = json.dumps(self._head_to_head(messages))
        elif schema == "closer_proposal":
            text = json.dumps(self.proposal)
        elif schema == "persona_batch":
            text = json.dumps({"personas": self.generated_personas})
        elif entry["referee"]:
            text = json.dumps(self._verdict(messages))
        else:
            text = self._line(messages) + self.taint
        if failure and failure["kind"] == "text":
            text = failure["text"]
        if failure and failure["kind"] == "empty":
            text, finish_reason = "", "length"
        prompt_bytes = sum(len(m["content"].encode()) for m in messages)
        if "response_format" in body:
            prompt_bytes += len(json.dumps(body["response_format"]).encode())
        if self.usage == "max":
            prompt_tokens = prompt_bytes + 4 * len(messages) + 3
            cached, completion = 0, max_tokens
        else:
            prompt_tokens = max(1, prompt_bytes // 4)
            cached = (prompt_tokens // 128) * 64
            completion = min(max_tokens, max(1, len(text.encode("utf-8", "surrogatepass")) // 4))
        if finish_reason == "length":
            completion = max_tokens  # the reasoning spent the whole limit
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                 "total_tokens": prompt_tokens + completion,
                 "prompt_tokens_details": {"cached_tokens": cached}}
        entry["usage"] = usage
        outcome = self._bill(entry, str(body.get("model")), usage)
        if outcome == "drop":  # processed and billed; the connection closes with no answer
            entry["status"] = "dropped"
            handler.close_connection = True
            try:
                handler.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if outcome == "502":
            return self._send(handler, 502, {"error": {"message": "Bad gateway", "type": "server"}}, entry,
                              limit_headers)
        self._send(handler, 200, {
            "id": f"chatcmpl-{len(self.log)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": text}}],
            "usage": None if failure and failure["kind"] == "no_usage" else usage}, entry, limit_headers)

    def _bill(self, entry: dict, model: str, usage: dict) -> str:
        """Records the processed request in the ledger; says how it ends: "answer", "drop" or "502"."""
        cost = usage_cost(usage["prompt_tokens"], usage["prompt_tokens_details"]["cached_tokens"],
                          usage["completion_tokens"], price_for(model, {}))
        with self._lock:
            self._processed += 1
            number = self._processed
            outcome = ("drop" if self.drop_every and number % self.drop_every == 0
                       else "502" if self.gateway_error_every and number % self.gateway_error_every == 0
                       else "answer")
            self.ledger.append({"model": model, "usage": usage, "cost": cost, "outcome": outcome,
                                "at": time.monotonic()})
        return outcome

    def _line(self, messages: list[dict]) -> str:
        system = messages[0]["content"] if messages else ""
        if "Attack patterns" in system:
            turns = sum(1 for m in messages if m["role"] == "assistant")
            if self.accept_after_turns is not None and turns + 1 >= self.accept_after_turns:
                return "All right, you answered my worries. I accept. [ACCEPT]"
            return "I'm not convinced. Why should I trust a cash buyer with my home?"
        line = "I understand. Our offer is in writing, we pay closing costs, and you choose the date."
        effects = [int(value) for value in EFFECT_MARKER.findall(system)]
        return f"{line} (effect {sum(effects):+d})" if effects else line

    def _head_to_head(self, messages: list[dict]) -> dict:
        calls = (messages[-1]["content"] if messages else "").split("\n\nCALL B:\n", 1)
        first, second = (sum(int(v) for v in SAID_EFFECT.findall(call)) for call in (calls + [""])[:2])
        better = "A" if first > second else "B" if second > first else (self.head_to_head_lean or "tie")
        return {"better": better, "reason": "fake: compared the calls' effects"}

    def _verdict(self, messages: list[dict]) -> dict:
        transcript = messages[-1]["content"] if messages else ""
        with self._lock:
            score = self._referee_queue.popleft() if self._referee_queue else None
            if score is None and self.referee_fn is None and self.referee_random is not None:
                score = {name: self.referee_random.randint(0, 100) for name in CRITERIA}
        if score is None and self.referee_fn is not None:
            score = self.referee_fn(transcript)
        if score is None:  # the constant score, moved by the tactics the closer said, plus noise
            effect = SAID_EFFECT.search(transcript)
            score = self.referee_score + (int(effect.group(1)) if effect else 0)
            if self.referee_noise:
                with self._lock:
                    score += round(self._noise.gauss(0, self.referee_noise))
            score = max(0, min(100, score))
        scores = score if isinstance(score, dict) else {name: score for name in CRITERIA}
        return {"scores": scores, "feedback": "Solid." + self.taint, "winning_rebuttal": "Our offer is in writing.",
                "seller_agreed": False}

    @staticmethod
    def _send(handler, status: int, payload: dict, entry: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        entry["status"] = status
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            entry["status"] = "client_gone"


def duration_text(seconds: float) -> str:
    """OpenAI's (Go's) format for a duration: "20ms" below a second, else "1.5s", "6m0s", "1h0m0s";
    milliseconds are cut, not rounded, as a header can only say less than the time left."""
    millis = int(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    text = f"{millis / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return f"{hours}h{text}" if hours else text


def main() -> None:
    """Runs the fake on its own (benchmarks use a separate process, as a real server would be)."""
    import argparse

    parser = argparse.ArgumentParser(description="A local OpenAI-compatible fake server (127.0.0.1).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per call")
    parser.add_argument("--jitter", type=float, default=0.0, help="± seconds, uniform")
    parser.add_argument("--rpm", type=int, default=None, help="requests per window per model (429 beyond)")
    parser.add_argument("--tpm", type=int, default=None, help="tokens per window per model (429 beyond)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds a bucket takes to refill (60: per minute)")
    parser.add_argument("--usage", choices=("realistic", "max"), default="realistic")
    parser.add_argument("--start-level", type=float, default=1.0,
                        help="each bucket's share full at first (1: a fresh minute; 0.05: nearly used up)")
    args = parser.parse_args()
    fake = FakeOpenAI(latency=args.latency, jitter=args.jitter, rpm=args.rpm, tpm=args.tpm, usage=args.usage,
                      start_level=args.start_level, window=args.window)
    if args.port:
        fake.server.server_close()
        fake.server = ThreadingHTTPServer(("127.0.0.1", args.port), fake._handler())
        fake.server.daemon_threads = True
    print(fake.base_url, flush=True)
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
