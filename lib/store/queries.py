"""Everything the app asks the database, one method per SQL function in `lib/sql/schema.sql`.

`Queries` sits over a `Store` (psycopg or PostgREST; see `lib.store`) the way procrastinate's
`JobManager` sits over its connectors: callers pass typed arguments and get typed results, and
never name a SQL function. Results are the JSON the functions build (dicts with camelCase keys),
typed here with `TypedDict`s so they can be returned as HTTP bodies unchanged.

Every method takes an optional `deadline` (a `time.monotonic()` value): transient failures are
retried until then (see `lib.store.retry_until`).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypedDict

from lib.store import Store


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    KILLED = "killed"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


class BattleStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    KILLED = "killed"


class ReviewStatus(StrEnum):
    """A breakthrough's review state."""

    PENDING_REVIEW = "pending_review"
    REVIEWED = "reviewed"
    PROMOTED = "promoted"
    REJECTED = "rejected"


class Trigger(StrEnum):
    CRON = "cron"
    MANUAL = "manual"
    CLI = "cli"


class Persona(TypedDict):
    id: str
    name: str
    persona_type: str
    system_prompt: str
    characteristics: dict
    attack_patterns: list


class BatchSummary(TypedDict, total=False):
    """A run's figures: the HTTP response's `batch`, the CLI summary, a row of the run history."""

    batchId: str
    status: str
    trigger: str
    simulated: bool
    requestedBatchSize: int | None
    batchSize: int
    battlesStarted: int
    battlesCompleted: int
    battlesFailed: int
    battlesTimedOut: int
    battlesKilled: int
    totalCost: float
    costCap: float
    averageScore: float | None
    breakthroughs: int
    killSwitchTriggered: bool
    timedOut: bool
    durationMs: int | None
    scoutNotified: bool | None
    errors: list[str]
    startedAt: str
    finishedAt: str | None
    error: str | None


class BudgetPeriod(TypedDict):
    """One UTC day or month: recorded spend, the unspent blocks of runs in progress, the limit."""

    spent: float
    reserved: float
    limit: float | None  # null: no budget for this period
    resetsAt: str


class BudgetState(TypedDict):
    day: BudgetPeriod
    month: BudgetPeriod


class BudgetGrant(BudgetState, total=False):
    """The block a run took: `block` (its cost cap for this run), `limitedBy` (`cap`, `day` or
    `month`) and `exhausted` (the message for when a day- or month-limited block is spent)."""

    status: str
    block: float
    limitedBy: str
    exhausted: str | None


class RunStart(TypedDict, total=False):
    """`status` is `started` (with `run`, `personas`, `recovered`, `expectedBattleMs`, `budget`) or a
    refusal: `paused` (`reason`, `pausedBy`, `since`), `busy` (`runId`), `no_personas`,
    `no_free_personas`, or `budget` (`error`, `reason`, `period`, `retryAfterS`, `alert`, `day`,
    `month`)."""

    status: str
    run: BatchSummary
    personas: list[Persona]
    recovered: int
    expectedBattleMs: int
    budget: BudgetGrant
    reason: str | None
    since: str
    runId: str
    error: str
    period: str
    retryAfterS: int
    alert: bool


class PauseState(TypedDict):
    paused: bool
    reason: str | None
    pausedBy: str | None  # person, cost_cap, or None when running
    updatedAt: str


class Tactic(TypedDict):
    id: str
    tactic_text: str
    priority: int


class UpsertResult(TypedDict):
    name: str
    action: str  # inserted, updated or unchanged


class ScoutWork(TypedDict):
    """A leased breakthrough that still needs a defining moment or an alert."""

    id: str
    runId: str
    persona: str
    score: float
    transcript: list
    winningRebuttal: str | None
    refereeFeedback: str | None
    definingMoment: str | None
    tacticalSnippet: str | None
    alerted: bool
    simulated: bool


@dataclass(frozen=True)
class BattleRecord:
    """What a battle row is saved with, after each turn and at its end."""

    transcript: list
    turns: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_usd: Decimal

    def args(self) -> dict[str, Any]:
        return {"p_transcript": self.transcript, "p_turns": self.turns, "p_prompt_tokens": self.prompt_tokens,
                "p_cached_tokens": self.cached_tokens, "p_completion_tokens": self.completion_tokens,
                "p_cost_usd": self.cost_usd}


