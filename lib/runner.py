"""One batch: persona leases, a thread pool, the deadline and the cost cap.

`run_batch` starts a run in the database (which refuses when paused, busy or out of personas,
and plans the battles: one per leased persona, or two, one per closer version, for the personas
paired for a canary), runs them on a `ThreadPoolExecutor`, ends the run with figures tallied from
the battle rows (what follows is `lib.followups`'s). Every battle that starts is
written when it starts and when it ends, with the version it runs; a battle cut short by the
deadline, the cost cap or a pause keeps its transcript.

Whether the next battle may start is `lib.admission`'s (deadline, budget, rate-limit headroom,
start spacing); the pause is read by `lib.pause_watch`; how a run and its unfinished battles end
is the pure `run_ending` / `battle_ending` below.
"""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from lib import processes
from lib.admission import Admission
from lib.battle import BattleSetup, BattleState, Line, closer_system_prompt, count_turns, fight
from lib.budget import CostCap, billing_note, price_for
from lib.config import Settings
from lib.deadline import Deadline
from lib.llm import LLM, BudgetExceeded, CallContext, DeadlineExceeded, LLMError, RateGate, Stopped, Usage
from lib.log import log
from lib.pacing import Pacer
from lib.pause_watch import Interrupt, PauseWatch
from lib.redact import redact
from lib.store import Store, StoreError
from lib.store.queries import (
    BatchSummary,
    BattleRecord,
    BattleStatus,
    Persona,
    Queries,
    RunStart,
    RunStatus,
    Trigger,
    VerdictRecord,
)

DEFAULT_BATTLE_MS = 15_000
# Before any battle has finished, assume one takes this share of the run's time at most.
DEFAULT_BATTLE_SHARE = 0.4
# After the deadline, battles get this long to save themselves before the runner saves them.
STOP_GRACE_S = 0.3


class RunRefused(Exception):
    """The database refused to start a run: paused, busy, out of budget, or no persona to battle."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "paused": "Training paused",
        "busy": "Run already in progress",
        "no_personas": "No active personas found",
        "no_free_personas": "Every active persona is in a run in progress",
        "budget": "Budget reached",  # the database names the period: "Daily budget reached"
    }
    HINTS: ClassVar[dict[str, str]] = {
        "paused": "resume with python -m lib resume (or the dashboard) once the cause is fixed",
        "busy": "wait for it to finish, or raise MAX_CONCURRENT_RUNS to allow parallel runs",
        "no_personas": "run python -m lib generate-personas, or activate a persona",
        "no_free_personas": "add personas or lower MAX_CONCURRENT_RUNS",
        "budget": "runs start again after the reset, or raise DAILY_BUDGET_USD / MONTHLY_BUDGET_USD",
    }

    def __init__(self, outcome: RunStart):
        self.outcome = outcome
        self.reason = outcome["status"]
        self.error = outcome.get("error") or self.MESSAGES[self.reason]
        detail = f": {outcome['reason']}" if outcome.get("reason") else ""
        self.hint = self.HINTS[self.reason]
        if self.reason == "busy" and processes.gone(outcome.get("process")):
            closes_at = str(outcome.get("closesAt") or "")[11:19]  # HH:MM:SS of an ISO timestamp, UTC
            self.hint = (f"the previous run's process stopped; it will be closed at {closes_at} UTC, or now with "
                         "python -m lib recover")
        super().__init__(f"{self.error}{detail} ({self.hint})")


@dataclass
class Progress:
    """What the CLI's progress bar shows; passed to `on_progress` after every change."""

    total: int
    started: int = 0
    done: int = 0
    spent: float = 0.0
    cap: float = 0.0
    time_left_s: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)


# Called with a copy of the run's `Progress` after every change (the CLI's progress bar).
type OnProgress = Callable[[Progress], None]


def run_batch(settings: Settings, store: Store, llm: LLM, *, trigger: str, requested_batch_size: int | None = None,
              on_progress: OnProgress | None = None, started: float | None = None) -> BatchSummary:
    """Runs one batch and returns its figures as `Queries.finish_run` recorded them (docs/http.md's
    `batch`, before the follow-ups add `canary` and `scoutNotified`). Raises `RunRefused`.

    What follows a run (the canary's look, Slack, the scout) is `lib.followups`'s; `lib.training.
    train_once` does both.

    `started` (a `time.monotonic()` value, default now) is when the clock began: for a request,
    its arrival, so the deadline counts from there.
    """
    return begin_run(settings, store, llm, trigger=trigger, requested_batch_size=requested_batch_size,
                     on_progress=on_progress, deadline=Deadline.for_run(settings, started)).execute()


