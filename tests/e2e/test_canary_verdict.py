"""CANARY_VERDICT=head_to_head from outside: runs against the fake OpenAI server (whose head-to-head
judge prefers the call with the larger `[fake-effect:±N]`), the verdicts stored on the pairs, the
canary deciding on them, and a failed verdict call leaving its pair for the next look."""
import json
import time

from lib.app import make_llm
from lib.canary_verdicts import judge_new_pairs
from lib.store.queries import Queries
from tests.e2e.test_versions import (
    breakthrough,
    canary_until_decided,
    cli,
    decisions_in_slack,
    trained_batch,
    versions_json,
)

PAIR_VERDICTS = ("select b.pair_verdict from sandbox_battles b where b.version_id = 2 and b.status = 'completed' "
                 "and exists (select 1 from sandbox_battles a where a.run_id = b.run_id and a.persona_id = b.persona_id "
                 "and a.version_id = 1 and a.status = 'completed')")


def three_unjudged_pairs(canary_settings, psycopg_store, db, database_url) -> None:
    """A candidate (+12) and one run in score mode: three complete pairs without a verdict, and
    the canary's unit not yet fixed (as if that run's look had not happened)."""
    tactic = "Confirm every promise in writing before the seller asks. [fake-effect:+12]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    plain = canary_settings()
    trained_batch(plain, psycopg_store, make_llm(plain), trigger="manual")
    db.execute("update training_versions set canary_unit = null")


def head_to_head_calls(fake_openai) -> list[dict]:
    return [e for e in fake_openai.log if e["schema"] == "head_to_head"]


def test_a_candidate_with_a_real_effect_is_adopted_through_head_to_head_verdicts(canary_settings, psycopg_store, db,
                                                                                 database_url, fake_openai, slack):
    tactic = "Confirm every promise in writing before the seller asks. [fake-effect:+12]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    settings = canary_settings(CANARY_MAX_PAIRS=90, CANARY_VERDICT="head_to_head")

    looks = canary_until_decided(settings, psycopg_store, runs=30)
    assert [look["decision"] for look in looks[:-1]] == ["pending"] * (len(looks) - 1)
    assert looks[-1]["decision"] == "adopted" and all(look["unit"] == "head_to_head" for look in looks)
    verdicts = [row[0] for row in db.execute(PAIR_VERDICTS)]
    # Every complete pair judged once, one call each, the candidate's call preferred each time.
    assert verdicts and verdicts == [1] * len(verdicts) and looks[-1]["pairs"] == len(verdicts)
    assert len(head_to_head_calls(fake_openai)) == len(verdicts)
    # The order is a fair coin: both orders were shown.
    firsts = {"(effect +12)" in call["messages"][-1]["content"].split("CALL B:")[0]
              for call in head_to_head_calls(fake_openai)}
    assert firsts == {True, False}
    newest = versions_json(database_url)["versions"][0]
    assert (newest["status"], newest["decision"], newest["diff"]) == ("active", "adopted", 100)
    # The verdicts' calls were paid from a block of the budget, settled.
    spends = db.execute("select count(*), bool_and(finished_at is not null), sum(recorded) from training_spends "
                        "where purpose = 'canary_verdicts'").fetchone()
    assert spends[0] >= 1 and spends[1] and spends[2] > 0
    [message] = decisions_in_slack(slack)
    assert "Head-to-head verdicts against v1" in json.dumps(message)


