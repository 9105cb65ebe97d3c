"""Slack incoming-webhook messages (Block Kit). Model text is escaped for mrkdwn."""
from __future__ import annotations

import requests

DASHBOARD_PATH = "/admin/training-monitor"


class SlackError(RuntimeError):
    """Slack did not take the message; `retryable` for 429 and 5xx (try again on the next scan)."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def escape(text) -> str:
    """Slack mrkdwn control characters: without this, `<!channel>` in a transcript pings everyone."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post(webhook_url: str, payload: dict, timeout: float = 5.0) -> None:
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


def kill_switch_message(batch: dict, reason: str, app_url: str | None) -> dict:
    label = " (simulated run)" if batch.get("simulated") else ""
    text = f":rotating_light: Kill-switch activated{label}: training paused after spending ${batch['totalCost']}"
    return {"text": text, "blocks": [
        _section(f"*{escape(text)}*"),
        _section(f"{escape(reason)}\nRun `{escape(batch['batchId'])}`: {batch['battlesStarted']} battles "
                 f"started, {batch['battlesKilled']} stopped.\nResume with `python -m lib resume` or the "
                 "dashboard once the cap or the cause is fixed."),
        *_dashboard_button(app_url),
    ]}


def breakthrough_message(battle: dict, app_url: str | None) -> dict:
    label = " (simulated LLM)" if battle.get("simulated") else ""
    title = f":trophy: Breakthrough{label}: {battle['persona']} scored {battle['score']}"
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


def batch_summary_message(batch: dict, app_url: str | None) -> dict:
    label = " (simulated)" if batch.get("simulated") else ""
    text = (f":crossed_swords: Training batch{label}: {batch['breakthroughs']} breakthrough(s) in "
            f"{batch['battlesCompleted']} completed battles")
    average = "-" if batch.get("averageScore") is None else f"{batch['averageScore']:.1f}"
    return {"text": text, "blocks": [
        _section(f"*{escape(text)}*"),
        _section(f"Average score {average} · spend ${batch['totalCost']} of ${batch['costCap']} · "
                 f"{batch['durationMs'] / 1000:.1f}s · run `{escape(batch['batchId'])}`"),
        *_dashboard_button(app_url),
    ]}


CANARY_ICONS = {"adopted": ":white_check_mark:", "rolled_back": ":leftwards_arrow_with_hook:",
                "inconclusive": ":grey_question:"}


def canary_decision_message(outcome: dict, app_url: str | None, simulated: bool = False) -> dict:
    """A canary's decision: what changed, the difference with its interval, the number of pairs."""
    version, parent = outcome["version"], outcome["parent"]
    label = " (simulated LLM)" if simulated else ""
    title = f"{CANARY_ICONS.get(version['decision'], '')} Closer {outcome['message']}{label}".strip()
    low, high = version["ci95"] or (None, None)
    interval = f" (95% interval {low:+.1f} to {high:+.1f})" if low is not None else ""
    diff = "-" if version["diff"] is None else f"{version['diff']:+.1f}"
    return {"text": title, "blocks": [
        _section(f"*{escape(title)}*"),
        _section(f"*What changed in v{version['id']}*\n{escape(version['change'])}"),
        _section(f"Score difference against v{parent['id']}: *{diff} points*{interval} over "
                 f"{version['pairs']} paired battles (same persona, same run)."),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(version.get("note") or "")
                                          or "recorded"}]},
        *_dashboard_button(app_url),
    ]}
