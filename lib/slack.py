"""Slack incoming-webhook messages (Block Kit). Model text is escaped for mrkdwn, everywhere.

Every message leaves through `send`, which never raises: it logs a failure and returns what went
wrong (a `Failure`: the text, and whether it is permanent), for the caller to record where its
user will see it. `requests` loads on the first post.

Limits are Block Kit's (checked against slackapi/python-slack-sdk's models): a section's text at
most 3000 characters, a button's text 75, its URL 3000.
"""
from __future__ import annotations

import logging
import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lib.config import Settings
from lib.log import log
from lib.redact import redact
from lib.store.proposal_queries import Proposal
from lib.store.queries import BatchSummary, CanaryRecord
from lib.store.scout_queries import ScoutWork
from lib.store.views import RefereeConsistency

if TYPE_CHECKING:
    import requests

# A Slack message (or one of its blocks), as the webhook takes it.
type Payload = dict[str, Any]

DASHBOARD_PATH = "/admin/training-monitor"
SECTION_TEXT_MAX = 3000
FALLBACK_TEXT_MAX = 3000
# A 429's Retry-After is waited out (once) when the wait and another try fit in the call's time.
MIN_ATTEMPT_S = 0.5

# What Slack's error body means, for the incoming-webhook errors Slack documents. Every 4xx other
# than 408 and 429 is permanent: the same request will be refused again.
_WEBHOOK_GONE = "the webhook was revoked or is wrong: set SLACK_WEBHOOK_URL to a working incoming webhook"
_CHANNEL_REFUSES = "the webhook's channel refuses posts: unarchive it or create a new webhook"
_MESSAGE_REFUSED = "Slack refused this message"
HINTS = {
    "no_service": _WEBHOOK_GONE, "no_service_id": _WEBHOOK_GONE, "no_team": _WEBHOOK_GONE,
    "team_disabled": _WEBHOOK_GONE, "no_active_hooks": _WEBHOOK_GONE, "invalid_token": _WEBHOOK_GONE,
    "channel_not_found": _CHANNEL_REFUSES, "channel_is_archived": _CHANNEL_REFUSES,
    "action_prohibited": _CHANNEL_REFUSES, "posting_to_general_channel_denied": _CHANNEL_REFUSES,
    "user_not_found": _CHANNEL_REFUSES,
    "invalid_payload": _MESSAGE_REFUSED, "invalid_blocks": _MESSAGE_REFUSED, "invalid_blocks_format": _MESSAGE_REFUSED,
    "too_many_attachments": _MESSAGE_REFUSED, "no_text": _MESSAGE_REFUSED, "msg_too_long": _MESSAGE_REFUSED,
}
STATUS_HINTS = {404: _WEBHOOK_GONE, 410: _WEBHOOK_GONE, 403: _CHANNEL_REFUSES, 400: _MESSAGE_REFUSED}


class SlackError(RuntimeError):
    """Slack did not take the message.

    `permanent`: no retry will help (a revoked webhook, an archived channel, a refused message):
    Slack answered 4xx other than 408 and 429. Otherwise (unreachable, 408, 429, 5xx) another try may
    succeed. `status` and `slack_error` are Slack's answer (its body, e.g. `no_service`);
    `retry_after` the seconds Slack asked to wait (429), when it said.
    """

    def __init__(self, message: str, *, permanent: bool, status: int | None = None, slack_error: str | None = None,
                 retry_after: float | None = None):
        super().__init__(redact(message))
        self.permanent = permanent
        self.status = status
        self.slack_error = slack_error
        self.retry_after = retry_after


class Failure(str):
    """What `send` answers when Slack did not take the message: the text, plus `permanent` and the
    `error` itself. A `str`, so callers that record the text record it unchanged."""

    error: SlackError

    def __new__(cls, error: SlackError) -> Failure:
        failure = super().__new__(cls, str(error))
        failure.error = error
        return failure

    @property
    def permanent(self) -> bool:
        return self.error.permanent


