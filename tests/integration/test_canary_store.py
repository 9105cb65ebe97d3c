"""The canary's data in PostgreSQL: what a look may read and record (faults), and which personas
a run pairs."""

from decimal import Decimal

import psycopg
import pytest

from lib import canary
from lib.store.queries import Queries
from tests.conftest import seed_personas
from tests.e2e.test_versions import breakthrough


def start_canary_run(queries, batch_size: int = 4) -> dict:
    """A run's start, as the runner asks for it (the plan with its pairs)."""
    return queries.start_run(trigger="cli", requested_batch_size=None, batch_size=batch_size, cost_cap=5,
                             max_concurrent_runs=1, deadline_ms=50_000, simulated=True, default_battle_ms=15_000,
                             base_prompt="Base.", canary_share=0.5)


def run_pairs(queries, db, scores: dict[int, float]) -> str:
    """One run whose planned battles all complete, scored by version; returns its id."""
    started = start_canary_run(queries)
    run_id = started["run"]["runId"]
    for planned in started["battles"]:
        queries.start_battle(run_id, planned["persona"]["id"], planned["versionId"], planned["pairOrder"])
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
    battle_id = candidate.start_battle(started["run"]["runId"], planned["persona"]["id"], planned["versionId"])
    with pytest.raises(psycopg.errors.CheckViolation, match="sandbox_battles_completed_has_score"):
        db.execute("update sandbox_battles set status = 'completed', ended_at = now() where id = %s", (battle_id,))


def unscored_row_from_before_the_rule(db) -> None:
    """A completed candidate battle without a score, as a database from before the rule could hold:
    written with the check dropped and put back NOT VALID, in one transaction (a failure leaves the
    check in place for the tests after)."""
    with db.transaction():
        db.execute("alter table sandbox_battles drop constraint sandbox_battles_completed_has_score")
        db.execute("update sandbox_battles set referee_score = null where id = (select id from sandbox_battles "
                   "where version_id = 2 order by id limit 1)")
        db.execute("alter table sandbox_battles add constraint sandbox_battles_completed_has_score "
                   "check (status <> 'completed' or referee_score is not null) not valid")


def test_an_unscored_pair_from_before_the_rule_is_skipped_with_its_reason(candidate, db):
    run_pairs(candidate, db, {1: 80, 2: 84.5})
    unscored_row_from_before_the_rule(db)
    pairs = candidate.canary_pairs()
    assert pairs["diffs"] == [4.5] and pairs["skipped"] == 1
    assert "without a score" in pairs["skippedReason"]
    look = canary.decide(pairs["diffs"], 100)
    assert (look.pairs, look.diff) == (1, 4.5)


def test_triage_leaves_an_unscored_row_alone_and_sees_the_rest(candidate, db):
    """Only a database from before the score rule could hold one; updating it would fail the check."""
    run_pairs(candidate, db, {1: 80, 2: 84.5})
    unscored_row_from_before_the_rule(db)
    completed = db.execute("select count(*) from sandbox_battles where status = 'completed'").fetchone()[0]
    assert candidate.triage_battles(95, Decimal("0.1"), 7)["triaged"] == completed - 1
    assert db.execute("select scout_seen_at from sandbox_battles where referee_score is null "
                      "and status = 'completed'").fetchone() == (None,)


def test_a_difference_that_is_not_a_number_never_reaches_the_decision():
    clear_gain = [30.0, 31.0] * canary.MIN_PAIRS
    look = canary.decide([float("nan"), None, float("inf"), *clear_gain], max_pairs=100)
    assert (look.decision, look.pairs, look.skipped) == ("adopted", len(clear_gain), 3)
    with pytest.raises(ValueError, match="must be a finite number"):
        canary.Wealth().add(float("nan"))


