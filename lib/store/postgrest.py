"""The store over Supabase's PostgREST: `POST /rest/v1/rpc/<fn>` with named arguments.

The service role key goes in `apikey`, and also as `Authorization: Bearer` when it is a JWT
(legacy keys); Supabase's newer `sb_secret_…` keys are not JWTs and go in `apikey` only.
PostgREST's error body (`code`, `message`, `details`, `hint`) becomes a typed `StoreError`.
"""
from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import requests

from lib.store import AuthRejected, Store, StoreError, Unavailable, error_for


class PostgrestStore(Store):
    kind = "postgrest"

    def __init__(self, rest_url: str, service_role_key: str):
        self.rest_url = rest_url.rstrip("/")
        self._headers = {"apikey": service_role_key, "Content-Type": "application/json",
                         "Accept": "application/json"}
        if _is_jwt(service_role_key):
            self._headers["Authorization"] = f"Bearer {service_role_key}"
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe: one per thread, each pooling.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self._headers)
        return session

    def _attempt(self, fn: str, args: dict[str, Any], shape: str, timeout: float) -> Any:
        url = f"{self.rest_url}/rpc/{fn}"
        # A numeric argument goes as its exact decimal text (PostgREST reads it with numeric's own
        # input function): a float would round a cost recorded to 12 decimals.
        body = json.dumps({name: str(value) if isinstance(value, Decimal) else value for name, value in args.items()},
                          default=_json_default)
        try:
            response = self._session().post(url, data=body, timeout=(min(5.0, timeout), timeout))
        except requests.ConnectionError:
            # Includes a connect timeout; the write functions are idempotent, so a retry after a
            # connection dropped mid-answer does no harm either.
            raise Unavailable(f"Supabase unreachable at {self.rest_url}") from None
        except requests.Timeout:
            raise StoreError(f"Supabase did not answer {fn} within {timeout:.1f}s") from None
        if response.status_code >= 400:
            raise _error_from(response, fn)
        if response.status_code == 204 or not response.content:
            return [] if shape == "all" else None
        return response.json()

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


def _error_from(response: requests.Response, fn: str) -> StoreError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code, message = body.get("code"), body.get("message") or f"HTTP {response.status_code} from Supabase"
    details, hint = body.get("details"), body.get("hint")
    # An anon or publishable key reaches PostgreSQL as the anon role, which may execute nothing of
    # ours: 42501 (HTTP 401). A wrong key is 401 from the gateway; a bad JWT PGRST301-303.
    if (response.status_code in (401, 403) or code == "42501" or (code or "").startswith("28")
            or code in ("PGRST301", "PGRST302", "PGRST303")):
        return AuthRejected("Supabase rejected the service role key: check SANDBOX_SUPABASE_SERVICE_ROLE_KEY (the "
                            "secret or service_role key, not the anon or publishable key)",
                            code=code or str(response.status_code), details=message)
    if not code and (response.status_code in (502, 503, 504) or 520 <= response.status_code <= 529):
        # A gateway's answer (Supabase's, or Cloudflare's 52x) without PostgREST's body: transient.
        return Unavailable(f"Supabase unavailable (HTTP {response.status_code} from its gateway) calling {fn}")
    if not code:
        return StoreError(f"unexpected HTTP {response.status_code} from Supabase calling {fn}; "
                          "check SUPABASE_SANDBOX_URL points at the project URL")
    if details is not None and not isinstance(details, str):
        details = json.dumps(details)
    return error_for(code, message, details, hint)


def _is_jwt(key: str) -> bool:
    parts = key.split(".")
    return len(parts) == 3 and key.startswith("eyJ")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot send {type(value).__name__} to PostgREST")
