"""The offline simulator: a transport for `LLM` that plays every role, labelled as simulated.

It answers by the caller's `Role` (never by guessing from the prompt): the closer and the seller
speak lines of a phone call, the referee, the scout and the persona writer answer their JSON
schemas. Latency is realistic and token counts are reported like a provider's, so the client
prices them at the model's real price and the cost cap, deadline and retries work as they do
against the API.

**Randomness is per battle.** `fight` passes the battle id as the call's `seed`; every draw of a
battle comes from it. The same battle id replays the same call; two runs (new ids) differ.

**How good a call goes** is one number per battle, its quality `q` (the score the referee gives,
on 0–100):

    q = 98 − 4 · difficulty + skill + form

* `difficulty` is the persona's (1–5, from its characteristics; 3 if absent): a persona of
  difficulty 5 costs 8 points more than one of difficulty 3.
* `skill` comes from the **hidden effects** of the tactics in the closer's system prompt.
  A tactic's effect comes from its text: the text is normalised (lower case, every run of
  characters other than letters and digits made one space, trimmed), hashed with SHA-256, and
  the first 8 bytes, read as a fraction u in [0, 1), give `effect = −6 + 12·u` points. So the
  same tactic always helps or hurts by the same amount, and nobody can tell which from the text.
  Their sum `raw` counts in full up to `SKILL_KNEE` points (so one tactic moves the score by its
  effect); beyond, with **diminishing returns**: `skill = knee + (ceiling − knee)·(1 − e^(−(raw −
  knee)/(ceiling − knee)))`, never more than `SKILL_CEILING`. Adding good tactics cannot push
  every call to 100: the hardest sellers stay hard.
* `form` is how this particular call goes: normal with a spread of 5.5 points, plus 9 points on
  the 20% of calls where closer and seller simply click. It is drawn from the battle's seed.

The seller accepts only when `q` is high (and hangs up when it is low); the referee scores each
criterion around `q`. The closer reads its tactics and sounds like it (weaker lines when its
tactics hurt, each known tactic said in its own words). The transport remembers, per battle,
what the closer's prompt and the seller's characteristics said, so its referee can score the
call the way a real referee would have judged that closer against that seller.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from lib.battle import TACTICS_HEADING
from lib.budget import prompt_token_bound
from lib.llm import Completion, DeadlineExceeded, Message, ResponseFormat, Role
from lib.referee import CRITERIA

EFFECT_RANGE = 6.0
# Diminishing returns: tactics' effects add up in full to the knee, then approach the ceiling.
SKILL_KNEE, SKILL_CEILING = 6.0, 10.0
FORM_SPREAD = 5.5
CLICK_CHANCE, CLICK_BONUS = 0.2, 9.0
CRITERION_SPREAD = 2.5
# A re-score (a fresh call on the same transcript) judges the same call with noise of its own.
RESCORE_SPREAD = 2.0
# The head-to-head judge compares the two calls' qualities with noise of its own, leans towards the
# call it reads first by this many points (a position bias, as real models have), and calls a tie
# when the two look within TIE_MARGIN points.
HEAD_TO_HEAD_SPREAD, POSITION_BIAS, TIE_MARGIN = 3.0, 2.0, 1.0
REMEMBERED_BATTLES = 4096


def normalise(text: str) -> str:
    """Tactic text as compared for effects (and, the same way in lib/sql/functions/versions.sql, for repeats)."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def tactic_effect(text: str) -> float:
    """A tactic's hidden effect on the simulated score, in points from −6 to +6 (see the module doc)."""
    digest = hashlib.sha256(normalise(text).encode()).digest()
    return -EFFECT_RANGE + 2 * EFFECT_RANGE * int.from_bytes(digest[:8], "big") / 2 ** 64


def prompt_tactics(system_prompt: str) -> list[str]:
    """The tactics listed under the closer prompt's tactics heading."""
    _, found, tail = system_prompt.partition(TACTICS_HEADING)
    if not found:
        return []
    return [line[2:].strip() for line in tail.splitlines() if line.startswith("- ")]


