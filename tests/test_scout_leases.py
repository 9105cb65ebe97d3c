"""The scout never leaves breakthroughs leased behind: a bad model is refused first, and any error
mid-scan gives every lease back."""
import time

import pytest

from lib.app import make_llm
from lib.config import ConfigError
from lib.runner import run_batch
from lib.scout import scan
from lib.store import StoreError
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


def test_an_unexpected_error_mid_scan_gives_every_lease_back(make_settings, psycopg_store, db, fake_openai):
    two_breakthroughs(make_settings, psycopg_store, fake_openai)
    # PostgreSQL text cannot hold NUL: recording the first moment fails, an error the scan does not expect.
    fake_openai.moment = {"defining_moment": "We put it in writing.\u0000", "tactical_snippet": "Write it down."}
    settings = make_settings()
    with pytest.raises(StoreError):
        scan(settings, psycopg_store, make_llm(settings), deadline=time.monotonic() + 20)
    assert leased(db) == 0, "both breakthroughs are free for the next scan"
