"""generate-personas --llm: the persona model's answer is validated before anything is written."""
import pytest

from lib.app import make_llm
from lib.personas import InvalidPersona, generate_with_llm
from tests.conftest import seed_personas


def persona(name, **changes):
    base = {"name": name, "persona_type": "flip_gone_wrong", "description": "A stalled flipper.",
            "situation": "You ran out of money mid-renovation.",
            "characteristics": {"motivation": "high", "price_sensitivity": "low", "trust": "low",
                                "timeline_days": 30, "difficulty": 4},
            "attack_patterns": ["Hides the budget overrun", "Blames the contractor"]}
    return {**base, **changes}


def test_valid_personas_are_upserted_and_invalid_ones_refused_with_reasons(make_settings, psycopg_store, db,
                                                                          fake_openai):
    seed_personas(psycopg_store, 1)
    fake_openai.generated_personas = [
        persona("Flipper Phil"),
        persona("Skeptical Sam"),
        persona("No Patterns Nora", attack_patterns=[]),
        persona("Too Easy Ed", characteristics={"difficulty": 9}),
        persona("Blank Type", persona_type=" "),
    ]
    settings = make_settings(PERSONA_MODEL="gpt-4o-mini")
    results, refused = generate_with_llm(settings, psycopg_store, make_llm(settings), 5)
    assert results == [{"name": "Flipper Phil", "action": "inserted"}]
    assert len(refused) == 4 and any("already exists" in r for r in refused)
    row = db.execute("select source, system_prompt, attack_patterns from sandbox_personas "
                     "where name = 'Flipper Phil'").fetchone()
    assert row[0] == "llm" and "You ran out of money" in row[1] and len(row[2]) == 2
    [request] = fake_openai.log
    assert request["model"] == "gpt-4o-mini" and request["schema"] == "persona_batch"


def test_an_answer_that_is_not_the_schema_writes_nothing(make_settings, psycopg_store, db, fake_openai):
    fake_openai.fail_next("malformed")
    settings = make_settings()
    with pytest.raises(InvalidPersona, match="not the requested JSON"):
        generate_with_llm(settings, psycopg_store, make_llm(settings), 2)
    assert db.execute("select count(*) from sandbox_personas").fetchone()[0] == 0


def test_the_simulator_invents_valid_personas(make_settings, psycopg_store, db):
    settings = make_settings(LLM_PROVIDER="simulated")
    results, refused = generate_with_llm(settings, psycopg_store, make_llm(settings, latency_scale=0), 3)
    assert len(results) == 3 and not refused
