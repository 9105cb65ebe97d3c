"""The proposal queue's calls, one method per SQL function of lib/sql/functions/proposals.sql (the
query layer, as `lib.store.queries.Queries` is for everything else)."""
from __future__ import annotations

from decimal import Decimal

from lib.store import Store

RECENT_DECIDED = 20


class ProposalQueries:
    """Every call on the queue, one method per SQL function of lib/sql/functions/proposals.sql. A
    refusal (the tactic checks, a proposal that is not queued) raises `lib.store.Rejected`."""

    def __init__(self, store: Store):
        self.store = store

    def listing(self, recent: int = RECENT_DECIDED) -> dict:
        """`{"queue": [...in the order they will run], "canary": proposal | None, "decided": [...]}`."""
        return self.store.call_one("training_list_proposals", p_recent=recent)

    def propose(self, kind: str, *, text: str | None = None, tactic_id: str | None = None, source: str = "person",
                proposed_by: str = "a person", reasoning: str | None = None, battle_id: str | None = None,
                fast_track: bool = False, cost_usd: Decimal = Decimal(0), keep_refused: bool = False,
                deadline: float | None = None) -> dict:
        """`{"message", "proposal"}`. A refusal raises `Rejected`, or with `keep_refused` is recorded
        (status `refused`, the reason as its outcome) and returned."""
        return self.store.call_one("training_propose", deadline=deadline, p_kind=kind, p_text=text,
                                   p_tactic_id=tactic_id, p_source=source, p_proposed_by=proposed_by,
                                   p_reasoning=reasoning, p_battle_id=battle_id, p_confirm_score=None,
                                   p_fast_track=fast_track, p_cost_usd=cost_usd, p_keep_refused=keep_refused)

    def move(self, proposal_id: int, position: int) -> dict:
        return self.store.call_one("training_move_proposal", p_id=proposal_id, p_position=position)

    def edit(self, proposal_id: int, text: str) -> dict:
        return self.store.call_one("training_edit_proposal", p_id=proposal_id, p_text=text)

    def fast_track(self, proposal_id: int) -> dict:
        return self.store.call_one("training_fast_track_proposal", p_id=proposal_id)

    def veto(self, proposal_id: int, reason: str | None = None) -> dict:
        return self.store.call_one("training_veto_proposal", p_id=proposal_id, p_reason=reason)

    def step(self, max_tactics: int, queue_breakthroughs: bool, *, deadline: float | None = None) -> dict:
        """The loop's step after a run: `{"queued", "taken", "refused", "entered"}` (lib.proposals)."""
        return self.store.call_one("training_proposal_step", deadline=deadline, p_max_tactics=max_tactics,
                                   p_queue_breakthroughs=queue_breakthroughs)

    def queue_breakthroughs(self, *, deadline: float | None = None) -> int:
        return self.store.call_one("training_queue_breakthroughs", deadline=deadline)

    def take_next(self, max_tactics: int, *, deadline: float | None = None) -> dict:
        return self.store.call_one("training_take_next_proposal", deadline=deadline, p_max_tactics=max_tactics)

    def claim_announcements(self, *, deadline: float | None = None) -> list[dict]:
        return self.store.call_one("training_claim_announcements", deadline=deadline)

    def proposer_turn(self, every: int, worst: int, *, deadline: float | None = None) -> dict | None:
        return self.store.call_one("training_proposer_turn", deadline=deadline, p_every=every, p_worst=worst)

    def quality(self, hours: int, with_tactics: bool = False) -> dict:
        """`{"since", "now", "points": [{"at", "versionId", "battles", "meanScore"}], "decisions": [...],
        "versionTactics": {id: [text]} | None, "difficulties": [int] | None}` (the last two with
        `with_tactics`)."""
        return self.store.call_one("training_dashboard_quality", p_hours=hours, p_with_tactics=with_tactics)
