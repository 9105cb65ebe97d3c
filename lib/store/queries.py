"""Everything the app asks the database, one method per SQL function in `lib/sql/functions/`.

`Queries` sits over a `Store` (psycopg or PostgREST; see `lib.store`) the way procrastinate's
`JobManager` sits over its connectors: callers pass typed arguments and get typed results, and
never name a SQL function. Results are the JSON the functions build (dicts with camelCase keys),
typed here with `TypedDict`s so they can be returned as HTTP bodies unchanged. The boundary is
checked, not assumed: a dict missing one of its `TypedDict`'s required keys (a database whose
functions are older than this code) fails here with the function named, not later with a `KeyError`.

Every method takes an optional `deadline` (a `time.monotonic()` value): transient failures are
retried until then (see `lib.store.retry_until`).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, cast

from lib.canary import incomplete_note, lean_note, outlook, outlook_note
from lib.store import SCHEMA_HINT, JSONObject, Store, StoreError
from lib.store.money import BudgetGrant, BudgetPeriod, BudgetState, MoneyQueries, note_billing
from lib.store.scout_queries import ScoutQueries
from lib.store.views import ActiveTactics, Breakthroughs, FeedPage, RunHistory
from lib.text import checked_tactic

# `training_runs.requested_batch_size` is an `integer`: a larger request is recorded as this.
MAX_RECORDED_BATCH_SIZE = 2**31 - 1
# `training_versions.id` is an `integer`: no version has a larger id (a larger argument would not
# even match the SQL function's signature).
MAX_VERSION_ID = 2**31 - 1


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
    characteristics: JSONObject
    attack_patterns: list[str]


class BatchSummary(TypedDict, total=False):
    """A run's figures: the HTTP response's `batch`, the CLI summary, a row of the run history."""

    runId: str
    batchId: str  # deprecated: runId's old name, kept for callers that read it
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
    billedUpTo: float  # what the provider may have billed the run (committed_cost, at least totalCost)
    billingNote: str | None  # "up to $X may have been billed (…)" where billedUpTo passes totalCost
    averageScore: float | None
    breakthroughs: int
    costCapReached: bool
    killSwitchTriggered: bool  # deprecated: costCapReached's old name
    timedOut: bool
    durationMs: int | None
    scoutNotified: bool | None
    errors: list[str]
    startedAt: str
    finishedAt: str | None
    error: str | None
    canary: JSONObject | None  # the canary's look after the run (added by lib.followups)


class VersionPrompt(TypedDict):
    """What a run needs to build a version's closer prompt."""

    id: int
    basePrompt: str | None
    tactics: list[str]


class PlannedBattle(TypedDict):
    persona: Persona
    versionId: int
    pairOrder: int | None  # a canary pair's battle: 1 starts first, 2 second (a fair coin); else None


class RunStart(TypedDict, total=False):
    """`status` is `started` (with `run`, `personas`, `recovered`, `expectedBattleMs`, `budget`, and
    the plan: `battles`, `versions` by id as a string, `canaryPairs`) or a refusal: `paused`
    (`reason`, `pausedBy`, `since`), `busy` (`runId`, `process`, `closesAt`), `no_personas`,
    `no_free_personas`, or
    `budget` (`error`, `reason`, `period`, `retryAfterS`, `alert`, `day`, `month`)."""

    status: str
    run: BatchSummary
    personas: list[Persona]
    recovered: int
    expectedBattleMs: int
    battles: list[PlannedBattle]
    versions: dict[str, VersionPrompt]
    canaryPairs: int
    budget: BudgetGrant
    reason: str | None
    since: str
    runId: str
    process: str | None  # busy: the running run's process ("host pid start-time")
    closesAt: str  # busy: when a later run closes it if its process is gone
    error: str
    period: str
    retryAfterS: int
    alert: bool
    day: BudgetPeriod
    month: BudgetPeriod


class Version(TypedDict):
    """One closer version as the dashboard and `python -m lib versions` show it."""

    id: int
    status: str
    parentId: int | None
    change: str
    createdAt: str
    battles: int
    meanScore: float | None
    ci95: list[float] | None
    decision: str | None
    pairs: int
    diff: float | None
    unit: str | None  # what `diff` and `ci95` are in: "score" or "head_to_head" (null before a canary look)
    decidedAt: str | None
    note: str | None


class PositionBias(TypedDict):
    """Of the candidate's decisive head-to-head verdicts, how many went to the call read first."""

    firstShownWon: int
    decisive: int
    note: NotRequired[str]  # lib.head_to_head.lean_note, added by Queries.versions


