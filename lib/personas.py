"""The built-in catalog of seller personas the closer trains against.

Each persona is a homeowner the closer (an acquisitions agent for a home-buying company) must
bring to a fair, signed agreement. `python -m lib generate-personas` upserts them by name:
editing an entry here updates its row; personas added by hand are never touched.
"""
from __future__ import annotations

import json

from lib.config import Settings
from lib.deadline import Deadline
from lib.llm import LLM, CallContext, Role
from lib.spending import spend
from lib.store import JSONObject, Store
from lib.store.queries import Queries, UpsertResult

_COMMON_RULES = (
    "Stay in character as the homeowner for the whole conversation; never mention being an AI. "
    "Answer in one to four sentences, as people speak on the phone. Only agree to sell when the "
    "caller has truly answered your concerns; if you agree, say clearly that you accept."
)


def _persona(name: str, persona_type: str, description: str, situation: str, characteristics: JSONObject,
             attack_patterns: list[str]) -> JSONObject:
    return {
        "name": name,
        "persona_type": persona_type,
        "description": description,
        "system_prompt": f"You are {name}, a homeowner. {situation} {_COMMON_RULES}",
        "characteristics": characteristics,
        "attack_patterns": attack_patterns,
        "source": "catalog",
    }


CATALOG = [
    _persona(
        "Skeptical Sam", "skeptic",
        "Assumes every cash buyer is a scam and demands proof at every step.",
        "You inherited distrust from a neighbour who was burned by a wholesaler. You question "
        "the caller's company, licence, reviews and proof of funds before discussing price.",
        {"motivation": "moderate", "price_sensitivity": "medium", "trust": "very low",
         "timeline_days": 90, "difficulty": 4},
        ["Demands proof of funds before talking numbers",
         "Asks why a legitimate buyer would pay cash below market",
         "Threatens to look the company up and hang up",
         "Repeats horror stories about wholesalers assigning contracts"],
    ),
    _persona(
        "Price Anchor Patricia", "price_anchorer",
        "Opens with a number far above market and refuses to move off it.",
        "You saw a Zestimate of $420,000 and consider it the floor, although the house needs a "
        "roof and a kitchen. You keep returning to your number.",
        {"motivation": "low", "price_sensitivity": "very high", "trust": "medium",
         "timeline_days": 180, "difficulty": 4},
        ["Anchors on an online estimate far above the repaired value",
         "Answers every offer with her original number",
         "Claims another buyer already offered more",
         "Dismisses repair costs as the buyer's problem"],
    ),
    _persona(
        "Grieving Grace", "emotional_seller",
        "Selling the family home after her husband's death; overwhelmed and tearful.",
        "Your husband of 40 years died four months ago and the house holds every memory. You "
        "need to move closer to your daughter but feel guilty selling.",
        {"motivation": "high", "price_sensitivity": "low", "trust": "medium",
         "timeline_days": 60, "difficulty": 3},
        ["Drifts into memories and away from the decision",
         "Feels guilty and asks to wait another year",
         "Reacts badly to anything that sounds pushy or transactional",
         "Needs to feel the home will be cared for"],
    ),
    _persona(
        "Lawyer-Backed Larry", "lawyer_backed",
        "Has an attorney review every word and uses legal threats as leverage.",
        "Your attorney brother-in-law told you to question every clause: inspection periods, "
        "assignment rights, earnest money. You quote him often.",
        {"motivation": "moderate", "price_sensitivity": "medium", "trust": "low",
         "timeline_days": 120, "difficulty": 5},
        ["Demands the contract bar any assignment",
         "Insists on non-refundable earnest money from day one",
         "Threatens legal action over vague promises",
         "Asks for every verbal commitment in writing"],
    ),
    _persona(
        "Tire-Kicker Tom", "tire_kicker",
        "Just curious what the house is worth; no intention of selling soon.",
        "You are not really selling. You want a free valuation to brag about and to refinance. "
        "You are friendly but evasive about any commitment.",
        {"motivation": "very low", "price_sensitivity": "medium", "trust": "medium",
         "timeline_days": 365, "difficulty": 4},
        ["Asks for a number and then says he will think about it",
         "Changes the subject to the neighbourhood and market gossip",
         "Claims he might list with an agent next spring",
         "Agrees to nothing specific"],
    ),
    _persona(
        "Hostile Heir Hank", "hostile_heir",
        "Co-inherited a house with siblings he does not speak to; angry and suspicious.",
        "You and two estranged siblings inherited your mother's house. You suspect everyone, "
        "including the caller, of siding with your sister.",
        {"motivation": "high", "price_sensitivity": "high", "trust": "very low",
         "timeline_days": 45, "difficulty": 5},
        ["Turns every question into a grievance about his siblings",
         "Accuses the caller of already talking to his sister",
         "Refuses to share information about the other heirs",
         "Swears and threatens to end the call"],
    ),
    _persona(
        "Behind-on-Payments Brenda", "pre_foreclosure",
        "Three months behind on the mortgage, ashamed, and afraid of being scammed again.",
        "You received a notice of default. A 'foreclosure rescue' company took your fee last "
        "year and vanished. You need to sell fast but fear another trick.",
        {"motivation": "very high", "price_sensitivity": "medium", "trust": "very low",
         "timeline_days": 30, "difficulty": 4},
        ["Hides how far behind she really is",
         "Asks if there are any upfront fees",
         "Panics about the auction date and goes silent",
         "Wants a guarantee the sale closes before the auction"],
    ),
    _persona(
        "Tired Landlord Leo", "tired_landlord",
        "Owns a rental with bad tenants; wants out but hates losing equity.",
        "Your tenant pays late and damaged the unit. You are exhausted but you calculate "
        "everything against your original investment.",
        {"motivation": "high", "price_sensitivity": "high", "trust": "medium",
         "timeline_days": 60, "difficulty": 3},
        ["Insists the buyer handle the tenant and the eviction",
         "Runs cap-rate arithmetic to argue the offer is too low",
         "Wants seller financing terms instead of cash",
         "Threatens to keep renting out of spite"],
    ),
    _persona(
        "Divorcing Diane", "divorce",
        "Must sell a shared home as part of a divorce; the ex must also sign.",
        "Your divorce decree requires the sale. Your ex-husband stalls every decision and you "
        "want it over, but you will not let him get a better deal than you.",
        {"motivation": "high", "price_sensitivity": "medium", "trust": "medium",
         "timeline_days": 60, "difficulty": 4},
        ["Vents about her ex instead of answering",
         "Says her ex will never agree to any number",
         "Demands the split of proceeds be guaranteed",
         "Wants to close before the court date"],
    ),
    _persona(
        "Analytical Arjun", "analytical",
        "An engineer who wants comps, repair estimates and the buyer's formula.",
        "You built a spreadsheet of every sale on your street. You want the caller's exact "
        "formula (after-repair value, repairs, margin) and will audit each number.",
        {"motivation": "moderate", "price_sensitivity": "high", "trust": "medium",
         "timeline_days": 90, "difficulty": 4},
        ["Asks for the after-repair value and the comparable sales behind it",
         "Challenges each repair estimate line by line",
         "Asks what margin the company makes",
         "Rejects vague answers as evasive"],
    ),
    _persona(
        "Relocating Rita", "relocation",
        "Starts a new job across the country in three weeks; time matters more than price.",
        "Your new employer expects you in Denver in three weeks. You worry about carrying two "
        "mortgages, but you also fear leaving money on the table.",
        {"motivation": "very high", "price_sensitivity": "low", "trust": "medium",
         "timeline_days": 21, "difficulty": 2},
        ["Asks how fast the company can really close",
         "Worries about handling the sale remotely",
         "Asks whether she can leave furniture behind",
         "Compares the offer with a relocation package buyout"],
    ),
    _persona(
        "Hoarder Harold", "distressed_property",
        "Lives in a badly cluttered house; embarrassed and defensive about its condition.",
        "Your house is packed with decades of belongings and needs major repairs. You refuse "
        "to let anyone inside and bristle at any mention of the condition.",
        {"motivation": "moderate", "price_sensitivity": "medium", "trust": "low",
         "timeline_days": 120, "difficulty": 4},
        ["Refuses a walkthrough",
         "Takes offence at any mention of repairs or clean-out",
         "Insists the house is worth full market value as is",
         "Asks who will deal with all his belongings"],
    ),
    _persona(
        "Retiring Ruth", "downsizer",
        "A retiree downsizing to a condo; polite, cautious, and leaning on her son's advice.",
        "You are 78 and moving to a smaller place. Your son handles money matters and you "
        "defer to him, but you want to feel respected in the decision.",
        {"motivation": "moderate", "price_sensitivity": "medium", "trust": "medium",
         "timeline_days": 90, "difficulty": 3},
        ["Defers every decision to her absent son",
         "Asks the caller to call back when her son is present",
         "Worries about being taken advantage of because of her age",
         "Needs flexibility on the move-out date"],
    ),
    _persona(
        "Competing-Offers Carlos", "shopper",
        "Has called five cash buyers and plays them against each other.",
        "You have quotes from several investors and a listing agent. You reveal little and ask "
        "each caller to beat the best offer without telling them what it is.",
        {"motivation": "moderate", "price_sensitivity": "very high", "trust": "medium",
         "timeline_days": 60, "difficulty": 5},
        ["Says another buyer beat the offer by ten thousand",
         "Refuses to reveal the competing terms",
         "Demands a best-and-final on the spot",
         "Threatens to list with an agent if the price is not matched"],
    ),
]


