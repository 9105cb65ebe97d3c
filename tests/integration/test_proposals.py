"""The proposal queue and the autonomous loop, from outside: the CLI as a user drives it, runs
against the fake OpenAI server (real SDK, real HTTP; its referee scores a closer by the
`[fake-effect:±N]` markers of its tactics) and a real Slack receiver."""
import json

import pytest

from lib.app import make_llm
from lib.llm import MAX_ATTEMPTS
from lib.store import Rejected
from lib.store.proposal_queries import ProposalQueries
from lib.store.queries import Queries
from lib.training import train_once
from tests.conftest import seed_personas
from tests.e2e.test_versions import breakthrough, cli, decisions_in_slack, trained_batch


def confirmed_breakthrough(db, snippet: str, confirm_score: float = 97) -> str:
    battle_id = breakthrough(db, snippet)
    db.execute("update sandbox_battles set confirm_status = 'confirmed', confirm_score = %s where id = %s",
               (confirm_score, battle_id))
    return battle_id


def proposals_json(database_url) -> dict:
    result = cli("proposals", "--json", db_url=database_url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def entered_in_slack(slack) -> list[dict]:
    return [body for body in slack.bodies() if body["text"].startswith(":inbox_tray:")]


@pytest.fixture
def loop_settings(make_settings, slack, fake_openai, psycopg_store):
    fake_openai.referee_noise = 6
    seed_personas(psycopg_store, 6)

    def make(**env):
        return make_settings(TRAINING_BATCH_SIZE=6, MAX_CONCURRENT_BATTLES=1, BATTLE_MAX_TURNS=1,
                             SLACK_WEBHOOK_URL=slack.url + "/services/T0/B0/x", CANARY_MAX_PAIRS=90, **env)

    return make


def test_a_confirmed_breakthrough_is_queued_run_and_adopted_without_a_person(loop_settings, psycopg_store, db,
                                                                             database_url, slack):
    tactic = "Confirm every promise in writing before the seller asks. [fake-effect:+12]"
    battle_id = confirmed_breakthrough(db, tactic)
    settings = loop_settings(AUTO_PROPOSE="breakthroughs")
    first = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert first["canary"] is None and first["errors"] == []
    listing = proposals_json(database_url)
    assert listing["queue"] == [] and listing["canary"]["text"] == tactic
    assert (listing["canary"]["source"], listing["canary"]["battleId"], listing["canary"]["versionId"]) == \
        ("breakthrough", battle_id, 2)
    for _ in range(30):  # +12 at a spread of 8.5 takes the betting rule about 40 pairs
        batch = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
        if batch["canary"] and batch["canary"]["decision"] != "pending":
            break
    assert batch["canary"]["decision"] == "adopted"
    [decided] = proposals_json(database_url)["decided"]
    assert (decided["status"], decided["id"]) == ("adopted", 1) and "adopted by the canary" in decided["outcome"]
    assert [t["tactic_text"] for t in Queries(psycopg_store).active_tactics()] == [tactic]
    # Slack heard once that it entered, and once that it was adopted, over every run.
    [entered] = entered_in_slack(slack)
    assert "Proposal #1 entered the queue (breakthrough)" in entered["text"]
    assert len(decisions_in_slack(slack)) == 1
    assert db.execute("select breakthrough_status from sandbox_battles where id = %s",
                      (battle_id,)).fetchone()[0] == "promoted"


def test_with_auto_propose_off_nothing_enters_by_itself(loop_settings, psycopg_store, db, database_url):
    confirmed_breakthrough(db, "Confirm every promise in writing. [fake-effect:+12]")
    settings = loop_settings()
    assert settings.auto_propose == "off"
    trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert proposals_json(database_url) == {"queue": [], "canary": None, "decided": []}


def test_the_tactic_checks_run_at_proposal_time_and_leave_nothing_behind(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 2)
    queued = cli("propose", "Offer a written guarantee, then let the seller pick the date.", db_url=database_url)
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.strip() == 'proposal #1 queued: add "Offer a written guarantee, then let the seller pick the date."'
    cases = {
        "Offer the written guarantee, then let the seller choose the date.": "repeats proposal #1",
        "   ": "a tactic cannot be empty",
        "x" * 1001: "at most 1000 characters",
    }
    for text, reason in cases.items():
        refused = cli("propose", text, db_url=database_url)
        assert refused.returncode == 1 and reason in refused.stderr, (text[:20], refused.stderr)
    removal = cli("propose", "--remove", "6f1c5c1e-0000-4000-8000-000000000000", db_url=database_url)
    assert removal.returncode == 1 and "is not in the active version v1" in removal.stderr
    assert [p["id"] for p in proposals_json(database_url)["queue"]] == [1]
    assert db.execute("select count(*) from training_proposals").fetchone()[0] == 1


def test_the_queue_order_fast_track_move_edit_and_veto(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 2)
    queries = ProposalQueries(psycopg_store)
    old = queries.propose("add", text="Ask who else must agree before the price.")["proposal"]["id"]
    low = confirmed_breakthrough(db, "Compare the net proceeds against listing.", confirm_score=96)
    high = confirmed_breakthrough(db, "Show the repair estimate behind the number.", confirm_score=99)
    assert queries.queue_breakthroughs() == 2

    def order() -> list[int]:
        return [p["id"] for p in queries.listing()["queue"]]

    # Confirmed score first (highest first), then age.
    assert order() == [3, 2, old]
    assert cli("propose", "Slow the call down when the seller grieves.", "--fast-track",
               db_url=database_url).returncode == 0
    assert order() == [4, 3, 2, old]
    assert queries.move(old, 2)["message"] == f"proposal #{old} is now number 2 in the queue"
    assert order() == [4, old, 3, 2]
    edited = queries.edit(2, "Compare what the seller nets with us and with an agent.")
    assert edited["proposal"]["text"] == "Compare what the seller nets with us and with an agent."
    with pytest.raises(Rejected, match="repeats proposal #1"):
        queries.edit(2, "Ask who else must agree before the price!")
    vetoed = cli("veto", "3", "--reason", "we never quote repair costs", db_url=database_url)
    assert vetoed.returncode == 0 and vetoed.stdout.strip() == "proposal #3 vetoed"
    assert order() == [4, old, 2]
    again = cli("veto", "3", db_url=database_url)
    assert again.returncode == 1 and "proposal #3 is already vetoed" in again.stderr
    [decided] = queries.listing()["decided"]
    assert decided["outcome"] == "vetoed by a person: we never quote repair costs"
    assert {low, high} == {p["battleId"] for p in queries.listing()["queue"] + [decided] if p["battleId"]}


def test_vetoing_the_proposal_under_canary_withdraws_its_candidate(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 2)
    queries = ProposalQueries(psycopg_store)
    queries.propose("add", text="Ask for a small yes before the sale.")
    queries.propose("add", text="State plainly that there are no fees.")
    taken = queries.take_next(12)
    assert taken["taken"]["id"] == 1 and taken["taken"]["status"] == "canary"
    assert queries.take_next(12)["taken"] is None, "one candidate at a time"
    assert cli("veto", "1", db_url=database_url).returncode == 0
    versions = Queries(psycopg_store).versions(100)
    assert versions["canary"] is None and versions["versions"][0]["status"] == "withdrawn"
    assert queries.take_next(12)["taken"]["id"] == 2


def test_at_max_active_tactics_the_weakest_measured_tactic_is_proposed_for_removal_first(psycopg_store, db):
    seed_personas(psycopg_store, 2)
    queries = ProposalQueries(psycopg_store)
    for text, diff in (("Put the offer in writing tonight.", 6.5), ("Let the seller pick the closing date.", 2.1)):
        queries.propose("add", text=text)
        candidate = taken_version(queries, 2)
        Queries(psycopg_store).record_canary(candidate, "adopted", 30, diff, [diff - 2, diff + 2], 100)
    queries.propose("add", text="Offer proof of funds before talking price.")
    taken = queries.take_next(2)["taken"]
    assert (taken["kind"], taken["source"], taken["tacticText"]) == \
        ("remove", "max_tactics", "Let the seller pick the closing date.")
    assert "MAX_ACTIVE_TACTICS (2) reached" in taken["reasoning"]
    assert [p["id"] for p in queries.listing()["queue"]] == [3]


def test_a_proposal_refused_when_taken_is_closed_with_the_reason_and_the_next_runs(psycopg_store, db):
    seed_personas(psycopg_store, 2)
    queries = ProposalQueries(psycopg_store)
    queries.propose("add", text="Put the offer in writing tonight.")
    queries.propose("add", text="Let the seller pick the closing date.")
    Queries(psycopg_store).promote_breakthrough(breakthrough(db, "Put the offer in writing, tonight!"), direct=True)
    taken = queries.take_next(12)
    assert taken["taken"]["id"] == 2
    [refused] = taken["refused"]
    assert refused["id"] == 1 and "repeats the active tactic" in refused["outcome"]


def test_the_proposer_reads_the_worst_battles_and_queues_its_proposal(loop_settings, psycopg_store, db,
                                                                     database_url, fake_openai, slack):
    settings = loop_settings(AUTO_PROPOSE="all", PROPOSER_MODEL="gpt-4o-mini", PROPOSER_EVERY=6,
                             MAX_TRAINING_EXECUTION_TIME_MS=60000)
    trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    [call] = [e for e in fake_openai.log if e["schema"] == "closer_proposal"]
    assert call["model"] == "gpt-4o-mini"
    prompt = call["messages"][1]["content"]
    assert "WORST RECENT CALLS" in prompt and "Referee feedback" in prompt and "CURRENT TACTICS\n(none)" in prompt
    listing = proposals_json(database_url)
    proposal = listing["canary"]
    assert (proposal["source"], proposal["text"]) == ("proposer", fake_openai.proposal["tactic"])
    assert proposal["reasoning"] == fake_openai.proposal["reasoning"]
    assert "Proposal #1 entered the queue (proposer)" in entered_in_slack(slack)[0]["text"]
    assert float(proposal["costUsd"]) > 0
    # Due again once PROPOSER_EVERY more battles completed: a repeat is kept as refused, with the reason.
    fake_openai.proposal = {**fake_openai.proposal, "tactic": fake_openai.proposal["tactic"] + "!"}
    batch = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert any("proposal #2 refused: this tactic repeats proposal #1" in error for error in batch["errors"])
    [refused] = proposals_json(database_url)["decided"]
    assert (refused["status"], refused["source"]) == ("refused", "proposer") and float(refused["costUsd"]) > 0
    fake_openai.log.clear()
    fake_openai.proposal = {"kind": "remove", "tactic": "", "remove_tactic_id": "not-an-id", "reasoning": "x"}
    batch = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    [call] = [e for e in fake_openai.log if e["schema"] == "closer_proposal"]
    assert "repeats proposal #1" in call["messages"][1]["content"], "it reads its refused proposal"
    assert any("not an active tactic's id" in error for error in batch["errors"])


def test_a_proposer_turn_that_records_no_proposal_is_given_back_to_the_next_run(loop_settings, psycopg_store, db,
                                                                               database_url, fake_openai):
    settings = loop_settings(AUTO_PROPOSE="all", PROPOSER_MODEL="gpt-4o-mini", PROPOSER_EVERY=6,
                             MAX_TRAINING_EXECUTION_TIME_MS=60000)

    def proposer_calls() -> int:
        return len([e for e in fake_openai.log if e["schema"] == "closer_proposal"])

    def one_battle_run() -> None:  # far fewer than PROPOSER_EVERY battles
        train_once(settings, psycopg_store, make_llm(settings), trigger="manual", scout="webhook",
                   requested_batch_size=1)

    fake_openai.fail_next("500", count=MAX_ATTEMPTS, schema="closer_proposal")  # the provider fails each attempt
    failed = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert any(e.startswith("Proposer failed: gpt-4o-mini: HTTP 500") for e in failed["errors"]), failed["errors"]
    assert proposer_calls() == MAX_ATTEMPTS and proposals_json(database_url)["canary"] is None
    assert db.execute("select proposer_turn_at from training_control").fetchone()[0] is None, "given back"
    one_battle_run()
    assert proposer_calls() == MAX_ATTEMPTS + 1
    assert proposals_json(database_url)["canary"]["source"] == "proposer"
    one_battle_run()  # a turn that recorded a proposal is spent
    assert proposer_calls() == MAX_ATTEMPTS + 1
    # Paid for, but not the requested JSON: the turn is spent (a model that keeps answering badly
    # costs one call per PROPOSER_EVERY battles, not one a run).
    fake_openai.fail_next("malformed", schema="closer_proposal")
    spent = trained_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert any("not the requested JSON" in e and "the next turn comes after PROPOSER_EVERY battles" in e
               for e in spent["errors"]), spent["errors"]
    assert db.execute("select recorded from training_spends where purpose = 'proposer' order by started_at desc "
                      "limit 1").fetchone()[0] > 0
    assert proposer_calls() == MAX_ATTEMPTS + 2
    one_battle_run()
    assert proposer_calls() == MAX_ATTEMPTS + 2, "not given back"
    assert db.execute("select proposer_turn_at from training_control").fetchone()[0] is not None


def test_a_turn_is_given_back_once_and_never_over_a_newer_claim(store, db):
    seed_personas(store, 2)
    queries = ProposalQueries(store)
    for snippet in ("a", "b"):
        breakthrough(db, snippet)  # two completed battles
    first = queries.proposer_turn(2, 5)
    assert first is not None and first["since"] is None and first["battles"] == 2
    assert queries.proposer_turn(2, 5) is None, "parallel runs take one turn"
    assert queries.give_back_proposer_turn(first) is True
    assert queries.give_back_proposer_turn(first) is False, "given back once"
    second = queries.proposer_turn(2, 5)
    assert second is not None and second["battles"] == 2, "the next run takes it, with the same battles"
    assert queries.give_back_proposer_turn(first) is False, "a stale claim never undoes a newer one"
    assert queries.proposer_turn(2, 5) is None
    breakthrough(db, "c")
    breakthrough(db, "d")
    third = queries.proposer_turn(2, 5)
    assert third is not None and third["since"] == second["claimedAt"]
    assert queries.give_back_proposer_turn(third) is True
    assert queries.proposer_turn(2, 5)["battles"] == 2, "back to the turn before: only the battles since it"


def test_the_queue_works_the_same_over_both_transports(store, db):
    seed_personas(store, 2)
    queries = ProposalQueries(store)
    queued = queries.propose("add", text="Ask for a small yes before the sale.", reasoning="why not")
    assert queued["proposal"]["status"] == "queued" and queued["proposal"]["reasoning"] == "why not"
    with pytest.raises(Rejected, match="repeats proposal #1"):
        queries.propose("add", text="Ask for a small yes before the sale!")
    assert queries.fast_track(1)["proposal"]["fastTracked"] is True
    assert [p["status"] for p in queries.claim_announcements()] == ["queued"]
    assert queries.claim_announcements() == []
    assert queries.take_next(12)["taken"]["status"] == "canary"
    assert queries.proposer_turn(1000, 5) is None
    assert queries.quality(24)["points"] == [] and queries.quality(24)["decisions"] == []
    assert queries.veto(1, "no")["proposal"]["status"] == "vetoed"
    assert queries.listing()["decided"][0]["outcome"] == "vetoed by a person: no"


def test_edit_and_remove_proposals_become_candidates_with_the_tactic_changed_in_place(psycopg_store, db,
                                                                                   database_url):
    seed_personas(psycopg_store, 2)
    queries = ProposalQueries(psycopg_store)
    for text in ("Put the offer in writing tonight.", "Let the seller pick the closing date."):
        queries.propose("add", text=text)
        candidate = taken_version(queries, 12)
        Queries(psycopg_store).record_canary(candidate, "adopted", 30, 5.0, [1.0, 9.0], 100)
    first, second = [t["id"] for t in Queries(psycopg_store).active_tactics()]
    edited = cli("propose", "--edit", str(first), "Email the written offer tonight, with every promise in it.",
                 db_url=database_url)
    assert edited.returncode == 0, edited.stderr
    assert cli("propose", "--remove", str(second), "--reason", "it never helped", db_url=database_url).returncode == 0
    queries.take_next(12)
    assert [t["tactic_text"] for t in candidate_tactics(db)] == [
        "Email the written offer tonight, with every promise in it.", "Let the seller pick the closing date."]
    Queries(psycopg_store).record_canary(candidate_id(db), "rolled_back", 30, -4.0, [-8.0, -1.0], 100)
    taken = queries.take_next(12)["taken"]
    assert (taken["kind"], taken["reasoning"]) == ("remove", "it never helped")
    assert [t["tactic_text"] for t in candidate_tactics(db)] == ["Put the offer in writing tonight."]
    listing = queries.listing()
    assert listing["decided"][0]["status"] == "rolled_back" and listing["canary"]["id"] == taken["id"]


def test_a_changed_base_prompt_keeps_the_proposal_with_its_restarted_candidate(psycopg_store, db):
    seed_personas(psycopg_store, 2)
    queries = ProposalQueries(psycopg_store)
    db.execute("select training_record_base_prompt('The first base prompt.')")
    queries.propose("add", text="Put the offer in writing tonight.")
    before = queries.take_next(12)["taken"]["versionId"]
    db.execute("select training_record_base_prompt('A second base prompt.')")
    after = candidate_id(db)
    assert after != before and queries.listing()["canary"]["versionId"] == after
    Queries(psycopg_store).record_canary(after, "adopted", 30, 5.0, [1.0, 9.0], 100)
    assert queries.listing()["decided"][0]["status"] == "adopted"


def candidate_id(db) -> int:
    return db.execute("select id from training_versions where status = 'candidate'").fetchone()[0]


def candidate_tactics(db) -> list[dict]:
    return [{"tactic_text": row[0]} for row in db.execute(
        "select t.tactic_text from training_versions v, unnest(v.tactic_ids) with ordinality u(id, pos) "
        "join sandbox_tactics t on t.id = u.id where v.status = 'candidate' order by u.pos")]


def taken_version(queries: ProposalQueries, max_tactics: int) -> int:
    """The candidate version the next proposal became."""
    taken = queries.take_next(max_tactics)["taken"]
    assert taken is not None and taken["versionId"] is not None, "a proposal was queued"
    return taken["versionId"]