class IncompletePairs(TypedDict):
    """The canary's pairs with one side completed, by the side that is missing."""

    candidateMissing: int
    activeMissing: int
    note: NotRequired[str | None]  # lib.canary.incomplete_note, added by Queries.versions


class Canary(TypedDict):
    candidateId: int
    activeId: int
    pairs: int
    maxPairs: int
    diff: float | None
    ci95: list[float] | None
    spread: float | None
    unit: str  # CANARY_VERDICT: "score" (points) or "head_to_head" (verdicts × 100)
    positionBias: PositionBias | None
    incomplete: IncompletePairs
    pairsFor5: NotRequired[int | None]  # lib.canary.outlook, added by Queries.versions
    morePairsFor5: NotRequired[int | None]
    outlookNote: NotRequired[str | None]  # lib.canary.outlook_note, added by Queries.versions


class UnjudgedPair(TypedDict):
    """A complete canary pair without its head-to-head verdict yet (lib/canary_verdicts.py)."""

    candidateBattleId: str
    activeBattleId: str
    candidateTranscript: list[dict[str, str]]
    activeTranscript: list[dict[str, str]]


class VersionList(TypedDict):
    versions: list[Version]
    canary: Canary | None


class VersionChange(TypedDict, total=False):
    """What promote, deactivate, edit and rollback answer: a message and the version made."""

    message: str
    version: Version
    tactic: JSONObject


class CanaryPairs(TypedDict):
    """The canary's pairs in `unit`'s terms; `skipped` pairs lack a score or a verdict (`skippedReason`)."""

    candidateId: int
    activeId: int
    unit: str
    diffs: list[float]
    skipped: int
    skippedReason: str | None
    positionBias: PositionBias | None
    incomplete: IncompletePairs


class CanaryRecord(TypedDict, total=False):
    """`recorded` false: no longer the candidate, `stale` (an earlier look counted more pairs), or
    `unit` (the canary measures in another unit). With `decided`: `message`, `version`, `parent`."""

    recorded: bool
    decided: bool
    stale: bool
    unit: str
    message: str
    version: Version
    parent: Version


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


class RunningRun(TypedDict):
    """A run in progress, for `python -m lib recover`: `process` is "host pid start-time" (null for a
    run from before the column)."""

    id: str
    process: str | None
    deadline_at: str


@dataclass(frozen=True)
class BattleRecord:
    """What a battle row is saved with, after each turn and at its end."""

    transcript: list[dict[str, str]]
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
    scores: dict[str, Any] | None
    feedback: str | None
    winning_rebuttal: str | None
    seller_agreed: bool | None


def shaped[T](shape: type[T], value: Any, fn: str) -> T:
    """`value` as `shape` (a `TypedDict`, or `JSONObject`), once it is checked to be an object with
    the shape's required keys."""
    if not isinstance(value, dict):
        raise StoreError(f"{fn} answered {type(value).__name__} where a {shape.__name__} was expected",
                         hint=SCHEMA_HINT)
    required: frozenset[str] = getattr(shape, "__required_keys__", frozenset())
    missing = sorted(required - value.keys())
    if missing:
        raise StoreError(f"{fn} answered without {', '.join(missing)} where a {shape.__name__} was expected",
                         hint=SCHEMA_HINT)
    return cast(T, value)