def escape(text: object) -> str:
    """Slack mrkdwn control characters: without this, `<!channel>` in a transcript pings everyone."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send(settings: Settings, payload: Payload, *, timeout: float, **log_fields: Any) -> Failure | None:
    """Posts `payload` to `SLACK_WEBHOOK_URL`: the one way anything reaches Slack.

    Returns None when Slack took the message (or no webhook is set: nothing to send), else a
    `Failure` saying what went wrong and whether it is permanent, already logged as
    `slack_failed` with `log_fields`. `timeout` bounds the whole send, a Retry-After wait included.
    """
    if not settings.slack_webhook_url:
        return None
    try:
        post(settings.slack_webhook_url, payload, timeout)
    except SlackError as exc:
        log("slack_failed", level=logging.WARNING, error=str(exc), permanent=exc.permanent, status=exc.status,
            slackError=exc.slack_error, **log_fields)
        return Failure(exc)
    return None


def post(webhook_url: str, payload: Payload, timeout: float = 5.0) -> None:
    """POSTs to the webhook within `timeout` seconds; raises `SlackError` unless Slack answers 2xx.

    A 429 (or 503) with Retry-After is waited out and tried once more if both fit. Use `send`.
    """
    import requests

    deadline = time.monotonic() + timeout
    for attempt in range(2):
        try:
            response = requests.post(webhook_url, json=payload, timeout=max(MIN_ATTEMPT_S, deadline - time.monotonic()))
        except requests.RequestException as exc:
            raise SlackError(f"Slack unreachable ({type(exc).__name__})", permanent=False) from None
        if 200 <= response.status_code < 300:
            return
        error = _error_from(response)
        wait = error.retry_after
        if attempt or wait is None or time.monotonic() + wait + MIN_ATTEMPT_S > deadline:
            raise error
        time.sleep(wait)


def _error_from(response: requests.Response) -> SlackError:
    status = response.status_code
    body = response.text.strip()
    # Slack answers errors as a short code (`no_service`); anything else is kept short.
    slack_error = body[:100] if body else None
    retry_after = _retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    permanent = 400 <= status < 500 and status not in (408, 429)
    message = f"Slack answered HTTP {status}" + (f" {slack_error}" if slack_error else "")
    if permanent:
        hint = HINTS.get(slack_error or "") or STATUS_HINTS.get(status) or "Slack refused the request"
        message += f" (permanent failure: {hint})"
    elif retry_after is not None:
        message += f" (Slack asked to retry after {retry_after:g}s)"
    return SlackError(message, permanent=permanent, status=status, slack_error=slack_error, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None


def _fit(text: str, limit: int) -> str:
    """`text` (already escaped) cut to `limit` characters, never inside an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]{0,3}$", "", text[: limit - 1]) + "…"


def _message(fallback: str, blocks: list[Payload]) -> Payload:
    """The payload: `text` is the notification's fallback, and is model text too (persona names)."""
    return {"text": _fit(escape(fallback), FALLBACK_TEXT_MAX), "blocks": blocks}


def _section(text: str) -> Payload:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(text, SECTION_TEXT_MAX)}}


def _usd(amount: object) -> str:
    """`$0.008594125`, never `$8.594125e-03`: amounts are exact (see lib.budget)."""
    return f"${Decimal(str(amount)).normalize():f}"


def _dashboard_button(app_url: str | None) -> list[Payload]:
    if not app_url:
        return []
    return [{"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": "Review in dashboard"},
        "url": f"{app_url}{DASHBOARD_PATH}", "style": "primary"}]}]


def cost_cap_message(batch: BatchSummary, reason: str, app_url: str | None) -> Payload:
    label = " (simulated run)" if batch.get("simulated") else ""
    text = f":rotating_light: Cost cap reached{label}: training paused after spending {_usd(batch['totalCost'])}"
    return _message(text, [
        _section(f"*{escape(text)}*"),
        _section(f"{escape(reason)}\nRun `{escape(batch['runId'])}`: {batch['battlesStarted']} battles "
                 f"started, {batch['battlesKilled']} stopped.\nResume with `python -m lib resume` or the "
                 "dashboard once the cap or the cause is fixed."),
        *_dashboard_button(app_url),
    ])


def run_failed_message(batch: BatchSummary, app_url: str | None) -> Payload:
    label = " (simulated run)" if batch.get("simulated") else ""
    text = f":x: Training run failed{label}: {batch.get('error') or 'see the run in the dashboard'}"
    return _message(text, [
        _section(f"*{escape(text)}*"),
        _section(f"Run `{escape(batch['runId'])}`: {batch['battlesStarted']} battles started, "
                 f"{batch['battlesCompleted']} completed, {batch['battlesFailed']} failed; spend "
                 f"{_usd(batch['totalCost'])}. The next run starts on schedule; until the cause is fixed it "
                 "will fail the same way."),
        *_dashboard_button(app_url),
    ])


