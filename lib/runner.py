"""One batch: persona leases, a thread pool, start spacing, the deadline and the cost cap.

`run_batch` starts a run in the database (which refuses when paused, busy or out of personas,
and plans the battles: one per leased persona, or two, one per closer version, for the personas
paired for a canary), runs them on a `ThreadPoolExecutor`, ends the run with figures tallied from
the battle rows, then takes the canary's look (`lib.canary.review`). Every battle that starts is
written when it starts and when it ends, with the version it runs; a battle cut short by the
deadline, the cost cap or a pause keeps its transcript.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal

from lib.battle import BattleState, Models, closer_system_prompt, count_turns, fight
from lib import canary
from lib.budget import CostCap, billing_note, price_for
from lib.llm import BudgetExceeded, CallContext, DeadlineExceeded, LLMError, RateGate, Stopped, Usage
from lib.log import log
from lib.pacing import Pacer
from lib.store.queries import BattleRecord, BattleStatus, Queries, RunStatus, Trigger, VerdictRecord

DEFAULT_BATTLE_MS = 15_000
# Before any battle has finished, assume one takes this share of the run's time at most.
DEFAULT_BATTLE_SHARE = 0.4
# After the deadline, battles get this long to save themselves before the runner saves them.
STOP_GRACE_S = 0.3
# How often a running batch reads the pause, so a pause (by a person, or another run reaching its
# cost cap) stops it within about one LLM call.
PAUSE_POLL_S = 0.5


class RunRefused(Exception):
    """The database refused to start a run: paused, busy, out of budget, or no persona to battle."""

    MESSAGES = {
        "paused": "Training paused",
        "busy": "Run already in progress",
        "no_personas": "No active personas found",
        "no_free_personas": "Every active persona is in a run in progress",
        "budget": "Budget reached",  # the database names the period: "Daily budget reached"
    }
    HINTS = {
        "paused": "resume with python -m lib resume (or the dashboard) once the cause is fixed",
        "busy": "wait for it to finish, or raise MAX_CONCURRENT_RUNS to allow parallel runs",
        "no_personas": "run python -m lib generate-personas, or activate a persona",
        "no_free_personas": "add personas or lower MAX_CONCURRENT_RUNS",
        "budget": "runs start again after the reset, or raise DAILY_BUDGET_USD / MONTHLY_BUDGET_USD",
    }

    def __init__(self, outcome: dict):
        self.outcome = outcome
        self.reason = outcome["status"]
        self.error = outcome.get("error") or self.MESSAGES[self.reason]
        detail = f": {outcome['reason']}" if outcome.get("reason") else ""
        self.hint = self.HINTS[self.reason]
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
    last: dict = field(default_factory=dict)


def run_batch(settings, store, llm, *, trigger: str, requested_batch_size: int | None = None,
              on_progress=None, started: float | None = None) -> dict:
    """Runs one batch and returns its figures (docs/http.md's `batch`). Raises `RunRefused`.

    What follows a batch (the Slack alerts, the scout) is `lib.training.train_once`'s.

    `started` (a `time.monotonic()` value, default now) is when the clock began: for a request,
    its arrival, so the deadline counts from there.
    """
    started = time.monotonic() if started is None else started
    deadline = started + settings.max_execution_ms / 1000
    batch_size = max(1, min(requested_batch_size or settings.batch_size, settings.max_batch_size))
    for model in (settings.closer_model, settings.persona_model, settings.referee_model):
        price_for(model, settings.model_prices)  # a model with no price is refused before any call
    outcome = Queries(store).start_run(
        trigger=Trigger(trigger), requested_batch_size=requested_batch_size, batch_size=batch_size,
        cost_cap=settings.kill_switch_usd, max_concurrent_runs=settings.max_concurrent_runs,
        deadline_ms=settings.max_execution_ms, simulated=llm.simulated,
        default_battle_ms=min(DEFAULT_BATTLE_MS, int(settings.max_execution_ms * DEFAULT_BATTLE_SHARE)),
        base_prompt=settings.closer_prompt_path.read_text(), canary_share=settings.canary_share,
        daily_budget=settings.daily_budget_usd, monthly_budget=settings.monthly_budget_usd, deadline=deadline)
    if outcome["status"] != "started":
        raise RunRefused(outcome)
    run = Run(settings, store, llm, outcome, started, deadline, on_progress)
    log("run_started", runId=run.id, trigger=trigger, batchSize=batch_size, personas=len(run.personas),
        simulated=llm.simulated, recoveredRuns=outcome["recovered"])
    summary = run.execute()
    summary["canary"] = _canary_look(settings, store, summary, outcome, deadline)
    log("run_finished", runId=run.id, status=summary["status"], battlesStarted=summary["battlesStarted"],
        battlesCompleted=summary["battlesCompleted"], totalCost=summary["totalCost"],
        durationMs=summary["durationMs"])
    return summary


class Run:
    def __init__(self, settings, store, llm, outcome, started, deadline, on_progress):
        self.settings = settings
        self.queries = Queries(store)
        self.llm = llm
        self.id = outcome["run"]["batchId"]
        self.personas = outcome["personas"]
        self.plan = outcome["battles"]
        # A battle's closer prompt is its version's (the base prompt start_run recorded on it, and its
        # tactics), fixed when the run starts.
        self.prompts = {int(vid): closer_system_prompt(v["basePrompt"] or settings.closer_prompt_path.read_text(),
                                                       [{"tactic_text": text} for text in v["tactics"]])
                        for vid, v in outcome["versions"].items()}
        self.expected_battle_s = outcome["expectedBattleMs"] / 1000
        self.started = started
        self.deadline = deadline
        # The run's cost cap is its block of the day's and month's budget (at most KILL_SWITCH_THRESHOLD_USD);
        # reaching a block that the budget limited stops the run without pausing training.
        grant = outcome["budget"]
        self.limited_by = grant["limitedBy"]
        self.pacer = Pacer()
        # Before an attempt is sent, what the run may have been billed is written on its row
        # (committed_cost): a run that dies mid-call is counted for it.
        cap = CostCap(Decimal(str(grant["block"])), grant.get("exhausted"),
                      durable=lambda amount: self.queries.commit_cost(self.id, amount, deadline=self.deadline + 1))
        self.ctx = CallContext(cap, deadline, RateGate(), threading.Event(), pacer=self.pacer)
        self.cap, self.stop = self.ctx.cap, self.ctx.stop
        self.models = Models(settings.closer_model, settings.persona_model, settings.referee_model,
                             settings.battle_max_turns, settings.max_tokens_per_turn)
        self.battles: list[BattleState] = []
        self.errors: list[str] = []
        self.timed_out = False
        self.paused_reason: str | None = None
        self._lock = threading.Lock()
        self._start_cond = threading.Condition()
        self._last_start: float | None = None
        self._starting = False
        self._last_admitted = float("-inf")  # when the last battle was handed to a thread
        self._on_progress = on_progress
        self.progress = Progress(total=len(self.plan), cap=float(grant["block"]))

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def execute(self) -> dict:
        status, error = RunStatus.COMPLETED, None
        try:
            self.llm.prepare()
            self._battle_all()
        except Exception as exc:  # the run is closed and recorded whatever went wrong
            status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
            self.stop.set()
            log("run_error", runId=self.id, error=error)
        # Battles still running now end as the run does: killed, timed out, or failed with it.
        leftover = BattleStatus.FAILED
        cost_cap_tripped = self.cap.tripped and self.limited_by == "cap"
        if self.cap.tripped:
            status, leftover = RunStatus.KILLED, BattleStatus.KILLED
            self.errors.append(self.cap.trip_reason)
        elif self.paused_reason is not None:
            status, leftover = RunStatus.KILLED, BattleStatus.KILLED
            self.errors.append(f"Training paused mid-run: {self.paused_reason}")
        elif self.ctx.halted is not None:  # the provider refuses every call (no quota, bad key)
            status, leftover, error = RunStatus.FAILED, BattleStatus.FAILED, error or self.ctx.halted
        elif self.timed_out:
            leftover = BattleStatus.TIMED_OUT
            status = RunStatus.TIMED_OUT if status == RunStatus.COMPLETED else status
        for state in list(self.battles):
            if state.status == BattleStatus.RUNNING:
                self._save(state, leftover, "the run ended before this battle finished")
        # Attempts still in flight count at their worst case: the provider may finish and bill them.
        self.queries.commit_cost(self.id, self.cap.close(), final=True, deadline=self.deadline + 1)
        summary = self.queries.finish_run(
            self.id, status=status, leftover_status=leftover, cost_cap_tripped=cost_cap_tripped,
            timed_out=self.timed_out, errors=self.errors[:50],
            breakthrough_threshold=self.settings.scout_threshold,
            duration_ms=int((time.monotonic() - self.started) * 1000), error=error,
            pause_reason=self.cap.trip_reason if cost_cap_tripped else None, deadline=self.deadline + 1)
        summary["billingNote"] = billing_note(summary["totalCost"], summary["billedUpTo"])
        return summary

    def _stopped_status(self) -> BattleStatus:
        if self.cap.tripped or self.paused_reason is not None:
            return BattleStatus.KILLED
        if self.ctx.halted is not None:
            return BattleStatus.FAILED
        return BattleStatus.TIMED_OUT

    def _watch_pause(self) -> None:
        while not self.stop.is_set():
            try:
                state = self.queries.pause_state(deadline=self.deadline)
            except Exception as exc:  # a missed poll only delays the stop; the battles go on
                log("pause_poll_failed", runId=self.id, error=type(exc).__name__)
                state = {"paused": False}
            if state["paused"]:
                self.paused_reason = state["reason"] or "paused"
                self.stop.set()
                return
            self.stop.wait(PAUSE_POLL_S)

    def _admits_another(self) -> bool:
        """A battle starts only if it can finish: not stopped, under budget, and in time."""
        if self.stop.is_set() or self.cap.tripped:
            return False
        if self.time_left() < self.expected_battle_s:
            with self._lock:
                if not self.timed_out:
                    self.timed_out = True
                    self.errors.append(
                        f"Execution timeout: {max(0.0, self.time_left()):.1f}s left and a battle takes about "
                        f"{self.expected_battle_s:.1f}s; the remaining personas wait for the next run")
            return False
        return True

    def _battle_all(self) -> None:
        workers = self.settings.max_concurrent_battles
        free_slots = threading.Semaphore(workers)
        futures = []
        # Not a `with` block: its exit would wait for a battle hung past the deadline.
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"battle-{self.id[:8]}")
        threading.Thread(target=contextvars.copy_context().run, args=(self._watch_pause,),
                         name=f"pause-{self.id[:8]}", daemon=True).start()
        try:
            for planned in self.plan:
                if not self._admits_another() or not free_slots.acquire(timeout=max(0.0, self.time_left())):
                    break
                if futures and not self._wait_for_headroom():
                    free_slots.release()
                    break
                self._last_admitted = time.monotonic()
                futures.append(pool.submit(contextvars.copy_context().run, self._one_battle, planned["persona"],
                                           planned["versionId"], free_slots))
            pending = set(futures)
            while pending and self.time_left() > 0:
                _, pending = wait(pending, timeout=self.time_left(), return_when=FIRST_COMPLETED)
            if pending:
                with self._lock:
                    self.timed_out = True
                    self.errors.append("Execution timeout: battles still running at the deadline were saved "
                                       "as timed_out with their transcripts")
                self.stop.set()
                wait(pending, timeout=STOP_GRACE_S)
        finally:
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _wait_for_headroom(self) -> bool:
        """Holds the next battle while this run's calls wait for the provider's rate limits
        (lib.pacing): another battle would only wait with them. False when the run stopped or no
        battle fits in the time left."""
        while not self.pacer.wait_while_throttled(min(PAUSE_POLL_S, max(0.0, self.time_left())),
                                                  self._last_admitted):
            if self.stop.is_set():
                return False
            if self.time_left() < self.expected_battle_s:
                with self._lock:
                    self.errors.append("Rate limit: the provider's limits (its x-ratelimit headers) left no room to "
                                       "start another battle before the deadline; the remaining personas wait for "
                                       "the next run")
                return False
        return True

    def _start_spaced(self, persona: dict, version_id: int) -> str | None:
        """Writes the battle's start at least DELAY_BETWEEN_BATTLES_MS after the previous one.

        The spacing is measured from when the previous start was recorded, so the rows'
        `started_at` are spaced too; the lock is held only to read and set the times, never over
        the database call. With no delay, starts do not wait for each other at all. Returns None
        when the battle may no longer start.
        """
        delay = self.settings.delay_between_battles_ms / 1000
        with self._start_cond:
            while delay > 0 and (self._starting or self._last_start is not None):
                if self.stop.is_set():
                    return None
                if self._starting:  # the previous start's row is being written: its time is not known yet
                    self._start_cond.wait(PAUSE_POLL_S)
                    continue
                gap = self._last_start + delay - time.monotonic()
                if gap <= 0:
                    break
                self._start_cond.wait(min(gap, PAUSE_POLL_S))
            if not self._admits_another():
                return None
            self._starting = True
        try:
            return self.queries.start_battle(self.id, persona["id"], version_id, deadline=self.deadline)
        finally:
            with self._start_cond:
                self._last_start, self._starting = time.monotonic(), False
                self._start_cond.notify_all()

    def _one_battle(self, persona: dict, version_id: int, free_slots: threading.Semaphore) -> None:
        try:
            battle_id = self._start_spaced(persona, version_id)
            if battle_id is None:
                return
            state = BattleState(battle_id, persona)
            with self._lock:
                self.battles.append(state)
                self.progress.started += 1
            self._report(state)
            try:
                fight(self.llm, self.ctx, self.models, self.prompts[version_id], state, on_turn=self._save_progress)
                self._save(state, BattleStatus.COMPLETED)
            except BudgetExceeded as exc:
                self._save(state, BattleStatus.KILLED, str(exc))
            except (Stopped, DeadlineExceeded) as exc:
                self._save(state, self._stopped_status(), str(exc))
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
        self.queries.record_battle_progress(state.id, _recorded(transcript, usage), deadline=self.deadline)

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
                                   deadline=max(self.deadline, time.monotonic()) + 1)
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


def _recorded(transcript: list, usage: Usage) -> BattleRecord:
    return BattleRecord(transcript, count_turns(transcript), usage.prompt_tokens, usage.cached_tokens,
                        usage.completion_tokens, usage.cost)


def _canary_look(settings, store, summary: dict, outcome: dict, deadline: float) -> dict | None:
    """The canary's look after the run (pairs, figures, maybe a decision); never fails the run."""
    try:
        look = canary.review(settings, store, deadline=max(deadline, time.monotonic()) + 1,
                             simulated=summary["simulated"])
    except Exception as exc:  # the pairs stay in the battle rows: the next run's look counts them
        summary["errors"].append(f"Canary look failed: {type(exc).__name__}: {exc}")
        log("canary_failed", level=logging.WARNING, runId=summary["batchId"], error=str(exc))
        return None
    if look is not None:
        look["plannedPairs"] = outcome["canaryPairs"]
        if not outcome["canaryPairs"]:
            look["note"] = ("no pairs this run: a run pairs floor(batch size × CANARY_SHARE) personas, so use a "
                            "batch of 2 or more")
        slack_error = look.pop("slackError", None)
        if slack_error:
            summary["errors"].append(f"Canary decision to Slack failed: {slack_error} ({look['message']})")
    return look