class Queries(MoneyQueries, ScoutQueries):
    def __init__(self, store: Store):
        self.store = store

    def _one[T](self, shape: type[T], fn: str, *, deadline: float | None = None, **args: Any) -> T:
        return shaped(shape, self.store.call_one(fn, deadline=deadline, **args), fn)

    def _maybe[T](self, shape: type[T], fn: str, *, deadline: float | None = None, **args: Any) -> T | None:
        value = self.store.call_one(fn, deadline=deadline, **args)
        return None if value is None else shaped(shape, value, fn)

    def _rows[T](self, shape: type[T], fn: str, *, deadline: float | None = None, **args: Any) -> list[T]:
        return [shaped(shape, row, fn) for row in self.store.call_all(fn, deadline=deadline, **args)]

    # ---- personas ----

    def upsert_personas(self, personas: list[JSONObject]) -> list[UpsertResult]:
        return self._rows(UpsertResult, "training_upsert_personas", p_personas=personas)

    def persona_names(self) -> list[str]:
        return [str(name) for name in self.store.call_all("training_persona_names")]

    # ---- pause and status ----

    def set_paused(self, paused: bool, reason: str | None = None) -> PauseState:
        """A person's pause (or resume); a batch that reaches its cost cap pauses in `finish_run`."""
        return self._one(PauseState, "training_set_paused", p_paused=paused, p_reason=reason)

    def pause_state(self, *, deadline: float | None = None) -> PauseState:
        return self._one(PauseState, "training_pause_state", deadline=deadline)

    def status(self, daily_budget: Decimal | None = None, monthly_budget: Decimal | None = None) -> JSONObject:
        """Pause, persona counts, runs in progress, the last run, battle counts, pending reviews, spend,
        and `budget`: the day's and the month's spend against these limits (see `budget_state`)."""
        status = self._one(JSONObject, "training_status", p_daily_budget=daily_budget,
                           p_monthly_budget=monthly_budget)
        note_billing(status["budget"])
        return status

    def forget_budget_alert(self, *, deadline: float | None = None) -> None:
        self.store.call_void("training_forget_budget_alert", deadline=deadline)

    def budget_state(self, daily_budget: Decimal | None = None, monthly_budget: Decimal | None = None,
                     *, deadline: float | None = None) -> BudgetState:
        state = self._one(BudgetState, "training_budget_state", deadline=deadline, p_daily_budget=daily_budget,
                          p_monthly_budget=monthly_budget)
        note_billing(state)
        return state

    # ---- runs and battles ----

    def start_run(self, *, trigger: Trigger, requested_batch_size: int | None, batch_size: int,
                  cost_cap: Decimal, max_concurrent_runs: int, deadline_ms: int, simulated: bool,
                  default_battle_ms: int, base_prompt: str | None = None, canary_share: float = 0.5,
                  daily_budget: Decimal | None = None, monthly_budget: Decimal | None = None,
                  deadline: float | None = None) -> RunStart:
        """Starts a run and plans its battles; `base_prompt` (CLOSER_PROMPT_PATH's text) is recorded
        on the active version, and a changed one makes a new version. The run takes a block of the
        day's and month's budget (at most `cost_cap`)."""
        return self._one(
            RunStart, "training_start_run", deadline=deadline, p_trigger=str(trigger),
            p_requested_batch_size=(None if requested_batch_size is None
                                    else min(requested_batch_size, MAX_RECORDED_BATCH_SIZE)),
            p_batch_size=batch_size, p_cost_cap=cost_cap,
            p_max_concurrent_runs=max_concurrent_runs, p_deadline_ms=deadline_ms, p_simulated=simulated,
            p_default_battle_ms=default_battle_ms, p_base_prompt=base_prompt, p_canary_share=canary_share,
            p_daily_budget=daily_budget, p_monthly_budget=monthly_budget)

    def active_tactics(self, *, deadline: float | None = None) -> list[Tactic]:
        """The active version's tactics, in its order."""
        return self._rows(Tactic, "training_active_tactics", deadline=deadline)

    def set_run_process(self, run_id: str, process: str, *, deadline: float | None = None) -> None:
        """Records the process running the run ("host pid start-time", lib.processes)."""
        self.store.call_void("training_set_run_process", deadline=deadline, p_run_id=run_id, p_process=process)

    def running_runs(self) -> list[RunningRun]:
        """The runs in progress, oldest first."""
        return self._rows(RunningRun, "training_running_runs")

    def close_orphaned_runs(self, gone: list[str]) -> int:
        """Closes the runs in `gone` (their process is known to be gone) and any run past its
        deadline; returns how many were closed."""
        return int(self.store.call_one("training_close_orphaned_runs", p_gone=list(gone)))

    def start_battle(self, run_id: str, persona_id: str, version_id: int | None = None,
                     pair_order: int | None = None, *, deadline: float | None = None) -> str:
        """Records a battle as it starts, with its closer version (the active one if None) and, in a
        canary pair, its place in the pair's order."""
        return str(self.store.call_one("training_start_battle", deadline=deadline, p_run_id=run_id,
                                       p_persona_id=persona_id, p_version_id=version_id, p_pair_order=pair_order))

    def record_battle_progress(self, battle_id: str, record: BattleRecord, *,
                               deadline: float | None = None) -> bool:
        return bool(self.store.call_one("training_record_battle_progress", deadline=deadline,
                                        p_battle_id=battle_id, **record.args()))

    def finish_battle(self, battle_id: str, status: BattleStatus, record: BattleRecord,
                      verdict: VerdictRecord | None, error: str | None, *, deadline: float | None = None) -> bool:
        """Ends a running battle; False if it had already ended (the first ending wins)."""
        verdict = verdict or VerdictRecord(None, None, None, None, None)
        return bool(self.store.call_one(
            "training_finish_battle", deadline=deadline, p_battle_id=battle_id, p_status=str(status),
            **record.args(), p_referee_score=verdict.score, p_scores=verdict.scores,
            p_referee_feedback=verdict.feedback, p_winning_rebuttal=verdict.winning_rebuttal,
            p_seller_agreed=verdict.seller_agreed, p_error=error))

    def finish_run(self, run_id: str, *, status: RunStatus, leftover_status: BattleStatus,
                   cost_cap_reached: bool, timed_out: bool, errors: list[str], breakthrough_threshold: int,
                   duration_ms: int, error: str | None, pause_reason: str | None,
                   deadline: float | None = None) -> BatchSummary:
        """Ends the run: leftover battles end as `leftover_status`, figures are tallied from the
        battle rows, personas are released, and `pause_reason` (if any) pauses training."""
        return self._one(
            BatchSummary, "training_finish_run", deadline=deadline, p_run_id=run_id, p_status=str(status),
            p_leftover_status=str(leftover_status), p_kill_switch_triggered=cost_cap_reached,
            p_timed_out=timed_out, p_errors=errors, p_breakthrough_threshold=breakthrough_threshold,
            p_duration_ms=duration_ms, p_error=error, p_pause_reason=pause_reason)

    def set_scout_notified(self, run_id: str, notified: bool, *, deadline: float | None = None) -> None:
        self.store.call_void("training_set_scout_notified", deadline=deadline, p_run_id=run_id,
                             p_notified=notified)

    def append_run_errors(self, run_id: str, errors: list[str], *, deadline: float | None = None) -> list[str]:
        """Adds what went wrong after the run finished to its errors; returns them all."""
        return [str(e) for e in self.store.call_one("training_append_run_errors", deadline=deadline,
                                                     p_run_id=run_id, p_errors=errors)]

    # ---- dashboard ----

    def feed(self, after_updated_at: str | None = None, after_id: str | None = None) -> FeedPage:
        """`{"battles": […], "cursor": {"updatedAt", "id"} | None}`: the latest battles, or those
        changed after the cursor."""
        return self._one(FeedPage, "training_dashboard_feed", p_after_updated_at=after_updated_at,
                         p_after_id=after_id)

    def battle(self, battle_id: str) -> JSONObject | None:
        return self._maybe(JSONObject, "training_dashboard_battle", p_battle_id=battle_id)

    def breakthroughs(self) -> Breakthroughs:
        """`{"pending": n, "items": […]}`."""
        return self._one(Breakthroughs, "training_dashboard_breakthroughs")

    def persona_analytics(self) -> list[JSONObject]:
        return list(self.store.call_one("training_persona_analytics") or [])

    def dashboard_health(self) -> JSONObject:
        """The health strip: the switch, runs in progress, the last run, today's and the last 7 days'
        spend, scores and outcomes, pending reviews, persona counts, and the server's `now`."""
        return self._one(JSONObject, "training_dashboard_health")

    def dashboard_runs(self, hours: int) -> RunHistory:
        """`{"since", "now", "runs": […]}`: the runs started in the last `hours`, oldest first."""
        return self._one(RunHistory, "training_dashboard_runs", p_hours=hours)

    def promote_breakthrough(self, battle_id: str, tactic_text: str | None = None,
                             direct: bool = False) -> VersionChange:
        """A candidate = the active version + the breakthrough's tactic (or, `direct`, the new active
        version). `Rejected` names the reason: empty, too long, a repeat (and of which tactic), or a
        candidate already under canary; or text that hides what it says (see `lib.text`)."""
        if tactic_text is None:  # the scout's snippet: a model's text, checked as a person's is
            snippet = (self.battle(battle_id) or {}).get("tacticalSnippet")
            tactic_text = snippet if isinstance(snippet, str) and snippet else None
        return self._one(VersionChange, "training_promote_breakthrough", p_battle_id=battle_id,
                         p_tactic_text=checked_tactic(tactic_text), p_direct=direct)

    def set_review_status(self, battle_id: str, status: ReviewStatus) -> None:
        self.store.call_void("training_set_breakthrough_status", p_battle_id=battle_id, p_status=str(status))

    # ---- closer versions and the canary ----

    def versions(self, max_pairs: int, unit: str = "score") -> VersionList:
        """Every version, newest first, and the canary in progress (`maxPairs` = `max_pairs`; its
        `unit` fixed at its first look, before it `unit`, CANARY_VERDICT's) with its outlook
        (`pairsFor5`, `morePairsFor5`, `outlookNote`; on score points only, where lib.canary.outlook
        is calibrated, else None)."""
        listing = self._one(VersionList, "training_version_list", p_max_pairs=max_pairs, p_unit=unit)
        progress = listing["canary"]
        if progress is not None:
            on_scores = progress["unit"] == "score"
            needed, more = outlook(progress["pairs"], progress["spread"]) if on_scores else (None, None)
            progress["pairsFor5"], progress["morePairsFor5"] = needed, more
            progress["outlookNote"] = (outlook_note(progress["spread"], needed, more, progress["maxPairs"])
                                       if on_scores else None)
            lean = progress["positionBias"]
            if lean is not None:
                lean["note"] = lean_note(lean["firstShownWon"], lean["decisive"])
            half_done = progress["incomplete"]
            half_done["note"] = incomplete_note(half_done["candidateMissing"], half_done["activeMissing"])
        return listing

    def tactics(self) -> ActiveTactics:
        """`{"versionId", "basePrompt", "tactics": [{"id", "text", "battleId", "promotedAt"}]}`: the
        active version's."""
        return self._one(ActiveTactics, "training_dashboard_tactics")

    def deactivate_tactic(self, tactic_id: str, direct: bool = False) -> VersionChange:
        return self._one(VersionChange, "training_deactivate_tactic", p_tactic_id=tactic_id, p_direct=direct)

    def edit_tactic(self, tactic_id: str, text: str, direct: bool = False) -> VersionChange:
        return self._one(VersionChange, "training_edit_tactic", p_tactic_id=tactic_id,
                         p_tactic_text=checked_tactic(text), p_direct=direct)

    def rollback(self, version_id: int, force: bool = False) -> VersionChange:
        """Makes `version_id`'s tactics active at once (a new version); withdraws a candidate. A
        version that was never active is refused unless `force`."""
        return self._one(VersionChange, "training_rollback_version", p_version_id=version_id, p_force=force)

    def canary_pairs(self, unit: str = "score", *, deadline: float | None = None) -> CanaryPairs | None:
        """The canary's pairs in its own unit (fixed at its first look; before it, `unit`)."""
        return self._maybe(CanaryPairs, "training_canary_pairs", deadline=deadline, p_unit=unit)

    def canary_unjudged(self, limit: int, *, claim_s: float, deadline: float | None = None) -> list[UnjudgedPair]:
        """Up to `limit` complete pairs without a verdict, claimed for `claim_s` seconds (a pair
        another look holds is skipped until its claim ends)."""
        items = self.store.call_one("training_canary_unjudged", deadline=deadline, p_limit=limit,
                                    p_claim_seconds=claim_s)
        return [shaped(UnjudgedPair, item, "training_canary_unjudged") for item in items or []]

    def record_pair_verdict(self, candidate_battle_id: str, verdict: int, candidate_first: bool, *,
                            deadline: float | None = None) -> bool:
        """Stores a pair's head-to-head verdict (−1, 0, 1) and whether the judge read the candidate's
        call first; False if the pair already had a verdict."""
        return bool(self.store.call_one("training_record_pair_verdict", deadline=deadline,
                                        p_battle_id=candidate_battle_id, p_verdict=verdict,
                                        p_candidate_first=candidate_first))

    def release_pair(self, candidate_battle_id: str, *, failed: bool, deadline: float | None = None) -> int:
        """Frees a claimed pair whose head-to-head call ended without a verdict, counting the failure
        when `failed` (the pair's own); returns its failures so far."""
        return int(self.store.call_one("training_release_pair", deadline=deadline, p_battle_id=candidate_battle_id,
                                       p_failed=failed) or 0)

    def record_canary(self, candidate_id: int, decision: str, pairs: int, diff: float | None,
                      ci95: list[float] | None, max_pairs: int, *, look_id: str | None = None, unit: str = "score",
                      deadline: float | None = None) -> CanaryRecord:
        low, high = ci95 if ci95 else (None, None)
        return self._one(CanaryRecord, "training_record_canary", deadline=deadline, p_candidate_id=candidate_id,
                         p_decision=str(decision), p_pairs=pairs, p_diff=diff, p_ci_low=low,
                         p_ci_high=high, p_max_pairs=max_pairs, p_look_id=look_id, p_unit=unit)
