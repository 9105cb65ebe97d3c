"""Closer versions and the canary, from outside: the CLI and the dashboard's JSON as a user drives
them, runs against the fake OpenAI server (real SDK, real HTTP) whose referee scores a closer by
the tactics in its system prompt (`[fake-effect:±N]` markers), and a real Slack receiver."""
import json
import statistics
import subprocess
import sys
import threading
from decimal import Decimal

import psycopg
import pytest
import requests

from lib import canary
from lib.app import make_llm
from lib.config import PROJECT_ROOT
from lib.store import Rejected
from lib.store.queries import Queries, Trigger
from lib.text import tactic_text
from lib.training import train_once
from tests.conftest import child_env, seed_personas, wait_until

VERSION_FIELDS = {"id", "status", "parentId", "change", "createdAt", "battles", "meanScore", "ci95", "decision",
                  "pairs", "diff", "unit", "decidedAt"}
CANARY_FIELDS = {"candidateId", "activeId", "pairs", "maxPairs", "diff", "ci95", "spread", "unit", "pairsFor5",
                 "morePairsFor5", "outlookNote", "positionBias", "incomplete"}


def cli(*args, db_url, **env):
    result = subprocess.run([sys.executable, "-m", "lib", *args], cwd=PROJECT_ROOT, timeout=60, text=True,
                            capture_output=True, env=child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=db_url, **env))
    return result


def versions_json(db_url, **env) -> dict:
    result = cli("versions", "--json", db_url=db_url, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def breakthrough(db, snippet: str, persona: str = "Skeptical Sam") -> str:
    """A battle the scout flagged, with its tactical snippet, as a promotion starts from."""
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at) "
                        "values ('cron', 1, 5, now(), 'completed', now()) returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas where name = %s", (persona,)).fetchone()[0]
    return str(db.execute(
        "insert into sandbox_battles (run_id, persona_id, status, transcript, referee_score, ended_at, "
        "breakthrough_status, breakthrough_detected_at, tactical_snippet) values "
        "(%s, %s, 'completed', '[]', 97, now(), 'pending_review', now(), %s) returning id",
        (run_id, persona_id, snippet)).fetchone()[0])


def trained_batch(settings, store, llm, *, trigger: str):
    """A run and its follow-ups (the canary's look among them), as the cron and the CLI run one."""
    return train_once(settings, store, llm, trigger=trigger, scout="webhook").batch


def canary_until_decided(settings, store, runs: int) -> list[dict | None]:
    looks = []
    for _ in range(runs):
        batch = trained_batch(settings, store, make_llm(settings), trigger="manual")
        assert batch["status"] == "completed", batch["errors"]
        looks.append(batch["canary"])
        if batch["canary"] is None or batch["canary"]["decision"] != "pending":
            break
    return looks


def decisions_in_slack(slack) -> list[dict]:
    return [body for body in slack.bodies() if body["text"].startswith((":white_check_mark:", ":leftwards",
                                                                         ":grey_question:"))]


def test_a_tactic_that_raises_the_score_is_adopted_by_the_canary(canary_settings, psycopg_store, db, database_url,
                                                                 fake_openai, slack):
    tactic = "Confirm every promise in writing before the seller asks. [fake-effect:+12]"
    promoted = cli("promote", breakthrough(db, tactic), db_url=database_url)
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip() == "candidate v2 created, canary started against v1"

    looks = canary_until_decided(canary_settings(CANARY_MAX_PAIRS=90), psycopg_store, runs=30)
    assert [look["decision"] for look in looks[:-1]] == ["pending"] * (len(looks) - 1)
    assert looks[-1]["decision"] == "adopted" and looks[-1]["message"] == "v2 adopted: it beat v1"
    assert all(look["plannedPairs"] == 3 for look in looks)

    listing = versions_json(database_url)
    newest, baseline = listing["versions"]
    assert (newest["id"], newest["status"], newest["decision"], newest["parentId"]) == (2, "active", "adopted", 1)
    assert newest["pairs"] >= 10 and 6 < newest["diff"] < 18 and newest["ci95"][0] >= 0  # > 0 before rounding to cents
    assert (baseline["status"], baseline["decision"]) == ("retired", None)
    assert listing["canary"] is None
    assert [t["tactic_text"] for t in Queries(psycopg_store).active_tactics()] == [tactic]
    [message] = decisions_in_slack(slack)
    text = json.dumps(message)
    assert "v2 adopted" in text and f"over {newest['pairs']} paired battles" in text and "95% interval" in text

    # From now on every battle runs v2, with the tactic in its closer prompt.
    fake_openai.log.clear()
    batch = trained_batch(canary_settings(), psycopg_store, make_llm(canary_settings()), trigger="manual")
    assert batch["canary"] is None
    prompts = [e["messages"][0]["content"] for e in fake_openai.log if e["schema"] is None
               and "Attack patterns" not in e["messages"][0]["content"]]
    assert prompts and all(tactic in prompt for prompt in prompts)
    assert db.execute("select count(*) from sandbox_battles where run_id = %s and version_id = 2",
                      (batch["batchId"],)).fetchone()[0] == 6


