"""Simulated runs against PostgreSQL: two runs differ, never call out, and are labelled simulated."""

from lib.app import make_llm
from lib.runner import run_batch
from tests.conftest import seed_personas


def transcripts(db, run_id):
    return {name: transcript for name, transcript in db.execute(
        "select p.name, b.transcript from sandbox_battles b join sandbox_personas p on p.id = b.persona_id "
        "where b.run_id = %s", (run_id,)).fetchall()}


def test_two_runs_differ_never_call_out_and_are_labelled_simulated(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    settings = make_settings(LLM_PROVIDER="simulated", TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=6)
    llm = make_llm(settings, latency_scale=0.05)
    first = run_batch(settings, psycopg_store, llm, trigger="cli")
    second = run_batch(settings, psycopg_store, llm, trigger="cli")
    assert first["simulated"] is True and second["simulated"] is True
    assert transcripts(db, first["batchId"]) != transcripts(db, second["batchId"])
    assert fake_openai.log == [], "the simulator never calls out"
    rows = db.execute("select prompt_tokens, completion_tokens, cost_usd, referee_score from sandbox_battles"
                      ).fetchall()
    assert len(rows) == 4
    assert all(p > 0 and c > 0 and cost > 0 and score is not None for p, c, cost, score in rows)
