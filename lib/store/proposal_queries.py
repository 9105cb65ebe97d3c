"""The proposal queue's calls, one method per SQL function of lib/sql/functions/proposals.sql (the
query layer, as `lib.store.queries.Queries` is for everything else; results are checked against
their `TypedDict` at the boundary the same way)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, TypedDict

from lib.store import SCHEMA_HINT, JSONObject, Store, StoreError
from lib.store.queries import shaped
from lib.text import checked_tactic

RECENT_DECIDED = 20


class Proposal(TypedDict):
    """One proposal as the CLI, the dashboard and docs/http.md's `view=proposals` show it."""

    id: int
    kind: str
    source: str
    text: str | None
    tacticId: str | None
    tacticText: str | None
    battleId: str | None
    confirmScore: float | None
    reasoning: str | None
    proposedBy: str
    status: str
    position: int | None
    fastTracked: bool
    versionId: int | None
    outcome: str | None
    createdAt: str
    decidedAt: str | None
    costUsd: float


class ProposalList(TypedDict):
    queue: list[Proposal]
    canary: Proposal | None
    decided: list[Proposal]


class ProposalChange(TypedDict):
    """What propose, move, edit, fast-track and veto answer."""

    message: str
    proposal: Proposal


class ProposalStep(TypedDict):
    """The loop's step after a run: breakthroughs queued, the proposal taken (or None), those the
    checks refused when taken, and those that entered and are to be announced."""

    queued: int
    taken: Proposal | None
    refused: list[Proposal]
    entered: list[Proposal]


class TakenProposal(TypedDict):
    taken: Proposal | None
    refused: list[Proposal]


class ProposerTurn(TypedDict):
    """What the proposer reads on its turn (lib/proposer.py), and the claim, to give it back."""

    battles: int
    since: str | None
    claimedAt: str
    worst: list[JSONObject]
    tactics: list[JSONObject]
    past: list[JSONObject]


class QualityView(TypedDict):
    """The closer's quality over time (docs/http.md's `view=quality`, before `trueQuality`)."""

    since: str
    now: str
    points: list[JSONObject]
    decisions: list[JSONObject]
    versionTactics: dict[str, list[str]] | None
    difficulties: list[int] | None


class ProposalQueries:
    """Every call on the queue. A refusal (the tactic checks, a proposal that is not queued) raises
    `lib.store.Rejected`."""

    def __init__(self, store: Store):
        self.store = store

    def _one[T](self, shape: type[T], fn: str, *, deadline: float | None = None, **args: Any) -> T:
        return shaped(shape, self.store.call_one(fn, deadline=deadline, **args), fn)

    def listing(self, recent: int = RECENT_DECIDED) -> ProposalList:
        """The queue in the order its proposals run, the one under canary, the last `recent` decided."""
        return self._one(ProposalList, "training_list_proposals", p_recent=recent)

    def propose(self, kind: str, *, text: str | None = None, tactic_id: str | None = None, source: str = "person",
                proposed_by: str = "a person", reasoning: str | None = None, battle_id: str | None = None,
                fast_track: bool = False, cost_usd: Decimal = Decimal(0), keep_refused: bool = False,
                deadline: float | None = None) -> ProposalChange:
        """A refusal raises `Rejected`, or with `keep_refused` is recorded (status `refused`, the
        reason as its outcome) and returned."""
        # The tactic's text as every tactic reaches SQL's repeat check (lib.text): folded, or refused.
        return self._one(ProposalChange, "training_propose", deadline=deadline, p_kind=kind,
                         p_text=checked_tactic(text), p_tactic_id=tactic_id, p_source=source,
                         p_proposed_by=proposed_by, p_reasoning=reasoning, p_battle_id=battle_id, p_confirm_score=None,
                         p_fast_track=fast_track, p_cost_usd=cost_usd, p_keep_refused=keep_refused)

    def move(self, proposal_id: int, position: int) -> ProposalChange:
        return self._one(ProposalChange, "training_move_proposal", p_id=proposal_id, p_position=position)

    def edit(self, proposal_id: int, text: str) -> ProposalChange:
        return self._one(ProposalChange, "training_edit_proposal", p_id=proposal_id, p_text=checked_tactic(text))

    def fast_track(self, proposal_id: int) -> ProposalChange:
        return self._one(ProposalChange, "training_fast_track_proposal", p_id=proposal_id)

    def veto(self, proposal_id: int, reason: str | None = None) -> ProposalChange:
        return self._one(ProposalChange, "training_veto_proposal", p_id=proposal_id, p_reason=reason)

    def step(self, max_tactics: int, queue_breakthroughs: bool, *, deadline: float | None = None) -> ProposalStep:
        """The loop's step after a run (lib.proposals), in one round trip."""
        return self._one(ProposalStep, "training_proposal_step", deadline=deadline, p_max_tactics=max_tactics,
                         p_queue_breakthroughs=queue_breakthroughs)

    def queue_breakthroughs(self, *, deadline: float | None = None) -> int:
        queued = self.store.call_one("training_queue_breakthroughs", deadline=deadline)
        if not isinstance(queued, int):
            raise StoreError(f"training_queue_breakthroughs answered {type(queued).__name__}, not a count",
                             hint=SCHEMA_HINT)
        return queued

    def take_next(self, max_tactics: int, *, deadline: float | None = None) -> TakenProposal:
        return self._one(TakenProposal, "training_take_next_proposal", deadline=deadline, p_max_tactics=max_tactics)

    def claim_announcements(self, *, deadline: float | None = None) -> list[Proposal]:
        claimed = self.store.call_one("training_claim_announcements", deadline=deadline)
        if not isinstance(claimed, list):
            raise StoreError("training_claim_announcements answered no list", hint=SCHEMA_HINT)
        return [shaped(Proposal, item, "training_claim_announcements") for item in claimed]

    def proposer_turn(self, every: int, worst: int, *, deadline: float | None = None) -> ProposerTurn | None:
        """What the proposer reads when its turn is due (claimed here), else None."""
        value = self.store.call_one("training_proposer_turn", deadline=deadline, p_every=every, p_worst=worst)
        return None if value is None else shaped(ProposerTurn, value, "training_proposer_turn")

    def give_back_proposer_turn(self, turn: ProposerTurn, *, deadline: float | None = None) -> bool:
        """Gives back a turn that recorded no proposal: the next run takes it again, unless a newer
        claim was made meanwhile (never undone). True when given back."""
        return bool(self.store.call_one("training_give_back_proposer_turn", deadline=deadline,
                                        p_claimed_at=turn["claimedAt"], p_since=turn["since"]))

    def quality(self, hours: int, with_tactics: bool = False) -> QualityView:
        """Each version's mean score per hour over the last `hours`, the canary's adoptions and
        rollbacks, and with `with_tactics` each version's tactics and the active personas'
        difficulties (for the simulator's true quality)."""
        return self._one(QualityView, "training_dashboard_quality", p_hours=hours, p_with_tactics=with_tactics)
