"""The offline simulator: per-battle randomness, personas of different difficulty, tactics with
hidden effects, a call that reads like a call, and runs labelled as simulated."""
import statistics
import time
from decimal import Decimal

from lib.battle import BattleSetup, BattleState, closer_system_prompt, fight
from lib.config import Settings
from lib.llm import LLM, CallContext
from lib.personas import CATALOG
from lib.simulator import SimulatedTransport, normalise, tactic_effect

BASE = Settings.from_env({}).closer_prompt_path.read_text()  # the bundled prompt
MODELS = BattleSetup("gpt-4o", "gpt-4o-mini", "gpt-4o", 10, 300)


def battle(battle_id: str, persona: dict, tactics=(), llm=None) -> BattleState:
    llm = llm or LLM(SimulatedTransport(latency_scale=0), {})
    state = BattleState(battle_id, persona)
    prompt = closer_system_prompt(BASE, [{"tactic_text": t} for t in tactics])
    fight(llm, CallContext.for_cap(Decimal(100), time.monotonic() + 60), MODELS, prompt, state)
    return state


def test_a_battle_id_replays_its_battle_and_another_id_gives_another_battle():
    first = battle("battle-7", CATALOG[0])
    again = battle("battle-7", CATALOG[0], llm=LLM(SimulatedTransport(latency_scale=0), {}))
    assert (first.transcript, first.verdict) == (again.transcript, again.verdict)
    others = [battle(f"battle-{n}", CATALOG[0]) for n in range(8)]
    assert len({tuple(line["text"] for line in b.transcript) for b in others}) >= 6
    assert len({b.verdict.total for b in others}) >= 6


def test_scores_vary_some_reach_breakthrough_level_and_harder_personas_score_lower():
    by_difficulty: dict[int, list[float]] = {}
    for index in range(240):
        persona = CATALOG[index % len(CATALOG)]
        score = float(battle(f"spread-{index}", persona).verdict.total)
        by_difficulty.setdefault(persona["characteristics"]["difficulty"], []).append(score)
    scores = [s for group in by_difficulty.values() for s in group]
    assert 0.02 <= sum(s >= 95 for s in scores) / len(scores) <= 0.25, "some breakthroughs, not most"
    assert statistics.stdev(scores) > 4
    means = {d: statistics.mean(group) for d, group in by_difficulty.items()}
    assert means[2] > means[3] > means[4] > means[5], means


def test_a_tactic_has_a_hidden_effect_from_its_text_that_moves_the_score_by_that_much():
    texts = [f"Tactic {n}: ask one more question." for n in range(200)]
    effects = [tactic_effect(t) for t in texts]
    assert all(-6 <= e <= 6 for e in effects) and min(effects) < -4 and max(effects) > 4
    assert tactic_effect("Offer a WRITTEN guarantee!") == tactic_effect("offer a written   guarantee")
    assert normalise("  Offer, a -- WRITTEN guarantee!") == "offer a written guarantee"
    strong = max(texts, key=tactic_effect)
    weak = min(texts, key=tactic_effect)
    for tactic in (strong, weak):
        diffs = [float(battle(f"eff-{n}-b", CATALOG[n % 14], (tactic,)).verdict.total)
                 - float(battle(f"eff-{n}-a", CATALOG[n % 14]).verdict.total) for n in range(120)]
        # 120 pairs with a spread of about 9.5: the standard error is under 1 point.
        assert abs(statistics.mean(diffs) - tactic_effect(tactic)) < 2.5, (tactic_effect(tactic), statistics.mean(diffs))


def test_the_call_reads_like_a_phone_call():
    for index, persona in enumerate(CATALOG):
        state = battle(f"call-{index}", persona)
        seller = [line["text"] for line in state.transcript if line["speaker"] == "persona"]
        closer = [line["text"] for line in state.transcript if line["speaker"] == "closer"]
        assert "Keystone Home Buyers" in closer[0]
        for line in seller:
            assert not any(pattern.lower() in line.lower() for pattern in persona["attack_patterns"]), line
            assert "Why should I trust you on that?" not in line
        assert len(set(seller)) == len(seller), "nobody repeats a line word for word"


def test_the_closer_uses_its_tactics_and_the_scout_extracts_varied_ones():
    from lib.simulator import TACTIC_LINES

    tactic = "Offer to buy with the tenant in place so the seller does not have to evict."
    said = [line["text"] for n in range(12)
            for line in battle(f"uses-{n}", CATALOG[7], (tactic,)).transcript if line["speaker"] == "closer"]
    assert TACTIC_LINES[tactic] in said
    llm = LLM(SimulatedTransport(latency_scale=0), {})
    from lib.scout import extract_moment

    snippets = {extract_moment(llm, CallContext.for_cap(Decimal(1), time.monotonic() + 10), "gpt-4o-mini",
                               {"transcript": battle(f"scout-{n}", CATALOG[n]).transcript})[1] for n in range(10)}
    assert len(snippets) >= 4 and snippets <= set(TACTIC_LINES)


def test_good_tactics_have_diminishing_returns_and_cannot_push_every_call_to_100():
    import itertools

    from lib.simulator import SKILL_CEILING, SKILL_KNEE, skill_of

    good = sorted((f"Tactic {n}: ask one more question." for n in range(400)), key=tactic_effect)[-30:]
    assert skill_of(good[-1:]) == tactic_effect(good[-1]) <= SKILL_KNEE, "one tactic moves the score by its effect"
    sums = [skill_of(good[:k]) for k in range(1, 31)]
    assert all(b >= a for a, b in itertools.pairwise(sums)) and sums[-1] <= SKILL_CEILING
    assert sum(tactic_effect(t) for t in good) > 100 > SKILL_CEILING
    assert sums[-1] - sums[-2] < 0.1 < tactic_effect(good[-2]), "each further good tactic adds less"
    scores = [float(battle(f"ceiling-{n}", CATALOG[n % 14], tuple(good)).verdict.total) for n in range(60)]
    assert sum(s >= 100 for s in scores) < len(scores) / 2, "the hardest sellers stay hard"


def test_the_simulated_proposer_draws_good_and_bad_tactics_equally_often():
    import random as stdlib_random

    from lib.simulator import proposer_answer

    rng = stdlib_random.Random(5)
    tactics = [proposer_answer(rng)["tactic"] for _ in range(2000)]
    assert len(set(tactics)) == len(tactics)
    good = sum(tactic_effect(t) > 0 for t in tactics) / len(tactics)
    assert 0.46 < good < 0.54, good
    assert sum(tactic_effect(t) <= -2 for t in tactics) / len(tactics) > 0.25