def test_a_tactic_that_lowers_the_score_is_rolled_back_without_a_person(canary_settings, psycopg_store, db,
                                                                        database_url, slack):
    tactic = "Tell the seller the offer expires tonight. [fake-effect:-12]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    looks = canary_until_decided(canary_settings(CANARY_MAX_PAIRS=90), psycopg_store, runs=30)
    assert looks[-1]["decision"] == "rolled_back"
    listing = versions_json(database_url)
    candidate, baseline = listing["versions"]
    assert (candidate["status"], candidate["decision"]) == ("rolled_back", "rolled_back")
    assert candidate["diff"] < 0 and candidate["ci95"][1] < 0
    assert baseline["status"] == "active"
    assert Queries(psycopg_store).active_tactics() == []
    assert "v2 rolled back" in json.dumps(decisions_in_slack(slack))


def test_a_tactic_with_no_effect_is_not_adopted(canary_settings, psycopg_store, db, database_url, slack):
    tactic = "Mention the weather before the price. [fake-effect:+0]"
    assert cli("promote", breakthrough(db, tactic), db_url=database_url).returncode == 0
    looks = canary_until_decided(canary_settings(CANARY_MAX_PAIRS=15), psycopg_store, runs=8)
    assert looks[-1]["decision"] == "inconclusive" and looks[-1]["pairs"] >= 15
    candidate, baseline = versions_json(database_url)["versions"]
    assert (candidate["status"], candidate["decision"]) == ("retired", "inconclusive")
    assert candidate["ci95"][0] <= 0 <= candidate["ci95"][1]
    assert baseline["status"] == "active"
    assert "v2 inconclusive" in json.dumps(decisions_in_slack(slack))


def test_a_repeated_tactic_is_refused_naming_the_tactic_it_repeats(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 1)
    first = breakthrough(db, "Offer a written guarantee, then let the seller pick the date.")
    adopted = cli("promote", first, "--direct", db_url=database_url)
    assert adopted.returncode == 0 and adopted.stdout.strip() == "v2 adopted directly (no canary)"
    repeat = breakthrough(db, "offer a WRITTEN guarantee -- then let the seller pick the date!")
    refused = cli("promote", repeat, db_url=database_url)
    assert refused.returncode == 1
    assert refused.stderr == ('error: refused: this tactic repeats the active tactic "Offer a written guarantee, '
                              'then let the seller pick the date."\n')
    near = cli("promote", repeat, "--tactic", "Offer the written guarantee, then let the seller choose the date.",
               db_url=database_url)
    assert near.returncode == 1 and "nearly repeats the active tactic \"Offer a written guarantee" in near.stderr
    assert "similarity 0.76" in near.stderr
    empty = cli("promote", repeat, "--tactic", "  ...  ", db_url=database_url)
    assert empty.stderr == "error: refused: a tactic cannot be empty\n"
    long = cli("promote", repeat, "--tactic", "x" * 1001, db_url=database_url)
    assert long.stderr == "error: refused: a tactic is at most 1000 characters; this one has 1001\n"
    different = cli("promote", repeat, "--tactic", "Offer a written guarantee before the price.", db_url=database_url)
    assert different.returncode == 0, different.stderr
    # Nothing half-written by the refusals: one version per accepted change, the battle promoted once.
    assert [v["id"] for v in versions_json(database_url)["versions"]] == [3, 2, 1]
    assert db.execute("select count(*) from sandbox_tactics").fetchone()[0] == 2
    assert db.execute("select breakthrough_status from sandbox_battles where id = %s", (repeat,)).fetchone()[0] \
        == "promoted"