def begin_run(settings: Settings, store: Store, llm: LLM, *, trigger: str, requested_batch_size: int | None,
              on_progress: OnProgress | None, deadline: Deadline, interrupt: Interrupt | None = None) -> Run:
    """Starts a run in the database (raises `RunRefused` when it refuses) and returns it, ready to
    `execute`. `interrupt`, once set, stops the run (see `lib.pause_watch.Interrupt`)."""
    batch_size = max(1, min(requested_batch_size or settings.batch_size, settings.max_batch_size))
    for model in (settings.closer_model, settings.persona_model, settings.referee_model):
        price_for(model, settings.model_prices)  # a model with no price is refused before any call
    outcome = Queries(store).start_run(
        trigger=Trigger(trigger), requested_batch_size=requested_batch_size, batch_size=batch_size,
        cost_cap=settings.cost_cap_usd, max_concurrent_runs=settings.max_concurrent_runs,
        deadline_ms=settings.max_execution_ms, simulated=llm.simulated,
        default_battle_ms=min(DEFAULT_BATTLE_MS, int(settings.max_execution_ms * DEFAULT_BATTLE_SHARE)),
        base_prompt=settings.closer_prompt_path.read_text(), canary_share=settings.canary_share,
        daily_budget=settings.daily_budget_usd, monthly_budget=settings.monthly_budget_usd, deadline=deadline.at)
    if outcome["status"] != "started":
        raise RunRefused(outcome)
    run = Run(settings, store, llm, outcome, deadline, on_progress, interrupt)
    log("run_started", runId=run.id, trigger=trigger, batchSize=batch_size, personas=len(run.personas),
        simulated=llm.simulated, recoveredRuns=outcome["recovered"])
    return run