@dataclass(frozen=True)
class VerdictRecord:
    """The referee's verdict as a battle row keeps it."""

    score: Decimal | None
    scores: dict | None
    feedback: str | None
    winning_rebuttal: str | None
    seller_agreed: bool | None


class Queries:
    def __init__(self, store: Store):
        self.store = store

    # ---- personas ----

    def upsert_personas(self, personas: list[dict]) -> list[UpsertResult]:
        return self.store.call_all("training_upsert_personas", p_personas=personas)

    def persona_names(self) -> list[str]:
        return self.store.call_all("training_persona_names")

    # ---- pause and status ----

    def set_paused(self, paused: bool, reason: str | None = None) -> PauseState:
        """A person's pause (or resume); a batch that reaches its cost cap pauses in `finish_run`."""
        return self.store.call_one("training_set_paused", p_paused=paused, p_reason=reason)

    def pause_state(self, *, deadline: float | None = None) -> PauseState:
        return self.store.call_one("training_pause_state", deadline=deadline)

    def status(self, daily_budget: Decimal | None = None, monthly_budget: Decimal | None = None) -> dict:
        """Pause, persona counts, runs in progress, the last run, battle counts, pending reviews, spend,
        and `budget`: the day's and the month's spend against these limits (see `budget_state`)."""
        return self.store.call_one("training_status", p_daily_budget=daily_budget, p_monthly_budget=monthly_budget)

    def budget_state(self, daily_budget: Decimal | None = None, monthly_budget: Decimal | None = None,
                     *, deadline: float | None = None) -> BudgetState:
        return self.store.call_one("training_budget_state", deadline=deadline, p_daily_budget=daily_budget,
                                   p_monthly_budget=monthly_budget)

    # ---- runs and battles ----

    def start_run(self, *, trigger: Trigger, requested_batch_size: int | None, batch_size: int,
                  cost_cap: Decimal, max_concurrent_runs: int, deadline_ms: int, simulated: bool,
                  default_battle_ms: int, daily_budget: Decimal | None = None,
                  monthly_budget: Decimal | None = None, deadline: float | None = None) -> RunStart:
        return self.store.call_one(
            "training_start_run", deadline=deadline, p_trigger=str(trigger),
            p_requested_batch_size=requested_batch_size, p_batch_size=batch_size, p_cost_cap=cost_cap,
            p_max_concurrent_runs=max_concurrent_runs, p_deadline_ms=deadline_ms, p_simulated=simulated,
            p_default_battle_ms=default_battle_ms, p_daily_budget=daily_budget, p_monthly_budget=monthly_budget)

    def active_tactics(self, *, deadline: float | None = None) -> list[Tactic]:
        return self.store.call_all("training_active_tactics", deadline=deadline)

    def start_battle(self, run_id: str, persona_id: str, *, deadline: float | None = None) -> str:
        return self.store.call_one("training_start_battle", deadline=deadline, p_run_id=run_id,
                                   p_persona_id=persona_id)

    def record_battle_progress(self, battle_id: str, record: BattleRecord, *,
                               deadline: float | None = None) -> bool:
        return self.store.call_one("training_record_battle_progress", deadline=deadline,
                                   p_battle_id=battle_id, **record.args())

    def finish_battle(self, battle_id: str, status: BattleStatus, record: BattleRecord,
                      verdict: VerdictRecord | None, error: str | None, *, deadline: float | None = None) -> bool:
        """Ends a running battle; False if it had already ended (the first ending wins)."""
        verdict = verdict or VerdictRecord(None, None, None, None, None)
        return self.store.call_one(
            "training_finish_battle", deadline=deadline, p_battle_id=battle_id, p_status=str(status),
            **record.args(), p_referee_score=verdict.score, p_scores=verdict.scores,
            p_referee_feedback=verdict.feedback, p_winning_rebuttal=verdict.winning_rebuttal,
            p_seller_agreed=verdict.seller_agreed, p_error=error)

    def finish_run(self, run_id: str, *, status: RunStatus, leftover_status: BattleStatus,
                   cost_cap_tripped: bool, timed_out: bool, errors: list[str], breakthrough_threshold: int,
                   duration_ms: int, error: str | None, pause_reason: str | None,
                   deadline: float | None = None) -> BatchSummary:
        """Ends the run: leftover battles end as `leftover_status`, figures are tallied from the
        battle rows, personas are released, and `pause_reason` (if any) pauses training."""
        return self.store.call_one(
            "training_finish_run", deadline=deadline, p_run_id=run_id, p_status=str(status),
            p_leftover_status=str(leftover_status), p_kill_switch_triggered=cost_cap_tripped,
            p_timed_out=timed_out, p_errors=errors, p_breakthrough_threshold=breakthrough_threshold,
            p_duration_ms=duration_ms, p_error=error, p_pause_reason=pause_reason)

    def set_scout_notified(self, run_id: str, notified: bool, *, deadline: float | None = None) -> None:
        self.store.call_void("training_set_scout_notified", deadline=deadline, p_run_id=run_id,
                             p_notified=notified)

    def append_run_errors(self, run_id: str, errors: list[str], *, deadline: float | None = None) -> list[str]:
        """Adds what went wrong after the run finished to its errors; returns them all."""
        return self.store.call_one("training_append_run_errors", deadline=deadline, p_run_id=run_id,
                                   p_errors=errors)

    # ---- Tactical Scout ----

    def flag_breakthroughs(self, threshold: int, *, deadline: float | None = None) -> list[str]:
        """Flags completed battles scoring at least `threshold`; returns the ids flagged now."""
        return self.store.call_one("training_flag_breakthroughs", deadline=deadline, p_threshold=threshold)

    def lease_scout_work(self, limit: int, lease_seconds: int, *,
                         deadline: float | None = None) -> list[ScoutWork]:
        return self.store.call_one("training_lease_scout_work", deadline=deadline, p_limit=limit,
                                   p_lease_seconds=lease_seconds)

    def record_defining_moment(self, battle_id: str, moment: str, snippet: str, *,
                               deadline: float | None = None) -> None:
        self.store.call_void("training_record_defining_moment", deadline=deadline, p_battle_id=battle_id,
                             p_defining_moment=moment, p_tactical_snippet=snippet)

    def mark_alerted(self, battle_id: str, *, deadline: float | None = None) -> bool:
        """Records a delivered alert; False if another scan already had (at most once)."""
        return bool(self.store.call_one("training_mark_alerted", deadline=deadline, p_battle_id=battle_id))

    def release_scout_lease(self, battle_id: str, *, deadline: float | None = None) -> None:
        self.store.call_void("training_release_scout_lease", deadline=deadline, p_battle_id=battle_id)

    # ---- dashboard ----

    def feed(self, after_updated_at: str | None = None, after_id: str | None = None) -> dict:
        """`{"battles": […], "cursor": {"updatedAt", "id"} | None}`: the latest battles, or those
        changed after the cursor."""
        return self.store.call_one("training_dashboard_feed", p_after_updated_at=after_updated_at,
                                   p_after_id=after_id)

    def battle(self, battle_id: str) -> dict | None:
        return self.store.call_one("training_dashboard_battle", p_battle_id=battle_id)

    def breakthroughs(self) -> dict:
        """`{"pending": n, "items": […]}`."""
        return self.store.call_one("training_dashboard_breakthroughs")

    def persona_analytics(self) -> list[dict]:
        return self.store.call_one("training_persona_analytics")

    def run_history(self) -> list[BatchSummary]:
        return self.store.call_one("training_run_history")

    def promote_breakthrough(self, battle_id: str, tactic_text: str | None = None) -> dict:
        return self.store.call_one("training_promote_breakthrough", p_battle_id=battle_id,
                                   p_tactic_text=tactic_text)

    def set_review_status(self, battle_id: str, status: ReviewStatus) -> None:
        self.store.call_void("training_set_breakthrough_status", p_battle_id=battle_id, p_status=str(status))