GUARANTEE = "Offer a written guarantee, then let the seller pick the closing date."


@pytest.mark.parametrize("disguised, refusal", [
    ("Offer a writ\u200bten guaran\u200btee, then let the sel\u200bler pick the clos\u200bing date.",
     "this tactic repeats the active tactic"),
    ("Ｏｆｆｅｒ ａ ｗｒｉｔｔｅｎ ｇｕａｒａｎｔｅｅ， ｔｈｅｎ ｌｅｔ ｔｈｅ ｓｅｌｌｅｒ ｐｉｃｋ ｔｈｅ ｃｌｏｓｉｎｇ ｄａｔｅ．",
     "this tactic repeats the active tactic"),
    ("O f f e r a w r i t t e n g u a r a n t e e, then let the seller pick the closing date.",
     "it spells words out one letter at a time"),
    ("Оffеr а writtеn guаrаntее, thеn lеt thе sеllеr pick thе clоsing dаtе.", "mixes Latin letters with Cyrillic"),
    ("\u202e.etad gnisolc eht kcip relles eht tel neht ,eetnaraug nettirw a reffO", "bidirectional control characters"),
])
def test_a_disguised_repeat_of_an_active_tactic_is_refused(psycopg_store, db, disguised, refusal):
    seed_personas(psycopg_store, 1)
    queries = Queries(psycopg_store)
    for text in (GUARANTEE, "Ask before you pitch."):
        queries.promote_breakthrough(breakthrough(db, text), direct=True)
    other = next(t["id"] for t in queries.tactics()["tactics"] if t["text"] == "Ask before you pitch.")
    for attempt in (lambda: queries.promote_breakthrough(breakthrough(db, "Name the costs."), disguised),
                    lambda: queries.promote_breakthrough(breakthrough(db, disguised)),  # as the scout's snippet
                    lambda: queries.edit_tactic(other, disguised)):
        with pytest.raises(Rejected, match=refusal):
            attempt()
    assert [t["tactic_text"] for t in queries.active_tactics()] == [GUARANTEE, "Ask before you pitch."]
    assert db.execute("select count(*) from sandbox_tactics").fetchone()[0] == 2, "nothing half-written"


def test_a_tactic_in_compatibility_forms_is_stored_folded(psycopg_store, db):
    seed_personas(psycopg_store, 1)
    Queries(psycopg_store).promote_breakthrough(breakthrough(db, "Name the ｒｅｐａｉｒ costs\u200b."), direct=True)
    assert [t["tactic_text"] for t in Queries(psycopg_store).active_tactics()] == ["Name the repair costs."]


@pytest.mark.parametrize("text", ["Say 'I understand', then quote the U.S. rules and an A/B test.",
                                  "Offer a naïve café-style chat; ask “why now?” — then listen.",
                                  "Name the repair costs: roof $8,000, HVAC $4,500, 3 to 5 weeks."])
def test_ordinary_tactics_pass_the_hidden_text_checks_unchanged(text):
    assert tactic_text(text) == text


