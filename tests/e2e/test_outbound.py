"""What leaves for other services: the scout webhook and Slack, against real local servers."""
import json
import re
import time

import pytest
import requests

from devtools.fakes.receiver import Receiver
from lib import slack as slack_api
from tests.conftest import BYPASS, SECRET, free_port, seed_personas

AUTH = {"Authorization": f"Bearer {SECRET}"}


def test_the_scout_webhook_follows_no_redirect_and_says_what_to_set(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    elsewhere = Receiver()  # another host: what a redirect would hand the bypass secret to
    redirector = Receiver()
    redirector.redirect_to = elsewhere.url.replace("127.0.0.1", "localhost")
    server = start_server(NEXT_PUBLIC_APP_URL=redirector.url, VERCEL_AUTOMATION_BYPASS_SECRET=BYPASS)
    batch = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30).json()["batch"]
    redirector.stop()
    elsewhere.stop()
    [call] = redirector.received
    assert call["headers"]["x-vercel-protection-bypass"] == BYPASS
    assert elsewhere.received == [], "the bypass secret never reaches the redirect's target"
    assert batch["scoutNotified"] is False
    port = elsewhere.url.rsplit(":", 1)[1]
    assert (f"Failed to notify Tactical Scout: HTTP 307 redirect to http://localhost:{port}/api/cron/scout-scan "
            "(redirects are not followed: set NEXT_PUBLIC_APP_URL to this deployment's final URL)") in batch["errors"]
    assert db.execute("select scout_notified from training_runs").fetchone()[0] is False


# ---- Slack ----

def slack_settings(make_settings, receiver):
    return make_settings(SLACK_WEBHOOK_URL=receiver.url + "/services/T0/B0/slacksecret")


@pytest.mark.parametrize("status, body, hint", [
    (404, "no_service", "the webhook was revoked or is wrong: set SLACK_WEBHOOK_URL to a working incoming webhook"),
    (410, "", "the webhook was revoked or is wrong: set SLACK_WEBHOOK_URL to a working incoming webhook"),
    (410, "channel_is_archived", "the webhook's channel refuses posts: unarchive it or create a new webhook"),
    (403, "action_prohibited", "the webhook's channel refuses posts: unarchive it or create a new webhook"),
    (400, "invalid_blocks", "Slack refused this message"),
])
def test_a_permanent_slack_failure_keeps_slacks_words_and_says_it_is_permanent(make_settings, status, body, hint):
    receiver = Receiver(status)
    receiver.body = body
    failure = slack_api.send(slack_settings(make_settings, receiver), {"text": "hi"}, timeout=5)
    receiver.stop()
    shown = f" {body}" if body else ""
    assert failure == f"Slack answered HTTP {status}{shown} (permanent failure: {hint})"
    assert failure.permanent is True and failure.error.status == status
    assert failure.error.slack_error == (body or None)
    assert len(receiver.received) == 1, "a permanent failure is not retried"


@pytest.mark.parametrize("status", [500, 503, 408])
def test_a_transient_slack_failure_is_not_permanent(make_settings, status):
    receiver = Receiver(status)
    receiver.body = "rollup_error"
    failure = slack_api.send(slack_settings(make_settings, receiver), {"text": "hi"}, timeout=5)
    receiver.stop()
    assert failure == f"Slack answered HTTP {status} rollup_error" and failure.permanent is False


def test_unreachable_slack_is_not_permanent(make_settings):
    settings = make_settings(SLACK_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/services/T/B/X")
    failure = slack_api.send(settings, {"text": "hi"}, timeout=2)
    assert failure.startswith("Slack unreachable") and failure.permanent is False


def test_retry_after_is_honoured_within_the_time_given(make_settings):
    receiver = Receiver()
    receiver.answer_next(429, "rate_limited", {"Retry-After": "1"})
    assert slack_api.send(slack_settings(make_settings, receiver), {"text": "hi"}, timeout=5) is None
    receiver.stop()
    first, second = receiver.received
    assert (first["status"], second["status"]) == (429, 200)
    assert second["arrived"] - first["arrived"] >= 0.95, "the second try waited Slack's Retry-After"


def test_a_retry_after_past_the_time_given_is_reported_not_waited(make_settings):
    receiver = Receiver()
    receiver.answer_next(429, "rate_limited", {"Retry-After": "30"})
    started = time.monotonic()
    failure = slack_api.send(slack_settings(make_settings, receiver), {"text": "hi"}, timeout=2)
    receiver.stop()
    assert time.monotonic() - started < 2
    assert failure == "Slack answered HTTP 429 rate_limited (Slack asked to retry after 30s)"
    assert failure.permanent is False and failure.error.retry_after == 30
    assert len(receiver.received) == 1


def test_model_text_is_escaped_in_the_fallback_text_too(start_server, psycopg_store, db, fake_openai, slack):
    fake_openai.referee_score = 99
    db.execute("insert into sandbox_personas (name, persona_type, system_prompt) values "
               "('<!channel> Dale & <https://evil.test|Co>', 'odd', 'You are Dale.')")
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30)
    requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30)
    [alert] = [body for body in slack.bodies() if ":trophy:" in body["text"]]
    assert alert["text"].startswith(":trophy: Breakthrough: &lt;!channel&gt; Dale &amp; &lt;https://evil.test|Co&gt;")
    assert "<!channel>" not in json.dumps(alert) and "<https://evil" not in json.dumps(alert)


def test_a_huge_model_text_fits_block_kit_limits_without_a_broken_entity():
    battle = {"id": "b1", "persona": "<P>" * 2000, "score": 99, "winningRebuttal": "&" * 5000,
              "definingMoment": "<" * 5000, "tacticalSnippet": "x" * 10_000}
    message = slack_api.breakthrough_message(battle, "https://app.example")  # type: ignore[arg-type]  # partial
    assert len(message["text"]) <= slack_api.FALLBACK_TEXT_MAX
    for block in message["blocks"]:
        if block["type"] == "section":
            text = block["text"]["text"]
            assert len(text) <= 3000, len(text)
            assert not re.search(r"&[a-z]{0,3}…$", text), "an entity was cut in half"
    button = message["blocks"][-1]["elements"][0]
    assert len(button["text"]["text"]) <= 75 and len(button["url"]) <= 3000
