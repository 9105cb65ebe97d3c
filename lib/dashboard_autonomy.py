"""The dashboard's autonomous-training views and actions (lib/dashboard.py registers them): the
closer's quality over time and the proposal queue with its actions (docs/http.md)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lib.config import Settings
from lib.http import ApiError, Body
from lib.store import JSONObject
from lib.store.proposal_queries import ProposalChange, ProposalQueries
from lib.store.queries import Queries

QUALITY_RANGES = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
MAX_TEXT = 1000
MAX_REASON = 500


def _id(body: Body, name: str = "proposalId") -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, {"error": f"{name} must be a positive integer"})
    return value


def _text(body: Body, name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(400, {"error": f"{name} must be {'a non-empty ' if required else 'a '}string"})
    if len(value) > limit:
        raise ApiError(400, {"error": f"{name} is {len(value)} characters long: the limit is {limit}"})
    return value


def _required_text(body: Body, name: str) -> str:
    text = _text(body, name, MAX_TEXT, True)
    assert text is not None  # required: _text refused anything else
    return text


def _tactic_id(body: Body) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(body.get("tacticId"))))
    except ValueError:
        raise ApiError(400, {"error": "tacticId must be a tactic id (a UUID)"}) from None


def quality(queries: Queries, query: Mapping[str, str], settings: Settings) -> JSONObject:
    """The closer's quality over time; with the simulator, each version's true quality too."""
    name = query.get("range") or "7d"
    if name not in QUALITY_RANGES:
        raise ApiError(400, {"error": f"range must be one of {', '.join(QUALITY_RANGES)}"})
    data: JSONObject = dict(_queue(queries).quality(QUALITY_RANGES[name], with_tactics=settings.simulated))
    from lib.simulator import expected_score, skill_of  # only a simulated deployment needs it

    tactics, difficulties = data.pop("versionTactics"), data.pop("difficulties")
    data["trueQuality"] = None if tactics is None else {
        version: round(expected_score(skill_of(texts), difficulties), 2) for version, texts in tactics.items()}
    return {**data, "range": name}


def _queue(queries: Queries) -> ProposalQueries:
    return ProposalQueries(queries.store)


def propose(queries: Queries, body: Body) -> ProposalChange:
    kind = body.get("kind", "add")
    if kind not in ("add", "remove", "edit"):
        raise ApiError(400, {"error": "kind must be add, remove or edit"})
    fast = body.get("fastTrack", False)
    if not isinstance(fast, bool):
        raise ApiError(400, {"error": "fastTrack must be true or false"})
    return _queue(queries).propose(kind, text=_text(body, "tacticText", MAX_TEXT, kind != "remove"),
                             tactic_id=None if kind == "add" else _tactic_id(body), proposed_by="a person (dashboard)",
                             reasoning=_text(body, "reason", MAX_REASON, False), fast_track=fast)


# Each answers `POST ?action=<name>` from (queries, the JSON body), as lib/dashboard.py's do.
ACTIONS: dict[str, Callable[[Queries, Body], object]] = {
    "propose": propose,
    "veto": lambda queries, body: _queue(queries).veto(_id(body), _text(body, "reason", MAX_REASON, False)),
    "fast-track": lambda queries, body: _queue(queries).fast_track(_id(body)),
    "move": lambda queries, body: _queue(queries).move(_id(body), _id(body, "position")),
    "edit-proposal": lambda queries, body: _queue(queries).edit(_id(body), _required_text(body, "tacticText")),
}
VIEWS: dict[str, Callable[[Queries, Mapping[str, str], Settings], Any]] = {
    "proposals": lambda queries, query, settings: _queue(queries).listing(),
    "quality": quality,
}
