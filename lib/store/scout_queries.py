"""The Tactical Scout's and the referee's queries: triage, leases of scout work, confirmations and
audits, alerts, the referee's consistency, calibration and drift alerts.

`ScoutQueries` is part of `lib.store.queries.Queries` (split off by concern, as `money.py` is);
the scout's shapes live here with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

from lib.store import JSONObject, Store
from lib.store.views import RefereeConsistency, RefereeReport


class ScoutWork(TypedDict):
    """A leased battle with scout work left: a confirmation, an audit, a defining moment or an alert."""

    id: str
    runId: str
    persona: str
    personaType: str
    score: float
    scores: dict[str, float] | None
    transcript: list[dict[str, str]]  # lines: `speaker` (closer or persona) and `text`
    winningRebuttal: str | None
    refereeFeedback: str | None
    definingMoment: str | None
    tacticalSnippet: str | None
    breakthrough: str | None  # a ReviewStatus once confirmed (or flagged before confirmation existed)
    confirmStatus: str | None  # pending, confirmed, unconfirmed, legacy
    confirmScore: float | None
    auditStatus: str | None  # pending, done
    slackStatus: str | None  # pending, sent, failed
    attempts: int
    simulated: bool


class ScoutLease(TypedDict):
    """`items` leased now, oldest first; `due`: battles with work left before this lease."""

    items: list[ScoutWork]
    due: int


class Triage(TypedDict):
    triaged: int
    candidates: int
    audits: int


@dataclass(frozen=True)
class Rescore:
    """One independent re-score of a battle by the scout."""

    model: str
    score: Decimal
    scores: dict[str, Any]
    cost_usd: Decimal

    def args(self) -> dict[str, Any]:
        return {"p_model": self.model, "p_score": self.score, "p_scores": self.scores, "p_cost_usd": self.cost_usd}


class ScoutQueries:
    store: Store

    def _one[T](self, shape: type[T], fn: str, *, deadline: float | None = None, **args: Any) -> T:
        raise NotImplementedError  # Queries' own

    # ---- Tactical Scout ----

    def triage_battles(self, threshold: int, audit_share: Decimal, audit_days: int, *,
                       deadline: float | None = None) -> Triage:
        """Marks completed battles seen, once each: candidates at or above `threshold` await
        confirmation; `audit_share` of those ended in the last `audit_days` await an audit."""
        return self._one(Triage, "training_triage_battles", deadline=deadline, p_threshold=threshold,
                         p_audit_share=audit_share, p_audit_days=audit_days)

    def lease_scout_work(self, limit: int, lease_seconds: int, *, slack: bool, max_attempts: int,
                         deadline: float | None = None) -> ScoutLease:
        """Leases battles with work left, oldest first; alerts count as work only with `slack`."""
        return self._one(ScoutLease, "training_lease_scout_work", deadline=deadline, p_limit=limit,
                         p_lease_seconds=lease_seconds, p_slack=slack, p_max_attempts=max_attempts)

    def record_confirmation(self, battle_id: str, rescore: Rescore, confirmed: bool, reason: str, *,
                            as_audit: bool = False, deadline: float | None = None) -> bool:
        """False if the candidate was already decided (by another scan)."""
        return bool(self.store.call_one("training_record_confirmation", deadline=deadline, p_battle_id=battle_id,
                                        **rescore.args(), p_confirmed=confirmed, p_reason=reason,
                                        p_as_audit=as_audit))

    def record_audit(self, battle_id: str, rescore: Rescore, *, deadline: float | None = None) -> bool:
        return bool(self.store.call_one("training_record_audit", deadline=deadline, p_battle_id=battle_id,
                                        **rescore.args()))

    def record_scout_error(self, battle_id: str, error: str, *, deadline: float | None = None) -> int:
        """Counts a failed model call for this battle; returns its attempts so far."""
        return int(self.store.call_one("training_record_scout_error", deadline=deadline, p_battle_id=battle_id,
                                       p_error=error))

    def record_defining_moment(self, battle_id: str, moment: str, snippet: str, *,
                               deadline: float | None = None) -> None:
        self.store.call_void("training_record_defining_moment", deadline=deadline, p_battle_id=battle_id,
                             p_defining_moment=moment, p_tactical_snippet=snippet)

    def mark_alerted(self, battle_id: str, *, deadline: float | None = None) -> bool:
        """Records a delivered alert; False if another scan already had (at most once)."""
        return bool(self.store.call_one("training_mark_alerted", deadline=deadline, p_battle_id=battle_id))

    def mark_alert_failed(self, battle_id: str, reason: str, *, deadline: float | None = None) -> bool:
        """Slack refused the alert for good: it is never retried, and the reason is kept."""
        return bool(self.store.call_one("training_mark_alert_failed", deadline=deadline, p_battle_id=battle_id,
                                        p_reason=reason))

    def release_scout_lease(self, battle_id: str, *, deadline: float | None = None) -> None:
        self.store.call_void("training_release_scout_lease", deadline=deadline, p_battle_id=battle_id)

    def scout_state(self, max_attempts: int) -> JSONObject:
        """Work left, work given up, Slack delivery counts and the last failures."""
        return self._one(JSONObject, "training_scout_state", p_max_attempts=max_attempts)

    # ---- the referee ----

    def referee_consistency(self, days: int, threshold: int, *, deadline: float | None = None) -> RefereeConsistency:
        return self._one(RefereeConsistency, "training_referee_consistency", deadline=deadline, p_days=days,
                         p_threshold=threshold)

    def referee_report(self, threshold: int, consistency_days: int, precision_days: int,
                       min_decisions: int) -> RefereeReport:
        return self._one(RefereeReport, "training_referee_report", p_threshold=threshold,
                         p_consistency_days=consistency_days, p_precision_days=precision_days,
                         p_min_decisions=min_decisions)

    def record_calibration(self, *, model: str, simulated: bool, spearman: float | None, in_band: float | None,
                           items: int, cost_usd: Decimal, result: JSONObject) -> JSONObject:
        return self._one(JSONObject, "training_record_calibration", p_model=model, p_simulated=simulated,
                         p_spearman=spearman, p_in_band=in_band, p_items=items, p_cost_usd=cost_usd,
                         p_result=result)

    def claim_drift_alert(self, mean_abs_diff: float, pairs: int, *, deadline: float | None = None) -> str | None:
        """Today's drift alert, claimed: its id, or None when one went out in the last 24 hours."""
        alert_id = self.store.call_one("training_claim_drift_alert", deadline=deadline,
                                       p_mean_abs_diff=mean_abs_diff, p_pairs=pairs)
        return None if alert_id is None else str(alert_id)

    def release_drift_alert(self, alert_id: str, *, deadline: float | None = None) -> None:
        self.store.call_void("training_release_drift_alert", deadline=deadline, p_id=alert_id)