class Run:
    def __init__(self, settings: Settings, store: Store, llm: LLM, outcome: RunStart, deadline: Deadline,
                 on_progress: OnProgress | None, interrupt: Interrupt | None = None):
        self.settings = settings
        self.queries = Queries(store)
        self.llm = llm
        self.id = outcome["run"]["runId"]
        self.personas = outcome["personas"]
        self.plan = outcome["battles"]
        # A battle's closer prompt is its version's (the base prompt start_run recorded on it, and its
        # tactics), fixed when the run starts.
        self.prompts = {int(vid): closer_system_prompt(v["basePrompt"] or settings.closer_prompt_path.read_text(),
                                                       [{"tactic_text": text} for text in v["tactics"]])
                        for vid, v in outcome["versions"].items()}
        # The canary's pairs planned for this run (persona pairs battling both versions).
        self.planned_pairs = outcome["canaryPairs"]
        self.deadline = deadline
        # The run's cost cap is its block of the day's and month's budget (at most KILL_SWITCH_THRESHOLD_USD);
        # reaching a block that the budget limited stops the run without pausing training.
        grant = outcome["budget"]
        self.limited_by = grant["limitedBy"]
        self.pacer = Pacer()
        # Before an attempt is sent, what the run may have been billed is written on its row
        # (committed_cost): a run that dies mid-call is counted for it.
        cap = CostCap(Decimal(str(grant["block"])), grant.get("exhausted"),
                      durable=lambda amount: self.queries.commit_cost(self.id, amount,
                                                                      deadline=self.deadline.for_writes()))
        self.ctx = CallContext(cap, deadline.at, RateGate(), threading.Event(), pacer=self.pacer)
        self.cap, self.stop = self.ctx.cap, self.ctx.stop
        self.setup = BattleSetup(settings.closer_model, settings.persona_model, settings.referee_model,
                                 settings.battle_max_turns, settings.max_tokens_per_turn)
        self.battles: list[BattleState] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.admission = Admission(deadline, self.cap, self.stop, self.pacer, outcome["expectedBattleMs"] / 1000,
                                   settings.delay_between_battles_ms / 1000, self.errors, self._lock)
        self.pause_watch = PauseWatch(self.queries, self.id, deadline, self.stop, interrupt)
        self._on_progress = on_progress
        self.progress = Progress(total=len(self.plan), cap=float(grant["block"]))

    def time_left(self) -> float:
        return self.deadline.left()

    def execute(self) -> BatchSummary:
        """Runs the battles and ends the run: its figures as `Queries.finish_run` recorded them."""
        summary = self._battle_and_finish()
        log("run_finished", runId=self.id, status=summary["status"], battlesStarted=summary["battlesStarted"],
            battlesCompleted=summary["battlesCompleted"], totalCost=summary["totalCost"],
            durationMs=summary["durationMs"])
        return summary

    def _battle_and_finish(self) -> BatchSummary:
        error = None
        try:  # best effort: without it, a refusal only cannot tell that this process is gone
            self.queries.set_run_process(self.id, processes.identity(), deadline=self.deadline.at)
        except StoreError as exc:
            log("run_process_not_recorded", runId=self.id, error=type(exc).__name__)
        try:
            self.llm.prepare()
            self._battle_all()
        except Exception as exc:  # the run is closed and recorded whatever went wrong
            error = f"{type(exc).__name__}: {exc}"
            self.stop.set()
            log("run_error", runId=self.id, error=error)
        # Battles still running now end as the run does: killed, timed out, or failed with it.
        cost_cap_reached = self.cap.tripped and self.limited_by == "cap"
        status, leftover = run_ending(crashed=error is not None, **self._stop_causes())
        if self.cap.tripped:
            self.errors.append(str(self.cap.trip_reason))  # set once tripped
        elif self.pause_watch.interrupted:
            self.errors.append(f"Interrupted ({self.pause_watch.interrupted}): the run was stopped by its process; "
                               "battles in flight were cut")
        elif self.pause_watch.reason is not None:
            self.errors.append(f"Training paused mid-run: {self.pause_watch.reason}")
        elif self.ctx.halted is not None:  # the provider refuses every call (no quota, bad key)
            error = error or self.ctx.halted
        for state in list(self.battles):
            if state.status == BattleStatus.RUNNING:
                try:
                    self._save(state, leftover, "the run ended before this battle finished")
                except Exception as exc:  # best effort: the run is closed below whatever this battle's save did
                    self.errors.append(f"{state.persona['name']}: saving the cut battle failed: "
                                       f"{type(exc).__name__}: {redact(str(exc))}")
                    log("battle_save_failed", runId=self.id, battleId=state.id, error=type(exc).__name__)
        # Attempts still in flight count at their worst case: the provider may finish and bill them.
        self.queries.commit_cost(self.id, self.cap.close(), final=True, deadline=self.deadline.for_writes())
        summary = self.queries.finish_run(
            self.id, status=status, leftover_status=leftover, cost_cap_reached=cost_cap_reached,
            timed_out=self.admission.timed_out, errors=self.errors[:50],
            breakthrough_threshold=self.settings.scout_threshold,
            duration_ms=self.deadline.elapsed_ms(), error=error,
            pause_reason=self.cap.trip_reason if cost_cap_reached else None, deadline=self.deadline.for_writes())
        summary["billingNote"] = billing_note(summary["totalCost"], summary["billedUpTo"])
        return summary

    def _stop_causes(self) -> dict[str, bool]:
        # An interrupt ends the run as a pause does: killed, its battles in flight cut.
        paused = self.pause_watch.reason is not None or self.pause_watch.interrupted is not None
        return {"budget_spent": self.cap.tripped, "paused": paused,
                "provider_halted": self.ctx.halted is not None, "timed_out": self.admission.timed_out}

    def _battle_all(self) -> None:
        workers = self.settings.max_concurrent_battles
        free_slots = threading.Semaphore(workers)
        futures: list[Future[None]] = []
        # Not a `with` block: its exit would wait for a battle hung past the deadline.
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"battle-{self.id[:8]}")
        self.pause_watch.start()
        try:
            for planned in self.plan:
                if not self.admission.admits_another() or \
                        not free_slots.acquire(timeout=max(0.0, self.time_left())):
                    break
                if futures and not self.admission.wait_for_headroom():
                    free_slots.release()
                    break
                self.admission.admitted()
                futures.append(pool.submit(contextvars.copy_context().run, self._one_battle, planned["persona"],
                                           planned["versionId"], planned.get("pairOrder"), free_slots))
            pending = set(futures)
            while pending and self.time_left() > 0:
                _, pending = wait(pending, timeout=self.time_left(), return_when=FIRST_COMPLETED)
            if pending:
                self.admission.cut_short_at_deadline()
                self.stop.set()
                wait(pending, timeout=STOP_GRACE_S)
        finally:
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _one_battle(self, persona: Persona, version_id: int, pair_order: int | None,
                    free_slots: threading.Semaphore) -> None:
        try:
            battle_id = self.admission.start_spaced(
                lambda: self.queries.start_battle(self.id, persona["id"], version_id, pair_order,
                                                  deadline=self.deadline.at))
            if battle_id is None:
                return
            state = BattleState(battle_id, persona)
            with self._lock:
                self.battles.append(state)
                self.progress.started += 1
            self._report(state)
            try:
                fight(self.llm, self.ctx, self.setup, self.prompts[version_id], state, on_turn=self._save_progress)
                self._save(state, BattleStatus.COMPLETED)
            except BudgetExceeded as exc:
                self._save(state, BattleStatus.KILLED, str(exc))
            except (Stopped, DeadlineExceeded) as exc:
                self._save(state, battle_ending(**{**self._stop_causes(), "timed_out": True}), str(exc))
            except LLMError as exc:
                self._save(state, BattleStatus.FAILED, str(exc))
        except Exception as exc:  # a battle's failure never takes the run down with it
            with self._lock:
                self.errors.append(f"{persona['name']}: {type(exc).__name__}: {exc}")
            log("battle_error", runId=self.id, persona=persona["name"], error=str(exc))
        finally:
            free_slots.release()

    def _save_progress(self, state: BattleState) -> None:
        with self._lock:
            transcript, usage = state.snapshot()
        self.queries.record_battle_progress(state.id, _recorded(transcript, usage), deadline=self.deadline.at)

    def _save(self, state: BattleState, status: BattleStatus, error: str | None = None) -> None:
        """Writes the battle's ending once; whoever saves first (thread or runner) wins."""
        with self._lock:
            if state.status != BattleStatus.RUNNING:
                return
            state.status, state.error = status, error
            (transcript, usage), verdict = state.snapshot(), state.verdict
            if error and status == BattleStatus.FAILED:
                self.errors.append(f"{state.persona['name']}: {error}")
        scored = verdict if status == BattleStatus.COMPLETED else None
        kept = VerdictRecord(scored.total if scored else None, scored.scores if scored else None,
                             verdict.feedback, verdict.winning_rebuttal, verdict.seller_agreed) if verdict else None
        self.queries.finish_battle(state.id, status, _recorded(transcript, usage), kept, error,
                                   deadline=self.deadline.for_writes())
        with self._lock:
            self.progress.done += 1
        log("battle_finished", runId=self.id, battleId=state.id, persona=state.persona["name"], status=status,
            turns=count_turns(transcript), score=float(scored.total) if scored else None, cost=float(usage.cost))
        self._report(state)

    def _report(self, state: BattleState) -> None:
        if self._on_progress is None:
            return
        with self._lock:
            self.progress.spent = float(self.cap.committed)
            self.progress.time_left_s = max(0.0, self.time_left())
            self.progress.last = {"persona": state.persona["name"], "status": state.status,
                                  "score": float(state.verdict.total) if state.verdict else None}
            snapshot = Progress(**vars(self.progress))
        self._on_progress(snapshot)