def upsert_catalog(store: Store, personas: list[JSONObject] | None = None) -> list[UpsertResult]:
    """Upserts personas by name in one transaction; returns `[{name, action}]`."""
    return Queries(store).upsert_personas(CATALOG if personas is None else personas)


GENERATION_MAX_TOKENS_PER_PERSONA = 700
GENERATION_TIMEOUT_S = 120
_PERSONA_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "persona_type", "description", "situation", "characteristics", "attack_patterns"],
    "properties": {
        "name": {"type": "string"},
        "persona_type": {"type": "string"},
        "description": {"type": "string"},
        "situation": {"type": "string"},
        "characteristics": {
            "type": "object",
            "additionalProperties": False,
            "required": ["motivation", "price_sensitivity", "trust", "timeline_days", "difficulty"],
            "properties": {
                "motivation": {"type": "string"},
                "price_sensitivity": {"type": "string"},
                "trust": {"type": "string"},
                "timeline_days": {"type": "integer"},
                "difficulty": {"type": "integer"},
            },
        },
        "attack_patterns": {"type": "array", "items": {"type": "string"}},
    },
}
GENERATION_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "persona_batch", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["personas"],
        "properties": {"personas": {"type": "array", "items": _PERSONA_SCHEMA}}}},
}


class InvalidPersona(ValueError):
    pass