def breakthrough_message(battle: ScoutWork, app_url: str | None) -> Payload:
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
    return _message(title, blocks + _dashboard_button(app_url))


def drift_message(consistency: RefereeConsistency, alert_above: object, cutoff: int, app_url: str | None) -> Payload:
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


def batch_summary_message(batch: BatchSummary, app_url: str | None) -> Payload:
    label = " (simulated)" if batch.get("simulated") else ""
    text = (f":crossed_swords: Training batch{label}: {batch['breakthroughs']} breakthrough candidate(s) in "
            f"{batch['battlesCompleted']} completed battles")
    average = "-" if batch.get("averageScore") is None else f"{batch['averageScore']:.1f}"
    return _message(text, [
        _section(f"*{escape(text)}*"),
        _section(f"Average score {average} · spend {_usd(batch['totalCost'])} of {_usd(batch['costCap'])}"
                 + (f" ({escape(batch['billingNote'])})" if batch.get("billingNote") else "")
                 + f" · {(batch['durationMs'] or 0) / 1000:.1f}s · run `{escape(batch['runId'])}`"),
        *_dashboard_button(app_url),
    ])


CANARY_ICONS = {"adopted": ":white_check_mark:", "rolled_back": ":leftwards_arrow_with_hook:",
                "inconclusive": ":grey_question:"}


def canary_decision_message(outcome: CanaryRecord, app_url: str | None, simulated: bool = False,
                            unit: str = "score") -> Payload:
    """A canary's decision: what changed, the difference with its interval (in points, or in
    head-to-head verdicts with CANARY_VERDICT=head_to_head), the number of pairs."""
    version, parent = outcome["version"], outcome["parent"]
    label = " (simulated LLM)" if simulated else ""
    title = f"{CANARY_ICONS.get(version['decision'] or '', '')} Closer {outcome['message']}{label}".strip()
    low, high = version["ci95"] or (None, None)
    interval = f" (95% interval {low:+.1f} to {high:+.1f})" if low is not None else ""
    diff = "-" if version["diff"] is None else f"{version['diff']:+.1f}"
    return _message(title, [
        _section(f"*{escape(title)}*"),
        _section(f"*What changed in v{version['id']}*\n{escape(version['change'])}"),
        _section(f"Head-to-head verdicts against v{parent['id']}: *{diff}* (wins − losses per 100 pairs, the "
                 f"judge seeing both calls){interval} over {version['pairs']} paired battles (same persona, same run)."
                 if unit == "head_to_head" else
                 f"Score difference against v{parent['id']}: *{diff} points*{interval} over "
                 f"{version['pairs']} paired battles (same persona, same run)."),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(version.get("note") or "")
                                          or "recorded"}]},
        *_dashboard_button(app_url),
    ])


def describe_proposal(proposal: Proposal) -> str:
    """What a proposal changes, in one line (the CLI prints the same)."""
    if proposal["kind"] == "add":
        return f'add "{proposal["text"]}"'
    if proposal["kind"] == "remove":
        return f'remove "{proposal["tacticText"]}"'
    return f'edit "{proposal["tacticText"]}" to "{proposal["text"]}"'


def proposal_message(proposal: Proposal, app_url: str | None, simulated: bool = False) -> Payload:
    """A proposal entered the queue: what it changes, who proposed it and why, and how to veto it."""
    label = " (simulated LLM)" if simulated else ""
    title = f":inbox_tray: Proposal #{proposal['id']} entered the queue ({proposal['source']}){label}"
    where = "under canary now" if proposal["status"] == "canary" else "waiting for its canary"
    detail = f"*{escape(describe_proposal(proposal))}*\nBy {escape(proposal['proposedBy'])}, {where}."
    if proposal.get("reasoning"):
        detail += f"\n_Why:_ {escape(proposal['reasoning'])}"
    return _message(title, [
        _section(f"*{escape(title)}*"), _section(detail),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Veto it: `python -m lib veto {proposal['id']}` "
                                                                    "or on the dashboard."}]},
        *_dashboard_button(app_url),
    ])
