"""The scout never leaves breakthroughs leased behind: a bad model is refused first, and any error
mid-scan gives every lease back."""
import time

import pytest

from lib.app import make_llm
from lib.config import ConfigError
from lib.runner import run_batch
from lib.scout import scan
from lib.store import Unavailable
from lib.store.psycopg import PsycopgStore
from tests.conftest import seed_personas


def two_breakthroughs(make_settings, psycopg_store, fake_openai):
    fake_openai.referee_score = 99
    seed_personas(psycopg_store, 2)
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    assert run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")["breakthroughs"] == 2


def leased(db) -> int:
    return db.execute("select count(*) from sandbox_battles where scout_lease_until > now()").fetchone()[0]


def test_an_unknown_scout_model_is_refused_before_anything_is_leased(make_settings, psycopg_store, db, fake_openai):
    two_breakthroughs(make_settings, psycopg_store, fake_openai)
    settings = make_settings(SCOUT_MODEL="mystery-scout-1")
    calls = len(fake_openai.log)
    with pytest.raises(ConfigError, match="no price for model 'mystery-scout-1'"):
        scan(settings, psycopg_store, make_llm(settings), deadline=time.monotonic() + 20)
    assert leased(db) == 0 and len(fake_openai.log) == calls


def test_an_unreadable_referee_answer_counts_an_attempt_and_the_scan_moves_on(make_settings, psycopg_store, db,
                                                                                fake_openai):
    two_breakthroughs(make_settings, psycopg_store, fake_openai)
    settings = make_settings()
    for text in ('{"scores": {"opening": 1' + "0" * 4400 + "}}", "[" * 3000 + "]" * 3000):
        # Both tries of the first confirmation: an integer past 4,300 digits, then JSON 3,000 deep.
        fake_openai.fail_next("text", count=2, referee_only=True, text=text)
        result = scan(settings, psycopg_store, make_llm(settings), deadline=time.monotonic() + 20)
        assert result["processed"] >= 1 and len(result["errors"]) == 1, result["errors"]
        assert "malformed referee answer twice" in result["errors"][0]
        assert leased(db) == 0
    attempts = sorted(row[0] for row in db.execute("select scout_attempts from sandbox_battles").fetchall())
    assert sum(attempts) == 2 and attempts[-1] <= 2
    assert db.execute("select count(*) from sandbox_battles where confirm_status = 'confirmed'").fetchone()[0] >= 1


def test_an_unexpected_error_on_one_battle_counts_an_attempt_and_the_next_is_handled(make_settings, psycopg_store,
                                                                                    db, fake_openai):
    two_breakthroughs(make_settings, psycopg_store, fake_openai)
    # A transcript the referee prompt cannot be rendered from: the error no model call expects.
    broken = db.execute("update sandbox_battles set transcript = '[{\"text\": \"no speaker\"}]' where id = "
                        "(select id from sandbox_battles order by ended_at limit 1) returning id").fetchone()[0]
    settings = make_settings()
    results = [scan(settings, psycopg_store, make_llm(settings), deadline=time.monotonic() + 20) for _ in range(6)]
    assert [len(r["breakthroughs"]) for r in results] == [1, 0, 0, 0, 0, 0], "the other battle is not blocked"
    assert "unexpected KeyError" in results[0]["errors"][0] and "attempt 1 of 5" in results[0]["errors"][0]
    assert "attempt 5 of 5, given up" in results[4]["errors"][0] and results[5]["errors"] == []
    assert db.execute("select scout_attempts from sandbox_battles where id = %s", (broken,)).fetchone() == (5,)
    assert leased(db) == 0


class LostStore(PsycopgStore):
    """A database that goes out of reach mid-scan: every write of the scout's results fails."""

    def _attempt(self, fn, args, shape, timeout):
        if fn in ("training_record_confirmation", "training_record_scout_error"):
            raise Unavailable("database unreachable: connection refused")
        return super()._attempt(fn, args, shape, timeout)


def test_the_database_lost_mid_scan_ends_it_and_gives_every_lease_back(make_settings, psycopg_store, db,
                                                                        database_url, fake_openai):
    two_breakthroughs(make_settings, psycopg_store, fake_openai)
    settings, store = make_settings(), LostStore(database_url)
    try:
        with pytest.raises(Unavailable):
            scan(settings, store, make_llm(settings), deadline=time.monotonic() + 20)
    finally:
        store.close()
    assert leased(db) == 0, "both breakthroughs are free for the next scan"
    assert db.execute("select sum(scout_attempts) from sandbox_battles").fetchone()[0] == 0
