"""Every setting, read once from the environment and validated.

`Settings.from_env()` either returns a complete, valid `Settings` or raises `ConfigError` with a
message naming the variable and what is wrong with it. Secret values never appear in a message.
Requirements that only some paths have (an OpenAI key, a cron secret, a database) are checked by
the code that needs them, through the `require_*` methods, so a misconfigured LLM does not break
`status`, and a missing cron secret does not break the CLI.

Standard library only: the auth path of the handlers imports this module.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_CLOSER_PROMPT = PROJECT_ROOT / "lib" / "prompts" / "closer.md"
DEFAULT_LOCAL_DB_URL = "postgresql://localhost:5432/sandbox"
SUPABASE_URL_VARS = ("SUPABASE_SANDBOX_URL", "SANDBOX_SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL")
OPENAI_KEY_VARS = ("SANDBOX_OPENAI_API_KEY", "OPENAI_API_KEY")
LLM_PROVIDERS = ("openai", "simulated")


class ConfigError(ValueError):
    """A setting is missing or has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Database:
    """Where the data lives: `psycopg` (a URL), `postgrest` (Supabase) or `embedded` (local)."""

    kind: str
    url: str | None = None
    service_role_key: str | None = field(default=None, repr=False)
    source: str = ""

    @property
    def rest_url(self) -> str:
        return f"{self.url.rstrip('/')}/rest/v1"


@dataclass(frozen=True)
class Settings:
    cron_secret: str | None = field(repr=False)
    database: Database | None
    database_error: str | None
    openai_api_key: str | None = field(repr=False)
    openai_base_url: str | None
    llm_provider: str
    closer_model: str
    persona_model: str
    referee_model: str
    scout_model: str
    model_prices: dict
    batch_size: int
    max_batch_size: int
    max_execution_ms: int
    max_concurrent_battles: int
    delay_between_battles_ms: int
    max_concurrent_runs: int
    kill_switch_usd: Decimal
    battle_max_turns: int
    max_tokens_per_turn: int
    scout_threshold: int
    app_url: str | None
    bypass_secret: str | None = field(repr=False)
    slack_webhook_url: str | None = field(repr=False)
    admin_password: str | None = field(repr=False)
    closer_prompt_path: Path
    embedded_db_dir: Path
    on_vercel: bool
    # The canary (lib/canary.py): the candidate's share of a run's battles, each paired with an
    # active battle on the same persona, and the pairs after which an undecided canary is inconclusive.
    canary_share: float = 0.5
    canary_max_pairs: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = _Env(os.environ if env is None else env)
        database, database_error = _select_database(env)
        max_batch = env.integer("MAX_TRAINING_BATCH_SIZE", 10, minimum=1, maximum=1000)
        return cls(
            cron_secret=env.text("CRON_SECRET"),
            database=database,
            database_error=database_error,
            openai_api_key=env.first(OPENAI_KEY_VARS),
            openai_base_url=env.url("OPENAI_BASE_URL"),
            llm_provider=env.choice("LLM_PROVIDER", "openai", LLM_PROVIDERS),
            closer_model=env.text("CLOSER_MODEL") or "gpt-4o",
            persona_model=env.text("PERSONA_MODEL") or "gpt-4o-mini",
            referee_model=env.text("REFEREE_MODEL") or "gpt-4o",
            scout_model=env.text("SCOUT_MODEL") or "gpt-4o-mini",
            model_prices=env.prices("MODEL_PRICES"),
            batch_size=env.integer("TRAINING_BATCH_SIZE", 5, minimum=1, maximum=max_batch,
                                   maximum_name="MAX_TRAINING_BATCH_SIZE"),
            max_batch_size=max_batch,
            max_execution_ms=env.integer("MAX_TRAINING_EXECUTION_TIME_MS", 50_000, minimum=1_000,
                                         maximum=3_600_000),
            max_concurrent_battles=env.integer("MAX_CONCURRENT_BATTLES", 3, minimum=1, maximum=50),
            delay_between_battles_ms=env.integer("DELAY_BETWEEN_BATTLES_MS", 1_000, minimum=0,
                                                 maximum=60_000),
            max_concurrent_runs=env.integer("MAX_CONCURRENT_RUNS", 1, minimum=1, maximum=100),
            kill_switch_usd=env.money("KILL_SWITCH_THRESHOLD_USD", Decimal("5.00")),
            battle_max_turns=env.integer("BATTLE_MAX_TURNS", 10, minimum=1, maximum=100),
            max_tokens_per_turn=env.integer("MAX_TOKENS_PER_TURN", 300, minimum=16, maximum=16_384),
            scout_threshold=env.integer("SCOUT_BREAKTHROUGH_THRESHOLD", 95, minimum=0, maximum=100),
            app_url=env.url("NEXT_PUBLIC_APP_URL"),
            bypass_secret=env.text("VERCEL_AUTOMATION_BYPASS_SECRET"),
            slack_webhook_url=env.url("SLACK_WEBHOOK_URL", secret=True),
            admin_password=env.text("ADMIN_PASSWORD"),
            closer_prompt_path=env.path("CLOSER_PROMPT_PATH", BUNDLED_CLOSER_PROMPT),
            embedded_db_dir=Path(env.text("EMBEDDED_DB_DIR") or PROJECT_ROOT / ".data" / "pg"),
            on_vercel=bool(env.text("VERCEL")),
            canary_share=env.fraction("CANARY_SHARE", 0.5, maximum=0.5,
                                      meaning="the candidate's share of a run's battles, each paired with an "
                                              "active battle on the same persona"),
            canary_max_pairs=env.integer("CANARY_MAX_PAIRS", 100, minimum=10, maximum=100_000),
        )

    @property
    def simulated(self) -> bool:
        return self.llm_provider == "simulated"

    def require_database(self) -> Database:
        if self.database is None:
            raise ConfigError(self.database_error)
        return self.database

    def require_openai_key(self) -> str:
        if self.simulated:
            return ""
        if not self.openai_api_key:
            raise ConfigError(
                "OpenAI API key not configured: set SANDBOX_OPENAI_API_KEY (or OPENAI_API_KEY), "
                "or LLM_PROVIDER=simulated for an offline run"
            )
        return self.openai_api_key


