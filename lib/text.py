"""Text from outside (models and people) made fit to store and to compare.

PostgreSQL refuses two things any string may carry: U+0000 (neither `text` nor `jsonb` holds
it) and a lone UTF-16 surrogate (not encodable as UTF-8). Model text is cleaned of both where it
enters (`lib.llm`); text from a person is refused with a message naming the problem
(`unstorable`), at the edge, before any write.

A tactic is compared with the active ones for repeats (the 0.6 trigram check in SQL). Tricks
that hide a repeat from that check are undone or refused here, the one place a tactic's text
passes before SQL (`tactic_text`): compatibility forms (fullwidth letters) are folded by NFKC,
invisible format characters (zero-width spaces) are removed, and what would still hide text is
refused: bidi controls (text shown reversed), letters of another script inside Latin words or
passing for Latin words (Cyrillic "о" for "o"), and words spelled out one letter at a time.
"""
from __future__ import annotations

import re
import unicodedata

_NUL = "\x00"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text: a \u0000 escape, or an escaped surrogate that is not half of a pair (a JSON
# escape after an even number of backslashes: an odd one escapes the backslash itself).
_JSON_UNSTORABLE_ESCAPE = re.compile(
    r"(?<!\\)((?:\\\\)*)(?:\\u0000|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})")

# Explicit bidi embeddings, overrides, isolates and marks: they change the order text is shown in.
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters of other scripts that look like Latin ones (a whole word of them passes for Latin).
_LATIN_LOOKALIKES = set("АВЕЅІЈКМНОРСТХУаеѕіјорсуххԁһӏԛԝѵАΒΕΖΗΙΚΜΝΟΡΤΥΧαοριυνκτχ")
# Five or more single letters in a row, one or two non-letters apart: "o f f e r".
_SPELLED_OUT = re.compile(r"(?<!\w)[^\W\d_](?:[^\w\n]{1,2}[^\W\d_](?!\w)){4,}")
_WORD = re.compile(r"\w+")


def clean_model_text(text: str, json_escapes: bool = False) -> str:
    """`text` without NUL and lone surrogates; with `json_escapes`, without their JSON escapes
    too (a JSON answer's strings would decode to them)."""
    text = _LONE_SURROGATE.sub("", text.replace(_NUL, ""))
    return _JSON_UNSTORABLE_ESCAPE.sub(r"\1", text) if json_escapes else text


def unstorable(text: str) -> str | None:
    """What in a person's text the database cannot store, or None."""
    if _NUL in text:
        return "contains a NUL character (U+0000)"
    if _LONE_SURROGATE.search(text):
        return "contains a lone surrogate (not valid Unicode text)"
    return None


class HiddenText(ValueError):
    """A tactic hides its text from the repeat check; the message says how."""


def tactic_text(text: str) -> str:
    """The tactic as compared and stored: NFKC-folded, format characters removed, trimmed.

    Raises `HiddenText` for what folding cannot undo (see the module's doc)."""
    bidi = sorted({f"U+{ord(ch):04X}" for ch in text if ch in _BIDI_CONTROLS})
    if bidi:
        raise HiddenText(f"it contains bidirectional control characters ({', '.join(bidi)}), which show text in "
                         "another order than it is written; write the tactic plainly")
    folded = "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf").strip()
    has_latin = False
    for word in _WORD.findall(folded):
        scripts = {_script(ch) for ch in word if ch.isalpha()}
        has_latin = has_latin or "LATIN" in scripts
        if "LATIN" in scripts and len(scripts) > 1:
            others = ", ".join(sorted(scripts - {"LATIN"})).title()
            raise HiddenText(f"the word {word!r} mixes Latin letters with {others} look-alikes; write it in one script")
    if has_latin:
        for word in _WORD.findall(folded):
            if len(word) > 1 and "LATIN" not in {_script(ch) for ch in word} and all(ch in _LATIN_LOOKALIKES
                                                                                     for ch in word):
                raise HiddenText(f"the word {word!r} is written in letters of another script that pass for Latin "
                                 "ones; write it in Latin letters")
    spelled = _SPELLED_OUT.search(folded)
    if spelled:
        raise HiddenText(f"it spells words out one letter at a time ({spelled.group(0)[:40]!r}); write them as words")
    return folded


def _script(ch: str) -> str:
    """The script of a letter, as its Unicode name starts ("LATIN", "CYRILLIC", "GREEK"…)."""
    return unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]


def checked_tactic(text: str | None) -> str | None:
    """`tactic_text` for a tactic on its way to SQL (where its repeat check runs), refused as SQL's
    refusals are: `Rejected` ("refused: …"). None stays None."""
    from lib.store import Rejected  # not at the top: the LLM client imports this module

    if text is None:
        return None
    try:
        return tactic_text(text)
    except HiddenText as exc:
        raise Rejected(f"refused: {exc}") from None