def test_with_the_setting_off_no_verdict_is_asked_and_the_canary_reads_points(canary_settings, psycopg_store, db,
                                                                              database_url, fake_openai):
    tactic = "Confirm every promise in writing before the seller asks. [fake-effect:+12]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    settings = canary_settings()
    looks = [trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")["canary"] for _ in range(2)]
    assert [look["unit"] for look in looks] == ["score", "score"] and looks[-1]["pairs"] == 6
    assert 6 < looks[-1]["diff"] < 18, "score points, not verdicts"
    assert head_to_head_calls(fake_openai) == []
    assert [row[0] for row in db.execute(PAIR_VERDICTS)] == [None] * 6
    canary = versions_json(database_url)["canary"]
    assert canary["unit"] == "score" and canary["pairsFor5"] is not None
    shown = cli("versions", db_url=database_url)
    assert "measured in points" in shown.stdout and "at this spread" in shown.stdout


def test_a_failed_verdict_call_leaves_the_pair_unjudged_and_the_next_look_judges_it(canary_settings, psycopg_store,
                                                                                    db, database_url, fake_openai):
    three_unjudged_pairs(canary_settings, psycopg_store, db, database_url)
    settings = canary_settings(CANARY_VERDICT="head_to_head")
    assert [row[0] for row in db.execute(PAIR_VERDICTS)] == [None] * 3
    # The judge answers malformed twice: the pairs stay unjudged, and the errors say why.
    fake_openai.fail_next("malformed", count=2)
    errors: list[str] = []
    assert judge_new_pairs(settings, psycopg_store, make_llm(settings), judge_by=time.monotonic() + 30,
                           simulated=False, errors=errors) == 0
    assert len(errors) == 1 and "malformed head-to-head answer twice" in errors[0] and "(0 judged this look; the pairs left are judged at the next look; the judge has failed on this pair 1 time(s))" in errors[0]
    assert [row[0] for row in db.execute(PAIR_VERDICTS)] == [None] * 3
    pairs = Queries(psycopg_store).canary_pairs("head_to_head")
    assert pairs["diffs"] == [] and pairs["skipped"] == 3 and "not judged yet" in pairs["skippedReason"]

    # The next run's look judges them, with its own.
    batch = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert batch["canary"]["pairs"] == 6 and batch["canary"]["diff"] == 100
    assert [row[0] for row in db.execute(PAIR_VERDICTS)] == [1] * 6
    assert db.execute("select count(*) from training_spends where finished_at is null").fetchone()[0] == 0



def test_each_verdict_keeps_the_order_it_was_judged_in_and_versions_shows_the_judges_lean(canary_settings, psycopg_store,
                                                                                          db, database_url, fake_openai):
    # A candidate no better than the active version, and a judge that always prefers CALL A.
    tactic = "Repeat the seller's last sentence back before answering. [fake-effect:+0]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    fake_openai.head_to_head_lean = "A"
    settings = canary_settings(CANARY_VERDICT="head_to_head")
    for _ in range(3):  # 9 pairs: below the 10 a decision needs, so the canary stays
        trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    judged = db.execute("select pair_verdict, pair_verdict_candidate_first from sandbox_battles "
                        "where pair_verdict is not null").fetchall()
    assert len(judged) == 9
    # The first call always won: the verdict is the candidate's exactly when it was shown first.
    assert all((verdict == 1) == candidate_first for verdict, candidate_first in judged), judged
    canary = versions_json(database_url)["canary"]
    assert canary["positionBias"]["firstShownWon"] == canary["positionBias"]["decisive"] == 9
    shown = cli("versions", db_url=database_url).stdout
    assert "the judge chose the call it read first in 9 of 9 decisive verdicts (100%" in shown, shown


def failures_by_age(db) -> list:
    return [row[0] for row in db.execute(
        "select b.pair_verdict_failures from sandbox_battles b where b.version_id = 2 and b.status = 'completed' "
        "order by b.ended_at, b.id")]


def test_a_pair_the_judge_keeps_failing_on_waits_at_the_back_and_is_left_out_after_three(canary_settings,
                                                                                         psycopg_store, db,
                                                                                         database_url, fake_openai):
    three_unjudged_pairs(canary_settings, psycopg_store, db, database_url)
    settings = canary_settings(CANARY_VERDICT="head_to_head")
    queries = Queries(psycopg_store)

    def judge(errors):
        return judge_new_pairs(settings, psycopg_store, make_llm(settings), judge_by=time.monotonic() + 30,
                               simulated=False, errors=errors)

    # The judge fails on the first pair it tries: counted on that pair, which then waits behind the others.
    fake_openai.fail_next("malformed", count=2)
    errors: list[str] = []
    assert judge(errors) == 0 and "the judge has failed on this pair 1 time(s)" in errors[0]
    assert failures_by_age(db) == [1, None, None]
    fake_openai.fail_next("malformed", count=2)
    assert judge([]) == 0
    assert failures_by_age(db) == [1, 1, None], "the next look tried a pair the judge had not failed on"

    # The next looks judge the pairs before it, then fail on it again: after 3 failures it is left out.
    for judged_first in (1, 1):
        fake_openai.fail_next("pass")
        fake_openai.fail_next("malformed", count=2)
        assert judge([]) == judged_first
    assert failures_by_age(db) == [3, 1, None] and len(head_to_head_calls(fake_openai)) == 10
    assert queries.canary_unjudged(10, claim_s=0) == []
    pairs = queries.canary_pairs("head_to_head")
    assert pairs["diffs"] == [100, 100] and pairs["skipped"] == 1
    assert pairs["skippedReason"] == "1 the judge failed on 3 times (left out)"


def test_an_outage_leaves_no_pair_out_and_a_request_the_provider_keeps_failing_is_the_pairs_own(
        canary_settings, psycopg_store, db, database_url, fake_openai):
    three_unjudged_pairs(canary_settings, psycopg_store, db, database_url)
    settings = canary_settings(CANARY_VERDICT="head_to_head")

    def judge(errors):
        return judge_new_pairs(settings, psycopg_store, make_llm(settings), judge_by=time.monotonic() + 30,
                               simulated=False, errors=errors)

    for _ in range(3):  # as many looks as the failures that leave a pair out
        fake_openai.fail_next("500", count=6)  # every attempt of the first pair's call, and of the next pair's
        errors: list[str] = []
        assert judge(errors) == 0
        assert len(errors) == 1 and "HTTP 500 after 3 attempts" in errors[0] and "failed on this pair" not in errors[0]
    assert failures_by_age(db) == [None, None, None], "an outage is not the pairs'"
    assert db.execute("select count(*) from sandbox_battles where pair_verdict_claimed_until is not null"
                      ).fetchone()[0] == 0, "released for the next look"

    # The provider fails only the first pair's call: the next pair's answer makes that failure the pair's own.
    fake_openai.fail_next("500", count=3)
    errors = []
    assert judge(errors) == 2
    assert errors == ["Canary verdicts: gpt-4o: HTTP 500 after 3 attempts (the provider answered this look's other "
                      "calls; the judge has failed on this pair 1 time(s))"]
    assert failures_by_age(db) == [1, None, None]
    assert judge([]) == 1, "the provider is back"
    assert [row[0] for row in db.execute(PAIR_VERDICTS)] == [1] * 3


def test_the_canary_keeps_the_unit_of_its_first_look_when_the_setting_changes(canary_settings, psycopg_store, db,
                                                                              database_url, fake_openai):
    tactic = "Confirm every promise in writing before the seller asks. [fake-effect:+12]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    plain = canary_settings()
    assert trained_batch(plain, psycopg_store, make_llm(plain), trigger="manual")["canary"]["unit"] == "score"
    switched = canary_settings(CANARY_VERDICT="head_to_head")
    look = trained_batch(switched, psycopg_store, make_llm(switched), trigger="manual")["canary"]
    assert look["unit"] == "score" and look["pairs"] == 6 and look["decision"] == "pending"
    assert head_to_head_calls(fake_openai) == [], "no verdicts asked for a canary that measures points"
    assert versions_json(database_url, CANARY_VERDICT="head_to_head")["canary"]["unit"] == "score"
    shown = cli("versions", db_url=database_url, CANARY_VERDICT="head_to_head").stdout
    assert ("measured in points (its first look's unit; CANARY_VERDICT=head_to_head applies from the next "
            "candidate)") in shown, shown
    # A look in the other unit (a run that read the setting before the first look was recorded) records nothing.
    answer = Queries(psycopg_store).record_canary(2, "adopted", 50, 100, [10, 100], 100, unit="head_to_head")
    assert answer == {"recorded": False, "decided": False, "unit": "score"}
    assert db.execute("select status, canary_unit from training_versions where id = 2").fetchone() == (
        "candidate", "score")


def test_a_call_over_the_cost_cap_or_a_pair_another_look_holds_never_counts_against_a_pair(canary_settings, psycopg_store, db,
                                                                                 database_url, fake_openai):
    three_unjudged_pairs(canary_settings, psycopg_store, db, database_url)
    queries = Queries(psycopg_store)
    # A judge priced so that one call's worst case does not fit the look's block: BudgetExceeded.
    dear = canary_settings(CANARY_VERDICT="head_to_head", MODEL_PRICES='{"gpt-4o": {"input": 1000, "output": 1000}}')
    errors: list[str] = []
    assert judge_new_pairs(dear, psycopg_store, make_llm(dear), judge_by=time.monotonic() + 30, simulated=False,
                           errors=errors) == 0
    assert len(errors) == 1 and "Cost cap reached" in errors[0] and "failed on this pair" not in errors[0], errors
    assert failures_by_age(db) == [None, None, None] and head_to_head_calls(fake_openai) == []
    assert db.execute("select count(*) from sandbox_battles where pair_verdict_claimed_until is not null"
                      ).fetchone()[0] == 0, "released for the next look"

    # Pairs another run's look has claimed are not judged again until the claim ends.
    held = queries.canary_unjudged(2, claim_s=600)
    settings = canary_settings(CANARY_VERDICT="head_to_head")
    assert judge_new_pairs(settings, psycopg_store, make_llm(settings), judge_by=time.monotonic() + 30,
                           simulated=False, errors=[]) == 1
    judged = {row[0] for row in db.execute("select id::text from sandbox_battles where pair_verdict is not null")}
    assert len(judged) == 1 and not judged & {pair["candidateBattleId"] for pair in held}