def _recorded(transcript: list[Line], usage: Usage) -> BattleRecord:
    return BattleRecord(transcript, count_turns(transcript), usage.prompt_tokens, usage.cached_tokens,
                        usage.completion_tokens, usage.cost)


def battle_ending(*, budget_spent: bool, paused: bool, provider_halted: bool, timed_out: bool) -> BattleStatus:
    """How a battle cut short ends: killed by the budget (the cost cap, or the run's block of the day's
    budget) or a pause; failed when the provider refuses every call; timed out by the deadline;
    else failed with its run."""
    if budget_spent or paused:
        return BattleStatus.KILLED
    if provider_halted:
        return BattleStatus.FAILED
    return BattleStatus.TIMED_OUT if timed_out else BattleStatus.FAILED


def run_ending(*, crashed: bool, budget_spent: bool, paused: bool, provider_halted: bool,
               timed_out: bool) -> tuple[RunStatus, BattleStatus]:
    """The run's status, and how its battles still running end (`battle_ending`). `crashed`: an
    error stopped the run itself."""
    leftover = battle_ending(budget_spent=budget_spent, paused=paused, provider_halted=provider_halted,
                             timed_out=timed_out)
    if budget_spent or paused:
        return RunStatus.KILLED, leftover
    if provider_halted or crashed:
        return RunStatus.FAILED, leftover
    return (RunStatus.TIMED_OUT if timed_out else RunStatus.COMPLETED), leftover
