"""The canary's data in PostgreSQL: what a look may read and record (faults), and which personas
a run pairs."""
import time

import psycopg
import pytest

from lib import canary
from lib.store.queries import Queries
from tests.conftest import seed_personas
from tests.test_versions import breakthrough


def start_canary_run(queries, batch_size: int = 4) -> dict:
    return queries.start_run(trigger="cli", requested_batch_size=None, batch_size=batch_size, cost_cap=5,
                             max_concurrent_runs=1, deadline_ms=50_000, simulated=True, default_battle_ms=15_000,
                             base_prompt="Base.", canary_share=0.5)


def run_pairs(queries, db, scores: dict[int, float]) -> str:
    """One run whose planned battles all complete, scored by version; returns its id."""
    started = start_canary_run(queries)
    run_id = started["run"]["batchId"]
    for planned in started["battles"]:
        queries.start_battle(run_id, planned["persona"]["id"], planned["versionId"])
    for version_id, score in scores.items():
        db.execute("update sandbox_battles set status = 'completed', ended_at = now(), referee_score = %s "
                   "where run_id = %s and version_id = %s", (score, run_id, version_id))
    db.execute("update training_runs set status = 'completed', finished_at = now() where id = %s", (run_id,))
    db.execute("update sandbox_personas set lease_run_id = null")
    return run_id


@pytest.fixture
def candidate(psycopg_store, db):
    seed_personas(psycopg_store, 4)
    queries = Queries(psycopg_store)
    assert queries.promote_breakthrough(breakthrough(db, "Ask before you pitch."))["version"]["id"] == 2
    return queries


def test_a_completed_battle_without_a_score_is_refused(candidate, db):
    started = start_canary_run(candidate)
    planned = started["battles"][0]
    battle_id = candidate.start_battle(started["run"]["batchId"], planned["persona"]["id"], planned["versionId"])
    with pytest.raises(psycopg.errors.CheckViolation, match="sandbox_battles_completed_has_score"):
        db.execute("update sandbox_battles set status = 'completed', ended_at = now() where id = %s", (battle_id,))


def test_an_unscored_pair_from_before_the_rule_is_skipped_with_its_reason(candidate, db):
    run_pairs(candidate, db, {1: 80, 2: 84.5})
    # A row written before the rule existed: the constraint is NOT VALID, so it stays, unscored.
    db.execute("alter table sandbox_battles drop constraint sandbox_battles_completed_has_score")
    db.execute("update sandbox_battles set referee_score = null where id = (select id from sandbox_battles "
               "where version_id = 2 order by id limit 1)")
    db.execute("alter table sandbox_battles add constraint sandbox_battles_completed_has_score "
               "check (status <> 'completed' or referee_score is not null) not valid")
    pairs = candidate.canary_pairs()
    assert pairs["diffs"] == [4.5] and pairs["skipped"] == 1
    assert "without a score" in pairs["skippedReason"]
    look = canary.decide(pairs["diffs"], 100)
    assert (look.pairs, look.diff) == (1, 4.5)


def test_a_difference_that_is_not_a_number_never_reaches_the_decision():
    clear_gain = [30.0, 31.0] * canary.MIN_PAIRS
    look = canary.decide([float("nan"), None, float("inf"), *clear_gain], max_pairs=100)
    assert (look.decision, look.pairs, look.skipped) == ("adopted", len(clear_gain), 3)
    with pytest.raises(ValueError, match="must be finite"):
        canary.decide_from_sums(20, float("nan"), 1.0, 100)


def test_a_stale_look_cannot_overwrite_newer_figures(candidate):
    assert candidate.record_canary(2, "pending", 6, 3.5, [-1.0, 8.0], 100) == {"recorded": True, "decided": False}
    stale = candidate.record_canary(2, "pending", 4, -2.0, [-9.0, 5.0], 100)
    assert stale == {"recorded": False, "decided": False, "stale": True}
    listing = candidate.versions(100)["canary"]
    assert (listing["pairs"], listing["diff"], listing["ci95"]) == (6, 3.5, [-1.0, 8.0])
