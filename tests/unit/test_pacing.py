"""Pacing to the provider's rate limits: the fake's RPM/TPM buckets, the pacer's arithmetic, and a
run that keeps under a token limit its battles need more than."""
import threading
import time

import pytest

from lib.llm import Stopped
from lib.pacing import MARGIN_SHARE, Pacer, parse_duration


def test_the_pacer_brings_the_providers_figure_forward_past_the_calls_sent_since():
    pacer, stop = Pacer(), threading.Event()
    deadline = time.monotonic() + 60
    first = pacer.acquire("m", 100, deadline, stop)
    pacer.acquire("m", 100, deadline, stop)
    pacer.acquire("m", 100, deadline, stop)
    # The provider admitted the first call with 1000 tokens left of 6000 a minute: two calls left since.
    pacer.observe(first, {"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "1000"})
    bucket = pacer._models["m"].tokens
    now = time.monotonic()
    assert 800 <= bucket.available(now) <= 800 + 100 * (now - first.sent) + 1
    # A call that needs more than is left (with the margin) waits for the refill at 100 tokens/s.
    started = time.monotonic()
    pacer.acquire("m", 1000 - 800 + 100, deadline, stop)
    assert time.monotonic() - started >= (300 + 6000 * MARGIN_SHARE - 800 - 1) / 100 * 0.9
    # An older answer arriving late does not move the estimate back.
    level = bucket.available(time.monotonic())
    pacer.observe(first, {"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "6000"})
    assert bucket.available(time.monotonic()) < level + 50


def test_a_stopped_run_does_not_wait_for_the_rate_limit():
    pacer, stop = Pacer(), threading.Event()
    ticket = pacer.acquire("m", 10, time.monotonic() + 60, stop)
    pacer.observe(ticket, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0"})
    stop.set()
    started = time.monotonic()
    with pytest.raises(Stopped):
        pacer.acquire("m", 10, time.monotonic() + 60, stop)
    assert time.monotonic() - started < 0.5


def test_no_battle_starts_while_a_call_waits_for_the_limit():
    pacer, stop = Pacer(), threading.Event()
    ticket = pacer.acquire("m", 10, time.monotonic() + 60, stop)
    pacer.observe(ticket, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0"})
    assert pacer.wait_while_throttled(0, float("-inf")), "no call has waited yet: start freely"

    def acquire_until_stopped() -> None:
        with pytest.raises(Stopped):
            pacer.acquire("m", 10, time.monotonic() + 60, stop)

    blocked = threading.Thread(target=acquire_until_stopped)
    blocked.start()
    deadline = time.monotonic() + 5
    while pacer._waiting == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not pacer.wait_while_throttled(0.2, float("-inf")), "a call waits: no new battle"
    stop.set()
    blocked.join(5)
    assert not pacer.wait_while_throttled(0, float("-inf")), "it waited a moment ago"
    assert pacer.wait_while_throttled(5, float("-inf")), "a call's time later, one more may start"
    assert not pacer.wait_while_throttled(0, time.monotonic()), "near the limit, one per call's time"


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1m30.5s", 90.5),
                                           ("1h2m3s", 3723.0), ("0.500s", 0.5), ("350us", 0.00035), ("2.5", 2.5)])
def test_reset_durations_in_openais_format_are_read(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "1x", "1m 2s", "-1s", "inf", "nan", "1e999s"])
def test_a_reset_that_is_not_a_duration_is_ignored(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize("limit", ["1e-322", "5e-324", "0.5", "0", "-10", "inf", "-inf", "nan", "lots"])
def test_a_limit_that_is_not_finite_or_below_one_is_ignored(limit):
    pacer, stop = Pacer(), threading.Event()
    ticket = pacer.acquire("m", 10, time.monotonic() + 60, stop)
    pacer.observe(ticket, {"x-ratelimit-limit-requests": limit, "x-ratelimit-remaining-requests": "0",
                           "x-ratelimit-limit-tokens": limit, "x-ratelimit-remaining-tokens": "0",
                           "x-ratelimit-reset-requests": "1s"})
    state = pacer._models["m"]
    assert state.requests is None and state.tokens is None
    started = time.monotonic()
    pacer.acquire("m", 10, time.monotonic() + 60, stop)  # no bucket: nothing to wait for (and no ZeroDivisionError)
    assert time.monotonic() - started < 0.5


def observed(pacer: Pacer, stop, headers: dict) -> None:
    pacer.observe(pacer.acquire("m", 1, time.monotonic() + 60, stop), headers)


def test_the_refill_window_is_learned_from_the_reset_headers():
    pacer, stop = Pacer(), threading.Event()
    # No reset header: a minute, as OpenAI's limits.
    observed(pacer, stop, {"x-ratelimit-limit-requests": "300", "x-ratelimit-remaining-requests": "150"})
    assert pacer._models["m"].requests.rate == pytest.approx(300 / 60)
    # 10 a second: 6 used refill in 600 ms. Tokens: 4,000 a second, 1,000 used refill in 250 ms.
    observed(pacer, stop, {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "4",
                           "x-ratelimit-reset-requests": "600ms", "x-ratelimit-limit-tokens": "4000",
                           "x-ratelimit-remaining-tokens": "3000", "x-ratelimit-reset-tokens": "250ms"})
    requests_bucket, tokens_bucket = pacer._models["m"].requests, pacer._models["m"].tokens
    assert requests_bucket.rate == pytest.approx(10) and tokens_bucket.rate == pytest.approx(4000)
    # `remaining` is rounded down (4.6 shown as 4, 540 ms to full): that figure is short, the window stays.
    observed(pacer, stop, {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "4",
                           "x-ratelimit-reset-requests": "540ms"})
    assert requests_bucket.window == pytest.approx(1.0)
    # A full bucket says nothing about its window; a per-day limit (86,400 s) is learned as such.
    observed(pacer, stop, {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "10",
                           "x-ratelimit-reset-requests": "0s"})
    assert requests_bucket.window == pytest.approx(1.0)
    observed(pacer, stop, {"x-ratelimit-limit-requests": "1000", "x-ratelimit-remaining-requests": "900",
                           "x-ratelimit-reset-requests": "2h24m0s"})
    assert pacer._models["m"].requests.window == pytest.approx(86_400)


def test_a_drained_one_second_bucket_is_waited_for_a_fraction_of_a_second():
    pacer, stop = Pacer(), threading.Event()
    observed(pacer, stop, {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "0",
                           "x-ratelimit-reset-requests": "1s"})
    started = time.monotonic()
    pacer.acquire("m", 1, time.monotonic() + 60, stop)
    waited = time.monotonic() - started
    # 1 request plus the margin at 10 a second: 0.15 s, where a minute's window would make it 9 s.
    assert 0.1 <= waited < 5, waited