def persona_difficulty(system_prompt: str) -> int:
    match = re.search(r"\bdifficulty: (\d+)", system_prompt)
    return max(1, min(5, int(match.group(1)))) if match else 3


def form(seed: str) -> float:
    """How this call goes, apart from who is on it: drawn from the battle's seed."""
    rng = random.Random(f"{seed}|form")
    return rng.gauss(0, FORM_SPREAD) + (CLICK_BONUS if rng.random() < CLICK_CHANCE else 0.0)


def skill_of(tactics: Iterable[str]) -> float:
    """What a closer's tactics add to its calls: their hidden effects, with diminishing returns."""
    raw = sum(tactic_effect(t) for t in tactics)
    if raw <= SKILL_KNEE:
        return raw
    room = SKILL_CEILING - SKILL_KNEE
    return SKILL_KNEE + room * (1 - math.exp(-(raw - SKILL_KNEE) / room))


def expected_score(skill: float, difficulties: list[int], draws: int = 4000) -> float:
    """The closer's true quality: its expected score over these personas, mean of clip(98 −
    4·difficulty + skill + form, 0, 100) over fixed draws of the form (the same for every call, so
    two closers differ by their skill alone)."""
    forms = _forms()[:max(1, draws // max(1, len(difficulties)))]
    return math.fsum(min(100.0, max(0.0, 98 - 4 * d + skill + f)) for d in difficulties or [3] for f in forms) / (
        len(difficulties or [3]) * len(forms))


@functools.cache
def _forms() -> list[float]:
    return [form(f"expected-{n}") for n in range(4000)]


def quality(seed: str, difficulty: int, skill: float) -> float:
    return 98 - 4 * difficulty + skill + form(seed)


class _Battles:
    """What the transport learnt about each battle from its calls: the closer's skill (its prompt's
    tactics) and the seller's difficulty. Bounded: the oldest battles are forgotten."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, seed: str, **facts: float) -> dict[str, Any]:
        with self._lock:
            item = self._items.setdefault(seed, {"skill": 0.0, "difficulty": 3})
            item.update(facts)
            self._items.move_to_end(seed)
            while len(self._items) > REMEMBERED_BATTLES:
                self._items.popitem(last=False)
            return dict(item)


class SimulatedTransport:
    simulated = True

    def __init__(self, latency_scale: float = 1.0):
        self.latency_scale = latency_scale
        self.battles = _Battles()

    def prepare(self) -> None:
        pass

    def complete(self, role: Role, model: str, messages: list[Message], max_tokens: int,
                 response_format: ResponseFormat | None, timeout: float, nonce: int = 0,
                 seed: str | None = None) -> Completion:
        seed = seed or hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        rng = random.Random(f"{seed}|{role}|{len(messages)}")
        latency = rng.uniform(0.15, 0.45) * self.latency_scale
        if latency > timeout:
            time.sleep(timeout)
            raise DeadlineExceeded(f"{model} (simulated) did not answer within {timeout:.1f}s")
        time.sleep(latency)
        if role == Role.REFEREE and (response_format or {}).get("json_schema", {}).get("name") == "head_to_head":
            text = json.dumps(head_to_head_answer(rng, *(self.battles.note(s) | {"seed": s}
                                                          for s in seed.split("|", 1))))
        elif role == Role.REFEREE:
            rescore = random.Random(f"{seed}|rescore|{nonce}") if nonce else None
            text = json.dumps(referee_verdict(rng, seed, messages, self.battles.note(seed), rescore))
        elif role == Role.SCOUT:
            text = json.dumps(_moment(messages))
        elif role == Role.PERSONA_WRITER:
            text = json.dumps(_personas(rng, max_tokens))
        elif role == Role.PROPOSER:
            text = json.dumps(proposer_answer(rng))
        elif role == Role.PERSONA:
            facts = self.battles.note(seed, difficulty=persona_difficulty(messages[0]["content"]))
            text = _seller_line(rng, messages, quality(seed, facts["difficulty"], facts["skill"]))
        elif role == Role.CLOSER:
            tactics = prompt_tactics(messages[0]["content"])
            self.battles.note(seed, skill=skill_of(tactics))
            text = _closer_line(rng, messages, tactics)
        else:
            raise ValueError(f"the simulator has no answer for role {role!r}")
        words = text.split()
        text = " ".join(words[: max(1, int(max_tokens * 0.75))])
        prompt_tokens = prompt_token_bound(messages, response_format) // 4
        cached = (prompt_tokens // 2) if len(messages) > 4 else 0
        completion_tokens = min(max_tokens, max(1, len(text.encode()) // 4))
        return Completion(text, prompt_tokens, cached, completion_tokens)


def referee_verdict(rng: random.Random, seed: str, messages: list[Message], facts: dict[str, Any],
                    rescore: random.Random | None = None) -> dict[str, Any]:
    """The simulated referee, in one place: each criterion scored around the call's quality; a
    re-score (`rescore`, drawn from the call's nonce) adds fresh judge noise to the same call."""
    transcript = messages[-1]["content"]
    agreed = "I accept" in transcript
    hung_up = "(hangs up)" in transcript or "I'm hanging up" in transcript
    centre = quality(seed, facts["difficulty"], facts["skill"])
    if rescore is not None:
        centre += rescore.gauss(0, RESCORE_SPREAD)
    scores = {name: max(0, min(100, round(centre + rng.gauss(0, CRITERION_SPREAD)
                                          + (rescore.gauss(0, RESCORE_SPREAD) if rescore else 0.0))))
              for name in CRITERIA}
    closer_lines = [line[len("CLOSER: "):] for line in transcript.splitlines() if line.startswith("CLOSER: ")]
    if agreed:
        feedback = "Found the real worry, answered it with specifics, and asked for a clear next step."
    elif hung_up:
        feedback = "The seller's main objection was never answered; the call ended on pressure."
    elif centre >= 80:
        feedback = "Good discovery and honest framing; a firmer close would have landed it."
    else:
        feedback = "Polite, but the hardest objection was deflected instead of answered."
    return {"scores": scores, "feedback": feedback,
            "winning_rebuttal": max(closer_lines[1:] or closer_lines or [""], key=len),
            "seller_agreed": agreed}


def head_to_head_answer(rng: random.Random, first: dict[str, Any], second: dict[str, Any]) -> dict[str, str]:
    """The simulated head-to-head: which call, shown first or second, had the higher quality, as a
    judge with noise and a lean towards the first call sees it. Its signal is the hidden tactic
    effects (each call's quality, form included), not the deal's outcome."""
    gap = (quality(first["seed"], first["difficulty"], first["skill"])
           - quality(second["seed"], second["difficulty"], second["skill"])
           + POSITION_BIAS + rng.gauss(0, HEAD_TO_HEAD_SPREAD))
    better = "tie" if abs(gap) < TIE_MARGIN else "A" if gap > 0 else "B"
    return {"better": better, "reason": "The better call answered the real objection with specifics."}


# ---- the call itself ----

AGENT_OPENERS = [
    "Hi, this is Jordan with Keystone Home Buyers. I'm calling about your house; do you have a couple of "
    "minutes?",
    "Good afternoon, it's Jordan from Keystone Home Buyers. We buy houses around here as they are, and I "
    "wondered if you'd ever consider an offer. Is now a bad time?",
    "Hello, my name's Jordan, I'm with Keystone Home Buyers. I won't keep you long: would you be open to "
    "hearing what we could offer for your place?",
]
AGENT_DISCOVERY = [
    "Thanks for hearing me out. Before I say a word about numbers, what's going on with the house right "
    "now, and what would a good outcome look like for you?",
    "Fair enough. Can I ask what's making you think about the house at all, and how soon you'd want "
    "things settled?",
    "I appreciate that. Who else would need to be happy with a sale, and what matters most to you in it?",
]
# What a good agent says to each kind of worry.
AGENT_ANSWERS = {
    "trust": ["That's a fair thing to ask. I can email proof of funds and the name of our title company "
              "tonight, and the contract says we can't assign it to anyone else.",
              "You should be careful. Look us up, call the title company yourself, and nothing happens "
              "until you've checked us out."],
    "price": ["Online estimates assume a finished house. Here's how we got to ours: three sales on your "
              "street, minus the roof and the kitchen, and nothing hidden.",
              "I won't pretend we'll match a listing price. What we offer is certainty: no repairs, no "
              "fees, no showings, and the number doesn't drop after an inspection."],
    "repairs": ["You don't have to fix or clean a thing. We buy it exactly as it is, and that's already in "
                "the number.",
                "We'd only need one quick walkthrough, on a day you pick, and you can leave anything you "
                "don't want."],
    "time": ["We can close in two weeks, or in three months if that suits you better. You pick the date "
             "and we work backwards from it.",
             "There's no deadline from our side. If spring works better, we can sign now and close then."],
    "emotion": ["There's no rush at all. It sounds like this house holds a lot of your life.",
                "I'm sorry. We can go as slowly as you like, and I'm happy to talk it through with your "
                "family too."],
    "legal": ["Have your lawyer read every line. We'll put no-assignment and the earnest money in writing, "
              "exactly as you want them.",
              "Everything I've said goes in the contract, word for word, before you sign anything."],
    "fees": ["There are no fees at all, not now and not at closing. We pay the closing costs.",
             "You don't pay us anything, ever. The money goes into escrow with the title company, not to "
             "us."],
    "family": ["Would it help if we set up a call with them too? I'd rather everyone hears the same thing "
               "at once.",
               "That makes sense. Nothing moves until they're comfortable, and I'm glad to answer their "
               "questions directly."],
    "tenants": ["We buy with the tenant in place. Handling the lease is our job, not yours.",
                "You won't have to evict anyone. We take the house with the tenant and the lease as they "
                "are."],
    "stall": ["Of course, think it over. Can I send you the offer in writing so you have the real number in "
              "front of you?",
              "No pressure at all. What would you need to see to feel sure either way?"],
    "other": ["I hear you, and that concern makes sense. What would need to be true for this to feel fair to "
              "you?",
              "That's reasonable. Let me answer it straight, and tell me if I've missed anything."],
}
AGENT_PUSHY = [
    "Look, this offer won't be around long. I really need an answer today.",
    "Most people in your situation just take the deal. Honestly, it's the best you'll get.",
    "Let's not overthink it. Can I put you down as a yes?",
]
AGENT_CLOSES = [
    "Would it help if I sent the offer in writing tonight, and we picked a closing date that suits you?",
    "If the numbers hold up when you check them, could we schedule the walkthrough for this week?",
]
# Tactics the simulated scout extracts, and how the simulated closer says each when it has it.
TACTIC_LINES = {
    "Put the offer and every promise in writing before the seller asks for it.":
        "I'll put the offer and everything I just said in writing and email it tonight, so you can check "
        "every word.",
    "Let the seller pick the closing date, then build the plan around it.":
        "You pick the closing date. We'll plan everything backwards from whatever suits you.",
    "Show the comparable sales and the repair estimate behind the number.":
        "Here are the three sales on your street and the repair estimate, line by line, so you can see "
        "exactly how we got there.",
    "Offer proof of funds and the title company's name before talking price.":
        "Before we talk price, I'll send you proof of funds and the name of our title company.",
    "Acknowledge the emotion first and slow the call down.":
        "We don't need to decide anything today. Tell me about the house, if you'd like to.",
    "Ask who else must agree and offer to speak with them together.":
        "Who else should hear this? I'm happy to set up one call so everyone gets the same answers.",
    "State plainly that there are no fees, and repeat it at the close.":
        "Just so it's clear: there are no fees. None now, none at closing.",
    "Offer to buy with the tenant in place so the seller does not have to evict.":
        "We'll buy it with the tenant in place. You won't have to evict anyone.",
    "Repeat the seller's last words back before answering an objection.":
        "So you're worried it's all just talk. That's fair; here's what I can prove.",
    "Ask for a small yes, like a walkthrough date, before asking for the sale.":
        "Could we at least pencil in a walkthrough, no strings attached?",
    "Quote the price early and then stop talking.":
        "Our number is one hundred ninety thousand, cash, as is.",
    "Compare the seller's net proceeds against listing with an agent.":
        "With an agent you'd pay six percent and the repairs; side by side, you'd net about the same with "
        "us, months sooner.",
    "Create urgency by saying the offer expires at the end of the day.":
        "I should tell you this offer is only good until the end of the day.",
    "Offer a flexible move-out of up to 30 days after closing.":
        "You can stay up to thirty days after closing, rent-free, while you move.",
}

THEMES = {
    "trust": ("trust", "scam", "proof", "wholesal", "legitimate", "licen", "look the company", "review",
              "horror", "rescue", "cash buyer", "believe", "money"),
    "price": ("price", "offer", "number", "estimate", "value", "worth", "market", "beat", "better deal",
              "cap-rate", "comparable", "arithmetic", "equity"),
    "repairs": ("repair", "condition", "walkthrough", "clean", "fix", "as is"),
    "time": ("fast", "wait", "year", "timeline", "auction", "date", "spring", "remotely", "rush"),
    "emotion": ("memor", "guilt", "feel", "cared", "grief", "tear", "husband", "built", "hard to talk"),
    "legal": ("lawyer", "legal", "contract", "assign", "writing", "earnest", "clause", "attorney"),
    "fees": ("fee ", "fees", "upfront", "catch"),
    "family": ("son ", "sister", "sibling", "ex ", "heir", "niece", "brother", "daughter"),
    "tenants": ("tenant", "evict", "lease"),
    "stall": ("think about", "gossip", "subject", "nothing specific", "not really selling", "call back",
              "just curious", "just wanted"),
}
# What each kind of seller says, in the first person.
SELLER_LINES = {
    "trust": ["How do I know you're not one of those outfits that ties up a contract and sells it to someone "
              "else?",
              "I've had three of you people call this month. Why should I believe a word of this?",
              "Before we go any further, can you show me you actually have the money?"],
    "price": ["The website says my place is worth a lot more than anything you're going to offer.",
              "My number is my number. I'm not giving the house away.",
              "Someone else already told me they'd pay more than that."],
    "repairs": ["The house is fine the way it is. Repairs are your problem, not mine.",
                "Nobody's walking through my house. You can make an offer from the street."],
    "time": ["I'm in no rush. Maybe next spring, maybe not.",
             "Can you really close that fast, or is that just something you people say?"],
    "emotion": ["My husband built that back deck himself. I'm sorry, it's hard to talk about.",
                "It feels wrong, selling it to a stranger over the phone."],
    "legal": ["My brother-in-law is a lawyer, and he says never sign anything that lets you assign the "
              "contract.",
              "If it isn't in writing, it didn't happen. I want everything on paper."],
    "fees": ["Are there any fees? The last company took my money and vanished.",
             "What's the catch? What do I end up paying you?"],
    "family": ["I can't decide anything without my son, and he's not here.",
               "My sister's going to fight whatever I agree to. You know that, right?"],
    "tenants": ["There's a tenant in there who won't pay and won't leave. Is that my problem or yours?"],
    "stall": ["Let me think about it and get back to you.",
              "Honestly, I just wanted to know what it's worth."],
    "other": ["I don't know. Something about this doesn't sit right with me.",
              "Why should I trust you on any of this?",
              "We've been going round in circles. What exactly are you offering?",
              "I need to hear that again, slower. What happens after I say yes?",
              "Every caller says they're different. Convince me."],
}
SELLER_GREETINGS = [
    "Yeah, speaking. Who's this, and how did you get my number?",
    "Hello? ... I'm listening, but make it quick.",
    "Oh. Another house call. Go on, I've got a minute.",
]
SELLER_SOFTENING = [
    "Okay. That actually answers what I was worried about.",
    "Hm. That's more straightforward than the last person who called.",
]
SELLER_ACCEPTS = [
    "All right. You've answered what worried me. I accept your offer.",
    "You know what, that works for me. I accept; let's set the date.",
]
SELLER_HANG_UPS = [
    "No. I'm done with this conversation. I'm hanging up now.",
    "Don't call this number again.",
]


_SELLER_THEME = {line: theme for theme, lines in SELLER_LINES.items() for line in lines}


def themes_of(text: str) -> list[str]:
    """The kinds of worry a line voices: a simulated seller's own line is recognised as such."""
    if text in _SELLER_THEME:
        return [_SELLER_THEME[text]]
    lowered = text.lower()
    return [theme for theme, pattern in _THEME_PATTERNS.items() if pattern.search(lowered)]


# Each keyword starts a word; one ending in a space must also end it ("ex " is not "exact").
_THEME_PATTERNS = {theme: re.compile("|".join(rf"\b{re.escape(word.rstrip())}" + (r"\b" if word.endswith(" ") else "")
                                              for word in words))
                   for theme, words in THEMES.items()}


def _fresh(rng: random.Random, lines: list[str], said: set[str]) -> str:
    """A line not said yet in this call, if there is one: people rarely repeat themselves word for word."""
    unsaid = [line for line in lines if line not in said]
    return rng.choice(unsaid or lines)


def _closer_line(rng: random.Random, messages: list[Message], tactics: list[str]) -> str:
    """What the closer says next: its own tactics when it has a known one that fits, else an answer
    to the seller's last line; closers whose tactics hurt get pushier."""
    said = {m["content"] for m in messages if m["role"] == "assistant"}
    turn = len(said)
    if turn == 0:
        return rng.choice(AGENT_OPENERS)
    if turn == 1:
        return rng.choice(AGENT_DISCOVERY)
    skill = skill_of(tactics)
    if rng.random() < max(0.0, min(0.6, 0.15 - skill * 0.05)):
        return _fresh(rng, AGENT_PUSHY, said)
    known = [TACTIC_LINES[t] for t in tactics if t in TACTIC_LINES and TACTIC_LINES[t] not in said]
    if known and rng.random() < 0.4:
        return rng.choice(known)
    if turn >= 4 and rng.random() < 0.35:
        return _fresh(rng, AGENT_CLOSES, said)
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    theme = next(iter(themes_of(last)), "other")
    return _fresh(rng, AGENT_ANSWERS.get(theme, AGENT_ANSWERS["other"]), said)


def _seller_line(rng: random.Random, messages: list[Message], q: float) -> str:
    """What the homeowner says next: objections in their own voice, drawn from the kinds of pushback
    their attack patterns describe; they accept a good call and hang up on a bad one."""
    system = messages[0]["content"] if messages else ""
    said = {m["content"] for m in messages if m["role"] == "assistant"}
    turn = sum(1 for m in messages if m["role"] == "assistant")
    if turn == 0:
        return rng.choice(SELLER_GREETINGS)
    if turn >= 3 and rng.random() < 0.45 / (1 + math.exp(-(q - 86) / 3)):
        return f"{rng.choice(SELLER_ACCEPTS)} [ACCEPT]"
    if turn >= 2 and q < 70 and rng.random() < 0.2:
        return f"{rng.choice(SELLER_HANG_UPS)} [HANG UP]"
    if turn >= 3 and q >= 84 and rng.random() < 0.3:
        return _fresh(rng, SELLER_SOFTENING, said)
    patterns = [line[2:] for line in system.splitlines() if line.startswith("- ")]
    kinds = sorted({theme for pattern in patterns for theme in themes_of(pattern)}) or ["other"]
    own = [line for kind in kinds for line in SELLER_LINES[kind] if line not in said]
    # A long call runs out of one's own worries; then come the doubts anyone has.
    return _fresh(rng, own or SELLER_LINES["other"] + SELLER_LINES["stall"], said)


def _moment(messages: list[Message]) -> dict[str, str]:
    transcript = messages[-1]["content"]
    closer_lines = [line[len("CLOSER: "):] for line in transcript.splitlines() if line.startswith("CLOSER: ")]
    moment = max(closer_lines[1:] or closer_lines or ["We put our offer in writing."], key=len)
    rng = random.Random(hashlib.sha256(transcript.encode()).hexdigest())
    return {"defining_moment": moment, "tactical_snippet": rng.choice(sorted(TACTIC_LINES))}


_FIRST_NAMES = ["Marge", "Dale", "Priya", "Otis", "Wendell", "Lucia", "Bev", "Gus", "Nadia", "Rex"]
_SITUATIONS = [
    ("flip_gone_wrong", "An investor whose renovation stalled halfway and who hates admitting it.",
     "You bought this house to flip it, ran out of money mid-renovation, and want to save face."),
    ("code_violations", "A homeowner facing city code-violation fines that grow every week.",
     "The city fined you for the roof and the fence; the fines double next month and you feel cornered."),
    ("absentee_owner", "An out-of-state owner of a vacant house they have not seen in years.",
     "You live three states away; the house sits empty and you suspect squatters, but you distrust callers."),
    ("medical_move", "A seller moving into assisted living, guided by a protective niece.",
     "Your health is failing and you must move soon; your niece screens every call and every number."),
]


def _personas(rng: random.Random, max_tokens: int) -> dict[str, Any]:
    count = max(1, max_tokens // 700)
    personas = []
    for index in range(count):
        kind, description, situation = _SITUATIONS[index % len(_SITUATIONS)]
        name = f"{rng.choice(_FIRST_NAMES)} {kind.split('_')[0].title()} {rng.randint(100, 999)}"
        personas.append({
            "name": name, "persona_type": kind, "description": description, "situation": situation,
            "characteristics": {"motivation": "high", "price_sensitivity": "medium", "trust": "low",
                                "timeline_days": rng.choice([30, 60, 90]), "difficulty": rng.randint(2, 5)},
            "attack_patterns": ["Questions every number", "Threatens to hang up",
                                "Claims a neighbour got a better deal"],
        })
    return {"personas": personas}


# The simulated proposer's pool: seven words drawn from these make a tactic; its hidden effect is
# uniform on −6…+6 like any tactic's, so a good and a bad proposal are equally likely, and two
# draws rarely look alike (the near-repeat check would refuse them).
_POOL_WORDS = (
    "ask", "pause", "mirror", "quote", "offer", "confirm", "name", "promise", "listen", "slow", "repeat", "show",
    "write", "email", "invite", "thank", "admit", "compare", "explain", "schedule", "budget", "deadline",
    "neighbour", "garden", "roof", "kitchen", "title", "escrow", "lawyer", "daughter", "tenant", "lease", "permit",
    "inspection", "appraisal", "mortgage", "equity", "memories", "weekend", "evening", "morning", "quietly",
    "early", "twice", "gently", "plainly", "honestly", "briefly", "warmly", "firmly", "calmly", "openly",
    "numbers", "photos", "checklist", "timeline", "guarantee", "deposit", "walkthrough", "questions", "worries",
    "reasons", "options", "choices", "savings", "repairs", "fees", "proof", "references", "reviews", "history",
)


def proposer_answer(rng: random.Random) -> dict[str, str]:
    """The simulated proposer: one new tactic from the balanced pool (it does not propose removals)."""
    words = rng.sample(_POOL_WORDS, 7)
    return {"kind": "add", "tactic": f"{' '.join(words).capitalize()} (variant {rng.randrange(10 ** 6)}).",
            "remove_tactic_id": "", "reasoning": "Simulated: a tactic drawn from the proposer's pool."}