def _select_database(env: "_Env") -> tuple[Database | None, str | None]:
    """The documented priority: local psycopg, then Supabase, then embedded (never on Vercel)."""
    if env.boolean("USE_LOCAL_DB", False):
        url = env.text("LOCAL_DB_URL") or DEFAULT_LOCAL_DB_URL
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("LOCAL_DB_URL must be a postgresql:// URL")
        return Database("psycopg", url=url, source="USE_LOCAL_DB"), None
    for name in SUPABASE_URL_VARS:
        url = env.url(name)
        if url:
            key = env.text("SANDBOX_SUPABASE_SERVICE_ROLE_KEY")
            if not key:
                return None, (
                    f"Database not configured: {name} is set but SANDBOX_SUPABASE_SERVICE_ROLE_KEY is "
                    "not (use the service_role key from Supabase → Project Settings → API)"
                )
            return Database("postgrest", url=url, service_role_key=key, source=name), None
    if env.text("VERCEL"):
        return None, (
            "Database not configured: set SUPABASE_SANDBOX_URL and SANDBOX_SUPABASE_SERVICE_ROLE_KEY "
            "(or USE_LOCAL_DB=true with LOCAL_DB_URL)"
        )
    return Database("embedded", source="default"), None


class _Env:
    """Typed readers over the raw environment; each error names its variable."""

    def __init__(self, raw: Mapping[str, str]):
        self.raw = raw

    def text(self, name: str) -> str | None:
        value = self.raw.get(name, "").strip()
        return value or None

    def first(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            value = self.text(name)
            if value:
                return value
        return None

    def integer(self, name: str, default: int, *, minimum: int, maximum: int,
                maximum_name: str | None = None) -> int:
        value = self.text(name)
        if value is None:
            return min(default, maximum)
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
        if number < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {number}")
        if number > maximum:
            limit = f"{maximum_name} ({maximum})" if maximum_name else str(maximum)
            raise ConfigError(f"{name} must be at most {limit}, got {number}")
        return number

    def fraction(self, name: str, default: float, *, maximum: float, meaning: str) -> float:
        """A number above 0 and at most `maximum`."""
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not 0 < number <= maximum:  # also refuses nan
            raise ConfigError(f"{name} must be a number above 0 and at most {maximum} ({meaning}), got {value!r}")
        return number

    def money(self, name: str, default: Decimal) -> Decimal:
        value = self.text(name)
        if value is None:
            return default
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ConfigError(f"{name} must be a dollar amount like 5.00, got {value!r}") from None
        if not amount.is_finite() or amount <= 0:
            raise ConfigError(f"{name} must be a positive dollar amount, got {value!r}")
        return amount

    def boolean(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, *, secret: bool = False) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            shown = "" if secret else f", got {value!r}"
            raise ConfigError(f"{name} must be an http(s):// URL{shown}")
        return value.rstrip("/")

    def path(self, name: str, default: Path) -> Path:
        value = self.text(name)
        if value is None:
            return default
        path = Path(value)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if not path.is_file():
            raise ConfigError(f"{name} points to {value!r}, which is not a readable file")
        return path

    def prices(self, name: str) -> dict:
        """`{"model": {"input": usd_per_1M, "cached_input": …, "output": …}}`, validated."""
        value = self.text(name)
        if value is None:
            return {}
        try:
            table = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name} is not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(table, dict):
            raise ConfigError(f'{name} must be a JSON object like {{"gpt-4o": {{"input": 2.5, "output": 10}}}}')
        prices = {}
        for model, entry in table.items():
            if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
                raise ConfigError(f"{name}: {model!r} needs \"input\" and \"output\" prices (USD per 1M tokens)")
            unknown = entry.keys() - {"input", "cached_input", "output"}
            if unknown:
                raise ConfigError(f"{name}: {model!r} has unknown keys {sorted(unknown)}")
            parsed = {}
            for kind, price in entry.items():
                if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
                    raise ConfigError(f"{name}: {model!r} {kind} price must be a non-negative number")
                parsed[kind] = Decimal(str(price))
            parsed.setdefault("cached_input", parsed["input"])
            prices[model] = parsed
        return prices