def test_versions_json_has_every_field_and_the_table_reads(canary_settings, psycopg_store, db, database_url):
    assert versions_json(database_url)["versions"][0]["change"].startswith("Baseline")
    assert cli("promote", breakthrough(db, "Ask about the timeline first. [fake-effect:+3]"),
               db_url=database_url).returncode == 0
    trained_batch(canary_settings(), psycopg_store, make_llm(canary_settings()), trigger="manual")
    # Each pair's order is recorded, and the runner started its battles in that order (one at a time).
    pairs = db.execute("select persona_id, array_agg(pair_order order by started_at) "
                       "from sandbox_battles where pair_order is not null group by persona_id").fetchall()
    assert len(pairs) == 3 and all(order == [1, 2] for _, order in pairs), pairs
    listing = versions_json(database_url, CANARY_MAX_PAIRS=40)
    assert set(listing) == {"versions", "canary"}
    for version in listing["versions"]:
        assert set(version) >= VERSION_FIELDS, version
    candidate, baseline = listing["versions"]
    assert (candidate["status"], candidate["decision"], candidate["pairs"], candidate["battles"]) == \
        ("candidate", "pending", 3, 3)
    assert isinstance(candidate["diff"], float) and len(candidate["ci95"]) == 2
    assert baseline["battles"] == 3 and baseline["meanScore"] is not None and baseline["decision"] is None
    assert set(listing["canary"]) == CANARY_FIELDS
    assert (listing["canary"]["candidateId"], listing["canary"]["activeId"], listing["canary"]["maxPairs"]) == \
        (2, 1, 40)
    table = cli("versions", db_url=database_url)
    assert table.returncode == 0
    assert "v2  candidate" in table.stdout and "canary: v2 against v1, 3 of at most 100 pairs" in table.stdout
    # The outlook: pairs a 5-point difference needs at the spread of these 3 pairs.
    spread = statistics.stdev(float(row[0]) for row in db.execute(
        "select c.referee_score - a.referee_score from sandbox_battles c join sandbox_battles a "
        "on a.run_id = c.run_id and a.persona_id = c.persona_id and a.version_id = 1 where c.version_id = 2"))
    canary_now = listing["canary"]
    assert canary_now["spread"] == pytest.approx(spread, abs=0.01)
    assert canary_now["pairsFor5"] == canary.pairs_for_effect(canary_now["spread"]) > 3
    assert canary_now["morePairsFor5"] == canary_now["pairsFor5"] - 3
    assert (f"at this spread ({canary_now['spread']:.1f} points), a 5-point difference takes about "
            f"{canary_now['pairsFor5']} pairs in all ({canary_now['morePairsFor5']} more)") in table.stdout
    assert "raise CANARY_MAX_PAIRS" not in table.stdout
    short = cli("versions", db_url=database_url, CANARY_MAX_PAIRS="10").stdout
    assert ("more); raise CANARY_MAX_PAIRS to reach it, or decide on head-to-head verdicts "
            "(CANARY_VERDICT=head_to_head)") in short, short


def test_rollback_to_an_earlier_version_is_immediate_and_recorded(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 1)
    for text in ("Ask before you pitch.", "Name the repair costs line by line."):
        assert cli("promote", breakthrough(db, text), "--direct", db_url=database_url).returncode == 0
    assert [t["tactic_text"] for t in Queries(psycopg_store).active_tactics()] == [
        "Ask before you pitch.", "Name the repair costs line by line."]
    assert cli("promote", breakthrough(db, "Quote the price early."), db_url=database_url).returncode == 0
    rolled = cli("rollback", "2", db_url=database_url)
    assert rolled.returncode == 0 and rolled.stdout.strip() == "rolled back to v2: v5 is active"
    versions = {v["id"]: v for v in versions_json(database_url)["versions"]}
    assert (versions[5]["status"], versions[5]["decision"], versions[5]["change"]) == ("active", "direct",
                                                                                       "Rolled back to v2")
    assert versions[3]["status"] == "rolled_back"
    assert (versions[4]["status"], versions[4]["decision"]) == ("withdrawn", "withdrawn"), "not a canary's loss"
    assert [t["tactic_text"] for t in Queries(psycopg_store).active_tactics()] == ["Ask before you pitch."]
    for args, error in ((("rollback", "5"), "error: v5 is already the active version\n"),
                        (("rollback", "99"), "error: there is no version v99\n")):
        result = cli(*args, db_url=database_url)
        assert (result.returncode, result.stderr) == (1, error)


def test_rollback_only_to_a_version_that_was_once_active_unless_forced(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 1)
    queries = Queries(psycopg_store)
    queries.promote_breakthrough(breakthrough(db, "Ask before you pitch."), direct=True)  # v2, active at once
    queries.promote_breakthrough(breakthrough(db, "Quote the price early."))  # v3, a candidate
    assert cli("rollback", "2", db_url=database_url).returncode == 0  # v3 withdrawn, v2 stays active
    refused = cli("rollback", "3", db_url=database_url)
    assert (refused.returncode, refused.stderr) == (1, (
        "error: v3 was never active (a withdrawn candidate): rolling back to it would adopt it without a canary; "
        "promote its change as a candidate instead, or force it (python -m lib rollback 3 --force, or the "
        'dashboard action with "force": true)\n'))
    assert [t["tactic_text"] for t in queries.active_tactics()] == ["Ask before you pitch."], "nothing changed"
    forced = cli("rollback", "3", "--force", db_url=database_url)
    assert forced.stdout == "rolled back to v3: v4 is active\n", forced.stderr
    versions = {v["id"]: v for v in versions_json(database_url)["versions"]}
    assert versions[4]["change"] == "Rolled back to v3 (forced: it was never active)"
    assert cli("rollback", "2", db_url=database_url).returncode == 0, "v2 was active once: no --force needed"


