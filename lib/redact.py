"""One redaction step for text that came from a driver or a provider.

A driver's error can quote what it was given: libpq quotes a malformed connection URI, password
and all; a provider may echo a header or a URL. Every such text passes `redact` before it reaches
a response, a log line or the CLI's output: the typed errors of the store (`StoreError`), the LLM
client (`LLMError`) and Slack (`SlackError`) redact their own messages, and `lib.http`, `lib.log`
and `lib.cli` redact again what they print, for anything else.

Two kinds of credentials are removed:

- by shape: the password in a URL (`scheme://user:password@host`), `key=value` pairs of a DSN or
  a query string (`password=…`, `apikey=…`, `token=…`), `Bearer`/`Basic` credentials, and the
  shapes of known keys (OpenAI `sk-…`, Supabase `sb_secret_…`, JWTs, Slack webhook paths);
- by value: the secrets this process was configured with (`remember`, called by `lib.config`),
  which also catches a fragment a driver quotes on its own (libpq quotes a password with a space).

Standard library only: `lib.log` and the HTTP plumbing import it.
"""
from __future__ import annotations

import re
import threading
from urllib.parse import unquote

MASK = "***"
# Shorter values are not remembered: masking them would mangle ordinary words.
MIN_REMEMBERED = 6

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s\"']*:)[^\s\"']*@")
_PAIR = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|sslpassword|apikey|api_key|api-key|secret|client_secret|token|"
    r"access_token|refresh_token|service_role_key|x-vercel-protection-bypass)\b[\"']?\s*[=:]\s*)"
    r"(?:'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)",
    re.IGNORECASE)
_AUTH = re.compile(r"\b(?P<head>(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)
_KEYS = re.compile(
    r"\bsk-[A-Za-z0-9_-]{8,}"                                # OpenAI
    r"|\bsb_(?:secret|publishable)_[A-Za-z0-9_-]{6,}"        # Supabase
    r"|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT
    r"|\bxox[abposr]-[A-Za-z0-9-]{6,}")                      # Slack tokens
_SLACK_HOOK = re.compile(r"(?P<head>hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+")

_remembered: set[str] = set()
_lock = threading.Lock()


def remember(*values: str | None) -> None:
    """Adds configured secrets (and their percent-decoded forms) to what `redact` masks by value."""
    found = {form for value in values if value for form in (value, unquote(value)) if len(form) >= MIN_REMEMBERED}
    if found - _remembered:
        with _lock:
            _remembered.update(found)


def url_password(url: str | None) -> str | None:
    """The password of `scheme://user:password@host…`, even when the rest of the URL is malformed."""
    if not url or "://" not in url or "@" not in url:
        return None
    userinfo = url.split("://", 1)[1].rpartition("@")[0]
    return userinfo.partition(":")[2] or None


def redact(text: object) -> str:
    """`text` without credentials; None becomes ""."""
    if text is None:
        return ""
    text = str(text)
    with _lock:
        secrets = sorted(_remembered, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + "@", text)
    text = _PAIR.sub(lambda m: m["head"] + MASK, text)
    text = _AUTH.sub(lambda m: m["head"] + MASK, text)
    text = _SLACK_HOOK.sub(lambda m: m["head"] + MASK, text)
    return _KEYS.sub(MASK, text)
