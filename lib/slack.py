"""Slack incoming-webhook messages (Block Kit). Model text is escaped for mrkdwn.

Every message leaves through `send`, which never raises: it logs a failure and returns what went
wrong, for the caller to record where its user will see it. `requests` loads on the first post.
"""
from __future__ import annotations

import logging

from lib.log import log

DASHBOARD_PATH = "/admin/training-monitor"


class SlackError(RuntimeError):
    """Slack did not take the message; `retryable` for 429 and 5xx (try again on the next scan)."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def escape(text) -> str:
    """Slack mrkdwn control characters: without this, `<!channel>` in a transcript pings everyone."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send(settings, payload: dict, *, timeout: float, **log_fields) -> SlackError | None:
    """Posts `payload` to `SLACK_WEBHOOK_URL`: the one way anything reaches Slack.

    Returns None when Slack took the message (or no webhook is set: nothing to send), else the
    `SlackError` (its text says what went wrong; `retryable` whether to try again), already logged
    as `slack_failed` with `log_fields`.
    """
    if not settings.slack_webhook_url:
        return None
    try:
        post(settings.slack_webhook_url, payload, timeout)
    except SlackError as exc:
        log("slack_failed", level=logging.WARNING, error=str(exc), **log_fields)
        return exc
    return None


def post(webhook_url: str, payload: dict, timeout: float = 5.0) -> None:
    """One POST to the webhook; raises `SlackError` unless Slack answers 2xx. Use `send`."""
    import requests

    try:
        response = requests.post(webhook_url, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        raise SlackError(f"Slack unreachable ({type(exc).__name__})", retryable=True) from None
    if not 200 <= response.status_code < 300:
        retryable = response.status_code == 429 or response.status_code >= 500
        raise SlackError(f"Slack answered HTTP {response.status_code}", retryable=retryable)


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


def _dashboard_button(app_url: str | None) -> list[dict]:
    if not app_url:
        return []
    return [{"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": "Review in dashboard"},
        "url": f"{app_url}{DASHBOARD_PATH}", "style": "primary"}]}]


def cost_cap_message(batch: dict, reason: str, app_url: str | None) -> dict:
    label = " (simulated run)" if batch.get("simulated") else ""
    text = f":rotating_light: Cost cap reached{label}: training paused after spending ${batch['totalCost']}"
    return {"text": text, "blocks": [
        _section(f"*{escape(text)}*"),
        _section(f"{escape(reason)}\nRun `{escape(batch['batchId'])}`: {batch['battlesStarted']} battles "
                 f"started, {batch['battlesKilled']} stopped.\nResume with `python -m lib resume` or the "
                 "dashboard once the cap or the cause is fixed."),
        *_dashboard_button(app_url),
    ]}


def breakthrough_message(battle: dict, app_url: str | None) -> dict:
    label = " (simulated LLM)" if battle.get("simulated") else ""
    confirmed = f" (confirmed at {battle['confirmScore']})" if battle.get("confirmScore") is not None else ""
    title = f":trophy: Breakthrough{label}: {battle['persona']} scored {battle['score']}{confirmed}"
    blocks = [
        _section(f"*{escape(title)}*"),
        _section(f"*Winning rebuttal*\n>{escape(battle.get('winningRebuttal') or '—')}"),
    ]
    if battle.get("definingMoment"):
        blocks.append(_section(f"*Defining moment*\n>{escape(battle['definingMoment'])}"))
    if battle.get("tacticalSnippet"):
        blocks.append(_section(f"*Tactical snippet*\n{escape(battle['tacticalSnippet'])}"))
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"Battle `{escape(battle['id'])}` · pending review"}]})
    return {"text": title, "blocks": blocks + _dashboard_button(app_url)}


def drift_message(consistency: dict, alert_above, cutoff: int, app_url: str | None) -> dict:
    """The referee disagrees with itself more than REFEREE_DRIFT_ALERT points on re-scored battles."""
    agreement = consistency.get("agreement")
    text = (f":warning: Referee drift: re-scored battles differ by {consistency['meanAbsDiff']} points on "
            f"average over {consistency['days']} days (alert above {alert_above})")
    worst = sorted((consistency.get("perCriterion") or {}).items(), key=lambda item: -item[1])[:2]
    detail = (f"{consistency['pairs']} audited pairs · "
              f"{'-' if agreement is None else f'{agreement * 100:.0f}%'} agree on the {cutoff} cutoff"
              + (" · widest: " + ", ".join(f"{escape(name)} {diff}" for name, diff in worst) if worst else "")
              + "\nCheck the referee model (`python -m lib referee-check`) before trusting new breakthroughs.")
    return {"text": text, "blocks": [_section(f"*{escape(text)}*"), _section(detail), *_dashboard_button(app_url)]}


def batch_summary_message(batch: dict, app_url: str | None) -> dict:
    label = " (simulated)" if batch.get("simulated") else ""
    text = (f":crossed_swords: Training batch{label}: {batch['breakthroughs']} breakthrough candidate(s) in "
            f"{batch['battlesCompleted']} completed battles")
    average = "-" if batch.get("averageScore") is None else f"{batch['averageScore']:.1f}"
    return {"text": text, "blocks": [
        _section(f"*{escape(text)}*"),
        _section(f"Average score {average} · spend ${batch['totalCost']} of ${batch['costCap']} · "
                 f"{batch['durationMs'] / 1000:.1f}s · run `{escape(batch['batchId'])}`"),
        *_dashboard_button(app_url),
    ]}