def test_promoting_an_unknown_battle_says_there_is_no_such_battle(psycopg_store, db, database_url):
    missing = "00000000-0000-4000-8000-000000000000"
    result = cli("promote", missing, db_url=database_url)
    assert (result.returncode, result.stderr) == (1, f"error: no such battle {missing}\n")


def test_the_database_keeps_one_active_version_and_one_candidate(psycopg_store, db):
    queries = Queries(psycopg_store)
    seed_personas(psycopg_store, 1)
    queries.promote_breakthrough(breakthrough(db, "Ask before you pitch."))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("insert into training_versions (status, change) values ('active', 'a second active')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("insert into training_versions (status, change, decision) values ('candidate', 'x', 'pending')")
    with pytest.raises(Rejected, match="v2 is still under canary"):
        queries.promote_breakthrough(breakthrough(db, "Name the repair costs."), direct=True)


def test_a_changed_base_prompt_makes_a_new_version_and_restarts_the_canary(make_settings, psycopg_store, db,
                                                                          tmp_path):
    seed_personas(psycopg_store, 2)
    Queries(psycopg_store).promote_breakthrough(breakthrough(db, "Ask before you pitch."))
    prompt = tmp_path / "closer.md"
    prompt.write_text("You are a closer. Version one.")
    trained_batch(make_settings(TRAINING_BATCH_SIZE=2, CLOSER_PROMPT_PATH=prompt), psycopg_store,
              make_llm(make_settings()), trigger="manual")
    prompt.write_text("You are a closer. Version two.")
    batch = trained_batch(make_settings(TRAINING_BATCH_SIZE=2, CLOSER_PROMPT_PATH=prompt), psycopg_store,
                      make_llm(make_settings()), trigger="manual")
    versions = {v["id"]: v for v in Queries(psycopg_store).versions(100)["versions"]}
    assert (versions[3]["status"], versions[3]["decision"]) == ("active", "direct")
    assert versions[3]["change"].startswith("Base prompt changed (CLOSER_PROMPT_PATH)")
    assert (versions[4]["status"], versions[4]["parentId"]) == ("candidate", 3)
    assert (versions[2]["status"], versions[2]["decision"]) == ("retired", "inconclusive")
    assert batch["canary"]["candidateId"] == 4 and batch["canary"]["pairs"] == 1
    assert db.execute("select base_prompt from training_versions where id = 1").fetchone()[0] == \
        "You are a closer. Version one."


def test_a_battle_started_before_a_decision_finishes_on_its_version(make_settings, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.3  # a battle of 5 calls lasts 1.5 s: the withdrawal lands while it runs
    seed_personas(psycopg_store, 4)
    queries = Queries(psycopg_store)
    queries.promote_breakthrough(breakthrough(db, "Ask before you pitch."))
    settings = make_settings(TRAINING_BATCH_SIZE=4, MAX_CONCURRENT_BATTLES=4)
    result = {}
    runner = threading.Thread(target=lambda: result.update(trained_batch(settings, psycopg_store, make_llm(settings),
                                                                     trigger="manual")))
    runner.start()
    wait_until(lambda: db.execute("select count(*) from sandbox_battles where version_id = 2").fetchone()[0] == 2,
               timeout=10)
    withdrawn = queries.rollback(1)
    assert withdrawn["message"] == "candidate v2 withdrawn; v1 stays active"
    runner.join(30)
    rows = db.execute("select version_id, status from sandbox_battles where run_id = %s", (result["batchId"],)
                      ).fetchall()
    assert sorted(rows) == [(1, "completed")] * 2 + [(2, "completed")] * 2
    later = [e for e in fake_openai.log if e["schema"] is None and "Ask before you pitch." in e["messages"][0]["content"]]
    assert len(later) == 2 * 2, "both candidate battles kept the candidate's prompt to the end"
    assert result["canary"] is None, "the withdrawn candidate is not looked at again"


def test_the_dashboard_shows_versions_and_tactics_and_changes_them(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    server = start_server(ADMIN_PASSWORD="pw-1", NEXT_PUBLIC_APP_URL=None)
    url = f"{server.url}/admin/training-monitor"

    def post(action, body):
        return requests.post(f"{url}?action={action}", json=body, auth=("admin", "pw-1"), timeout=10,
                             headers={"Origin": server.url})

    def get(view):
        response = requests.get(f"{url}?view={view}", auth=("admin", "pw-1"), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    promoted = post("promote", {"battleId": breakthrough(db, "Ask before you pitch."), "direct": True})
    assert promoted.json()["result"]["message"] == "v2 adopted directly (no canary)"
    tactics = get("tactics")
    [tactic] = tactics["tactics"]
    assert set(tactic) == {"id", "text", "battleId", "promotedAt"} and tactic["text"] == "Ask before you pitch."
    assert tactics["promptPreview"].endswith("- Ask before you pitch.\n")
    assert "acquisitions agent" in tactics["promptPreview"]
    deactivated = post("deactivate", {"tacticId": tactic["id"]})
    assert deactivated.json()["result"]["message"] == "candidate v3 created, canary started against v2"
    again = post("deactivate", {"tacticId": tactic["id"]})
    assert again.status_code == 409 and "v3 is still under canary" in again.json()["message"]
    listing = get("versions")
    assert [v["status"] for v in listing["versions"]] == ["candidate", "active", "retired"]
    assert listing["canary"] == {"candidateId": 3, "activeId": 2, "pairs": 0, "maxPairs": 100, "diff": None,
                                 "ci95": None, "spread": None, "unit": "score", "pairsFor5": None,
                                 "morePairsFor5": None, "outlookNote": None, "positionBias": None,
                                 "incomplete": {"candidateMissing": 0, "activeMissing": 0, "note": None}}
    rolled = post("rollback", {"versionId": 1})
    assert rolled.json()["result"]["message"] == "rolled back to v1: v4 is active"
    assert get("tactics")["tactics"] == []
    refused = post("rollback", {"versionId": 3})
    assert refused.status_code == 409 and refused.json()["message"].startswith(
        "v3 was never active (a withdrawn candidate): rolling back to it would adopt it without a canary")
    forced = post("rollback", {"versionId": 3, "force": True})
    assert forced.json()["result"]["message"] == "rolled back to v3: v5 is active"
    assert post("rollback", {"versionId": "1"}).status_code == 400
    assert post("deactivate", {"tacticId": "nope"}).status_code == 400
    assert post("promote", {"battleId": breakthrough(db, "x"), "direct": "yes"}).status_code == 400


def test_the_version_functions_work_the_same_over_both_transports(store, db):
    """Every version function with its integers, uuids, numerics, arrays and nulls, over psycopg and PostgREST."""
    queries = Queries(store)
    seed_personas(store, 2)
    promoted = queries.promote_breakthrough(breakthrough(db, "Ask before you pitch."))
    assert promoted["version"]["id"] == 2
    started = queries.start_run(trigger=Trigger.CLI, requested_batch_size=None, batch_size=4, cost_cap=Decimal(5),
                                max_concurrent_runs=1, deadline_ms=50_000, simulated=True, default_battle_ms=15_000,
                                base_prompt="Base.", canary_share=0.5)
    assert started["canaryPairs"] == 2 and [b["pairOrder"] for b in started["battles"]] == [1, 2, 1, 2]
    assert sorted(b["versionId"] for b in started["battles"]) == [1, 1, 2, 2]
    assert started["versions"]["2"] == {"id": 2, "basePrompt": "Base.", "tactics": ["Ask before you pitch."]}
    for planned in started["battles"]:
        queries.start_battle(started["run"]["batchId"], planned["persona"]["id"], planned["versionId"])
    db.execute("update sandbox_battles set status = 'completed', ended_at = now(), "
               "referee_score = case when version_id = 2 then 84.5 else 80 end where run_id = %s",
               (started["run"]["batchId"],))
    assert queries.canary_pairs() == {"candidateId": 2, "activeId": 1, "unit": "score", "diffs": [4.5, 4.5],
                                      "skipped": 0, "skippedReason": None, "positionBias": None,
                                      "incomplete": {"candidateMissing": 0, "activeMissing": 0}}
    first, second = (row[0] for row in db.execute("select id from sandbox_battles where version_id = 2 order by id"))
    assert queries.record_pair_verdict(str(first), 1, True) is True
    assert queries.record_pair_verdict(str(first), -1, False) is False, "a verdict is final"
    with pytest.raises(Rejected, match="needs the order the judge read the calls in"):
        queries.record_pair_verdict(str(second), 0, None)  # type: ignore[arg-type]
    assert queries.record_pair_verdict(str(second), 0, False) is True
    judged = queries.canary_pairs("head_to_head")
    assert sorted(judged["diffs"]) == [0, 100] and judged["positionBias"] == {"firstShownWon": 1, "decisive": 1}
    assert queries.record_canary(2, "pending", 2, 4.5, [1.25, 7.75], 100) == {"recorded": True, "decided": False}
    assert queries.versions(100)["canary"]["ci95"] == [1.25, 7.75]
    adopted = queries.record_canary(2, "adopted", 12, 4.5, [1.25, 7.75], 100)
    assert adopted["decided"] and adopted["version"]["status"] == "active" and adopted["parent"]["id"] == 1
    assert queries.record_canary(2, "rolled_back", 12, 4.5, None, 100)["recorded"] is False
    assert [t["tactic_text"] for t in queries.active_tactics()] == ["Ask before you pitch."]
    [tactic] = queries.tactics()["tactics"]
    assert queries.edit_tactic(tactic["id"], "Ask, then listen, before you pitch.", direct=True)["version"]["id"] == 3
    assert queries.deactivate_tactic(queries.tactics()["tactics"][0]["id"])["version"]["status"] == "candidate"
    assert queries.rollback(1)["message"] == "rolled back to v1: v5 is active"
    with pytest.raises(Rejected, match="a canary decision is pending, adopted, rolled_back or inconclusive, not maybe"):
        queries.record_canary(4, "maybe", 1, None, None, 100)


def test_a_batch_of_one_cannot_pair_and_says_so(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 2)
    Queries(psycopg_store).promote_breakthrough(breakthrough(db, "Ask before you pitch."))
    batch = trained_batch(make_settings(TRAINING_BATCH_SIZE=1), psycopg_store, make_llm(make_settings()),
                      trigger="manual")
    assert (batch["battlesStarted"], batch["canary"]["plannedPairs"], batch["canary"]["pairs"]) == (1, 0, 0)
    assert "use a batch of 2 or more" in batch["canary"]["note"]
    assert db.execute("select version_id from sandbox_battles where run_id = %s", (batch["batchId"],)
                      ).fetchone() == (1,)


def test_pairs_the_candidate_leaves_unfinished_are_counted_and_a_lopsided_share_is_flagged(canary_settings,
                                                                                          psycopg_store, db,
                                                                                          database_url):
    assert cli("promote", breakthrough(db, "Ask about the timeline first. [fake-effect:+3]"),
               db_url=database_url).returncode == 0
    settings = canary_settings()
    for _ in range(2):  # 6 pairs
        trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    # As if five of the candidate's calls had failed and one of the active version's.
    db.execute("update sandbox_battles set status = 'failed', referee_score = null, scores = null "
               "where id in (select id from sandbox_battles where version_id = 2 order by id limit 5)")
    db.execute("update sandbox_battles set status = 'failed', referee_score = null, scores = null where id = "
               "(select a.id from sandbox_battles a where a.version_id = 1 and a.pair_order is not null and exists "
               "(select 1 from sandbox_battles c where c.run_id = a.run_id and c.persona_id = a.persona_id "
               "and c.version_id = 2 and c.status = 'completed'))")
    canary_now = versions_json(database_url)["canary"]
    assert canary_now["incomplete"]["candidateMissing"] == 5 and canary_now["incomplete"]["activeMissing"] == 1
    shown = cli("versions", db_url=database_url).stdout
    assert ("pairs left out with one side unfinished: the candidate's in 5, the active version's in 1; the candidate "
            "loses more of its pairs") in shown, shown
    assert Queries(psycopg_store).canary_pairs()["diffs"] == [], "no complete pair is left"