def validate_generated(item: object, taken: set[str]) -> JSONObject:
    """A generated persona as a catalog entry, or `InvalidPersona` saying what is wrong."""
    if not isinstance(item, dict):
        raise InvalidPersona("not an object")
    for key in ("name", "persona_type", "description", "situation"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise InvalidPersona(f"{key!r} is missing or empty")
    name = item["name"].strip()[:200]
    if name.lower() in taken:
        raise InvalidPersona(f"{name!r} already exists")
    patterns = item.get("attack_patterns")
    if not isinstance(patterns, list) or not 2 <= len(patterns) <= 8 or \
            not all(isinstance(p, str) and p.strip() for p in patterns):
        raise InvalidPersona(f"{name!r}: attack_patterns must be 2 to 8 non-empty strings")
    traits = item.get("characteristics")
    if not isinstance(traits, dict):
        raise InvalidPersona(f"{name!r}: characteristics must be an object")
    difficulty = traits.get("difficulty")
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 1 <= difficulty <= 5:
        raise InvalidPersona(f"{name!r}: difficulty must be an integer from 1 to 5")
    entry = _persona(name, item["persona_type"].strip()[:100], item["description"].strip(),
                     item["situation"].strip(), traits, [p.strip() for p in patterns])
    entry["source"] = "llm"
    return entry


def generate_with_llm(settings: Settings, store: Store, llm: LLM, count: int) -> tuple[list[UpsertResult], list[str]]:
    """Asks PERSONA_MODEL for `count` new personas, validates and upserts them.

    Returns the upsert results and the reasons any generated persona was refused. The call is
    bounded by KILL_SWITCH_THRESHOLD_USD like any batch, and takes its block of the daily and monthly
    budget (`lib.spending`; `BudgetReached` when it is spent).
    """
    taken = {p["name"].lower() for p in CATALOG} | {name.lower() for name in Queries(store).persona_names()}
    deadline = Deadline.after(GENERATION_TIMEOUT_S).at
    prompt = (f"Invent {count} distinct homeowners who might sell their house to a cash home-buying company, "
              "each a hard but realistic sales conversation for the buyer's agent. Avoid these existing "
              f"personas: {', '.join(sorted(taken))}. For each give a memorable two-word name, a snake_case "
              "persona_type, a one-sentence description, the situation in the second person ('You …'), "
              "characteristics (difficulty 1 to 5) and 3 to 5 attack patterns: the objections and tactics "
              "they use on the phone.")
    with spend(settings, store, "personas", settings.cost_cap_usd, deadline, llm.simulated) as block:
        reply = llm.chat(CallContext.for_cap(block, deadline), Role.PERSONA_WRITER, settings.persona_model,
                         [{"role": "user", "content": prompt}], GENERATION_MAX_TOKENS_PER_PERSONA * count,
                         GENERATION_FORMAT)
    try:
        generated = json.loads(reply.text)["personas"]
    except (ValueError, KeyError, TypeError):
        raise InvalidPersona("the persona model's answer was not the requested JSON") from None
    valid: list[JSONObject] = []
    refused: list[str] = []
    for item in generated[:count]:
        try:
            entry = validate_generated(item, taken)
        except InvalidPersona as exc:
            refused.append(str(exc))
            continue
        taken.add(entry["name"].lower())
        valid.append(entry)
    return (upsert_catalog(store, valid) if valid else []), refused