def test_a_stale_look_cannot_overwrite_newer_figures(candidate):
    assert candidate.record_canary(2, "pending", 6, 3.5, [-1.0, 8.0], 100) == {"recorded": True, "decided": False}
    stale = candidate.record_canary(2, "pending", 4, -2.0, [-9.0, 5.0], 100)
    assert stale == {"recorded": False, "decided": False, "stale": True}
    listing = candidate.versions(100)["canary"]
    assert (listing["pairs"], listing["diff"], listing["ci95"]) == (6, 3.5, [-1.0, 8.0])


def test_the_look_that_decided_gets_its_decision_again_and_no_other_look_does(candidate):
    """The store retries a call whose answer was lost: the replay must not read as superseded."""
    look = "6f1c1f6e-8d52-4f57-9f57-0a1b2c3d4e5f"
    first = candidate.record_canary(2, "adopted", 12, 4.5, [1.25, 7.75], 100, look_id=look)
    again = candidate.record_canary(2, "adopted", 12, 4.5, [1.25, 7.75], 100, look_id=look)
    assert first["decided"] and again["decided"] and again["message"] == first["message"] == "v2 adopted: it beat v1"
    assert again["version"] == first["version"]
    other = candidate.record_canary(2, "adopted", 12, 4.5, [1.25, 7.75], 100,
                                    look_id="00000000-0000-4000-8000-000000000000")
    assert other == {"recorded": False, "decided": False}
    assert candidate.record_canary(2, "adopted", 12, 4.5, [1.25, 7.75], 100) == {"recorded": False, "decided": False}


def test_pairs_go_to_the_least_paired_personas_whatever_the_rotation(psycopg_store, db):
    """Batch 3 with 14 personas (one pair and one unpaired battle per run): the old rotation paired
    the same 7 personas every time; now every persona's pair count stays within one of the others'."""
    seed_personas(psycopg_store, 14)
    queries = Queries(psycopg_store)
    queries.promote_breakthrough(breakthrough(db, "Ask before you pitch."))
    for run in range(28):
        started = start_canary_run(queries, batch_size=3)
        assert started["canaryPairs"] == 1 and len(started["battles"]) == 3
        for planned in started["battles"]:
            queries.start_battle(started["run"]["runId"], planned["persona"]["id"], planned["versionId"],
                                 planned["pairOrder"])
        db.execute("update training_runs set status = 'completed', finished_at = now() where id = %s",
                   (started["run"]["runId"],))
        counts = [c for (c,) in db.execute(
            "select count(b.id) from sandbox_personas p left join sandbox_battles b "
            "on b.persona_id = p.id and b.version_id = 2 where p.is_active group by p.id")]
        assert max(counts) - min(counts) <= 1, (run, sorted(counts))
    assert set(counts) == {2}


def test_the_order_within_a_pair_is_a_fair_coin_recorded_on_both_battles(candidate, db):
    for _ in range(30):
        started = start_canary_run(candidate)  # batch 4: two pairs
        plan = started["battles"]
        assert [b["pairOrder"] for b in plan] in ([1, 2, 1, 2],), plan
        assert plan[0]["persona"] == plan[1]["persona"] != plan[2]["persona"] == plan[3]["persona"]
        for planned in plan:
            candidate.start_battle(started["run"]["runId"], planned["persona"]["id"], planned["versionId"],
                                   planned["pairOrder"])
        db.execute("update training_runs set status = 'completed', finished_at = now() where id = %s",
                   (started["run"]["runId"],))
    rows = db.execute("select version_id, pair_order, count(*) from sandbox_battles where pair_order is not null "
                      "group by 1, 2").fetchall()
    counts = {(version, order): count for version, order, count in rows}
    assert counts[(2, 1)] == counts[(1, 2)] and counts[(2, 2)] == counts[(1, 1)]
    assert counts[(2, 1)] + counts[(2, 2)] == 60
    # 60 fair coins: the candidate starts first between 15 and 45 times but for a chance of 1 in 10,000.
    assert 15 <= counts[(2, 1)] <= 45, counts
