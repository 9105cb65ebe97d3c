"""The offline simulator: deterministic, realistic in shape, and labelled as simulated."""
from lib.app import make_llm
from lib.runner import run_batch
from tests.conftest import seed_personas


def transcripts(db, run_id):
    return {name: transcript for name, transcript in db.execute(
        "select p.name, b.transcript from sandbox_battles b join sandbox_personas p on p.id = b.persona_id "
        "where b.run_id = %s", (run_id,)).fetchall()}


def test_same_persona_same_battle_and_runs_are_labelled_simulated(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    settings = make_settings(LLM_PROVIDER="simulated", TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=4)
    llm = make_llm(settings, latency_scale=0.05)
    first = run_batch(settings, psycopg_store, llm, trigger="cli")
    second = run_batch(settings, psycopg_store, llm, trigger="cli")
    assert first["simulated"] is True and second["simulated"] is True
    assert transcripts(db, first["batchId"]) == transcripts(db, second["batchId"])
    assert fake_openai.log == [], "the simulator never calls out"
    rows = db.execute("select prompt_tokens, completion_tokens, cost_usd, referee_score from sandbox_battles"
                      ).fetchall()
    assert all(p > 0 and c > 0 and cost > 0 and score is not None for p, c, cost, score in rows)


def test_simulated_scores_vary_and_some_reach_breakthrough_level(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 14)
    settings = make_settings(LLM_PROVIDER="simulated", TRAINING_BATCH_SIZE=14, MAX_TRAINING_BATCH_SIZE=14,
                             MAX_CONCURRENT_BATTLES=14, BATTLE_MAX_TURNS=10)
    batch = run_batch(settings, psycopg_store, make_llm(settings, latency_scale=0.02), trigger="cli")
    scores = [row[0] for row in db.execute("select referee_score from sandbox_battles").fetchall()]
    assert batch["battlesCompleted"] == 14
    assert len(set(scores)) > 5
    assert max(scores) >= 95 > min(scores)
