"""Every setting, read once from the environment and validated.

`SETTINGS` lists every environment variable the project reads, with its default and a one-line
meaning; docs/configuration.md's table is checked against it. `Settings.from_env()` either
returns a complete, valid `Settings` or raises `ConfigError` with a message naming the variable
and what is wrong with it. Secret values never appear in a message.

Requirements that only some paths have (an OpenAI key, a database) are checked by the code that
needs them, through the `require_*` methods, so a misconfigured LLM does not break `status`. The
two secrets that guard the HTTP functions have readers of their own, `cron_secret()` and
`admin_password()`, which `Settings` uses too: they read only their variable, so a stranger gets
401 even when an unrelated variable holds a bad value.

Standard library only: the auth path of the handlers imports this module.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUPABASE_URL_VARS = ("SUPABASE_SANDBOX_URL", "SANDBOX_SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL")
OPENAI_KEY_VARS = ("SANDBOX_OPENAI_API_KEY", "OPENAI_API_KEY")
LLM_PROVIDERS = ("openai", "simulated")


class ConfigError(ValueError):
    """A setting is missing or has a bad value; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    """One environment variable.

    `default` is the value used when the variable is unset or blank, spelled as the environment
    would hold it; None when there is no default value, and then `shown` says what happens
    instead (e.g. "required unless simulated").
    """

    name: str
    default: str | None
    meaning: str
    shown: str | None = None

    @property
    def documented_default(self) -> str:
        """The default column of docs/configuration.md."""
        return f"`{self.default}`" if self.default is not None else (self.shown or "—")


SETTINGS: tuple[Setting, ...] = (
    Setting("CRON_SECRET", None, "bearer token for `/api/cron/*`; unset or blank, every call is refused",
            shown="required for the endpoints"),
    Setting("ADMIN_PASSWORD", None, "HTTP Basic password for the dashboard; unset or blank, the dashboard refuses"),
    Setting("USE_LOCAL_DB", "false", "`true`: PostgreSQL over psycopg at `LOCAL_DB_URL`, before any Supabase URL"),
    Setting("LOCAL_DB_URL", "postgresql://localhost:5432/sandbox", "the PostgreSQL URL used with `USE_LOCAL_DB`"),
    Setting("SUPABASE_SANDBOX_URL", None, "Supabase project URL: selects PostgREST at `<url>/rest/v1`"),
    Setting("SANDBOX_SUPABASE_URL", None, "read when `SUPABASE_SANDBOX_URL` is unset"),
    Setting("NEXT_PUBLIC_SUPABASE_URL", None, "read when both Supabase URLs above are unset"),
    Setting("SANDBOX_SUPABASE_SERVICE_ROLE_KEY", None,
            "sent as `apikey` (and `Authorization: Bearer` for JWT keys)", shown="required with Supabase"),
    Setting("SANDBOX_SUPABASE_ANON_KEY", None, "accepted and never used: the tables refuse the anon key"),
    Setting("VERCEL", None, "set by Vercel itself; there, no database configured is an error, not the embedded one"),
    Setting("SANDBOX_OPENAI_API_KEY", None, "OpenAI API key", shown="required unless simulated"),
    Setting("OPENAI_API_KEY", None, "read when `SANDBOX_OPENAI_API_KEY` is unset"),
    Setting("OPENAI_BASE_URL", None, "any OpenAI-compatible server", shown="OpenAI's API"),
    Setting("LLM_PROVIDER", "openai", "`simulated`: the offline deterministic simulator, labelled as such"),
    Setting("CLOSER_MODEL", "gpt-4o", "the closer's model"),
    Setting("PERSONA_MODEL", "gpt-4o-mini", "the sellers' model, and the one `generate-personas --llm` asks"),
    Setting("REFEREE_MODEL", "gpt-4o", "the referee's model"),
    Setting("SCOUT_MODEL", "gpt-4o-mini", "the Tactical Scout's model (defining moments)"),
    Setting("MODEL_PRICES", None, 'JSON `{"model": {"input": usd_per_1M, "cached_input": …, "output": …}}`; '
                                  "adds to or overrides the built-in prices", shown="built-in table"),
    Setting("TRAINING_BATCH_SIZE", "5", "battles per run when the request names no size"),
    Setting("MAX_TRAINING_BATCH_SIZE", "10", "the most battles one run may have; larger requests are clamped"),
    Setting("MAX_TRAINING_EXECUTION_TIME_MS", "50000",
            "the run's deadline, from the request's arrival (or the command's start)"),
    Setting("MAX_CONCURRENT_BATTLES", "3", "battles of one run in flight at once"),
    Setting("DELAY_BETWEEN_BATTLES_MS", "1000", "the least time between two battle starts"),
    Setting("MAX_CONCURRENT_RUNS", "1", "runs allowed at once across all invocations"),
    Setting("KILL_SWITCH_THRESHOLD_USD", "5.00",
            "the most one batch may spend, in USD; the call that would pass it pauses training"),
    Setting("DAILY_BUDGET_USD", None, "the most all runs started in one UTC day may spend, in USD, across parallel "
                                      "runs; once reached, runs are refused until 00:00 UTC", shown="no daily limit"),
    Setting("MONTHLY_BUDGET_USD", None, "the same for a UTC calendar month", shown="no monthly limit"),
    Setting("CRON_FAN_OUT", "1", "runs each Vercel Cron call starts: it runs one and dispatches the others to "
                                 "`NEXT_PUBLIC_APP_URL`; at most `MAX_CONCURRENT_RUNS`"),
    Setting("BATTLE_MAX_TURNS", "10", "closer–seller exchanges in one battle, at most"),
    Setting("MAX_TOKENS_PER_TURN", "300", "the longest reply, in tokens"),
    Setting("SCOUT_BREAKTHROUGH_THRESHOLD", "95", "referee score (0–100) from which a battle is a breakthrough"),
    Setting("NEXT_PUBLIC_APP_URL", None, "this deployment's URL: the scout webhook's target, dashboard links in Slack"),
    Setting("VERCEL_AUTOMATION_BYPASS_SECRET", None, "sent as `x-vercel-protection-bypass` on the scout webhook"),
    Setting("SLACK_WEBHOOK_URL", None, "Slack incoming webhook for alerts; unset, nothing is sent"),
    Setting("CLOSER_PROMPT_PATH", "lib/prompts/closer.md", "the closer's base prompt; a relative path starts at the "
                                                          "project root"),
    Setting("EMBEDDED_DB_DIR", ".data/pg", "local only: where the embedded PostgreSQL keeps its data (the default "
                                           "is under the project root)"),
)
_REGISTERED = {setting.name: setting for setting in SETTINGS}


def cron_secret(env: Mapping[str, str] | None = None) -> str | None:
    """`CRON_SECRET`, stripped; None when unset or blank (then every cron call is refused)."""
    return _Env(os.environ if env is None else env).text("CRON_SECRET")


def admin_password(env: Mapping[str, str] | None = None) -> str | None:
    """`ADMIN_PASSWORD`, stripped; None when unset or blank (then the dashboard refuses)."""
    return _Env(os.environ if env is None else env).text("ADMIN_PASSWORD")


@dataclass(frozen=True)
class Database:
    """Where the data lives: `psycopg` (a URL), `postgrest` (Supabase) or `embedded` (local)."""

    kind: str
    url: str | None = None
    service_role_key: str | None = field(default=None, repr=False)

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
    daily_budget_usd: Decimal | None
    monthly_budget_usd: Decimal | None
    cron_fan_out: int
    battle_max_turns: int
    max_tokens_per_turn: int
    scout_threshold: int
    app_url: str | None
    bypass_secret: str | None = field(repr=False)
    slack_webhook_url: str | None = field(repr=False)
    closer_prompt_path: Path
    embedded_db_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        raw = os.environ if env is None else env
        env = _Env(raw)
        database, database_error = _select_database(env)
        max_batch = env.integer("MAX_TRAINING_BATCH_SIZE", minimum=1, maximum=1000)
        max_runs = env.integer("MAX_CONCURRENT_RUNS", minimum=1, maximum=100)
        return cls(
            cron_secret=cron_secret(raw),
            database=database,
            database_error=database_error,
            openai_api_key=env.first(OPENAI_KEY_VARS),
            openai_base_url=env.url("OPENAI_BASE_URL"),
            llm_provider=env.choice("LLM_PROVIDER", LLM_PROVIDERS),
            closer_model=env.text("CLOSER_MODEL"),
            persona_model=env.text("PERSONA_MODEL"),
            referee_model=env.text("REFEREE_MODEL"),
            scout_model=env.text("SCOUT_MODEL"),
            model_prices=env.prices("MODEL_PRICES"),
            batch_size=env.integer("TRAINING_BATCH_SIZE", minimum=1, maximum=max_batch,
                                   maximum_name="MAX_TRAINING_BATCH_SIZE"),
            max_batch_size=max_batch,
            max_execution_ms=env.integer("MAX_TRAINING_EXECUTION_TIME_MS", minimum=1_000, maximum=3_600_000),
            max_concurrent_battles=env.integer("MAX_CONCURRENT_BATTLES", minimum=1, maximum=50),
            delay_between_battles_ms=env.integer("DELAY_BETWEEN_BATTLES_MS", minimum=0, maximum=60_000),
            max_concurrent_runs=max_runs,
            kill_switch_usd=env.money("KILL_SWITCH_THRESHOLD_USD"),
            daily_budget_usd=env.money("DAILY_BUDGET_USD") if env.given("DAILY_BUDGET_USD") else None,
            monthly_budget_usd=env.money("MONTHLY_BUDGET_USD") if env.given("MONTHLY_BUDGET_USD") else None,
            cron_fan_out=env.integer("CRON_FAN_OUT", minimum=1, maximum=max_runs, maximum_name="MAX_CONCURRENT_RUNS"),
            battle_max_turns=env.integer("BATTLE_MAX_TURNS", minimum=1, maximum=100),
            max_tokens_per_turn=env.integer("MAX_TOKENS_PER_TURN", minimum=16, maximum=16_384),
            scout_threshold=env.integer("SCOUT_BREAKTHROUGH_THRESHOLD", minimum=0, maximum=100),
            app_url=env.url("NEXT_PUBLIC_APP_URL"),
            bypass_secret=env.text("VERCEL_AUTOMATION_BYPASS_SECRET"),
            slack_webhook_url=env.url("SLACK_WEBHOOK_URL", secret=True),
            closer_prompt_path=env.path("CLOSER_PROMPT_PATH"),
            embedded_db_dir=env.directory("EMBEDDED_DB_DIR"),
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
    if env.boolean("USE_LOCAL_DB"):
        url = env.text("LOCAL_DB_URL")
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("LOCAL_DB_URL must be a postgresql:// URL")
        return Database("psycopg", url=url), None
    for name in SUPABASE_URL_VARS:
        url = env.url(name)
        if url:
            key = env.text("SANDBOX_SUPABASE_SERVICE_ROLE_KEY")
            if not key:
                return None, (
                    f"Database not configured: {name} is set but SANDBOX_SUPABASE_SERVICE_ROLE_KEY is "
                    "not (use the service_role key from Supabase → Project Settings → API)"
                )
            return Database("postgrest", url=url, service_role_key=key), None
    if env.given("VERCEL"):
        return None, (
            "Database not configured: set SUPABASE_SANDBOX_URL and SANDBOX_SUPABASE_SERVICE_ROLE_KEY "
            "(or USE_LOCAL_DB=true with LOCAL_DB_URL)"
        )
    return Database("embedded"), None


class _Env:
    """Typed readers over the raw environment; each error names its variable.

    Only variables listed in `SETTINGS` can be read, and an unset one takes its default from there.
    """

    def __init__(self, raw: Mapping[str, str]):
        self.raw = raw

    def given(self, name: str) -> str | None:
        """The variable's value, stripped; None when it is unset or blank."""
        if name not in _REGISTERED:
            raise KeyError(f"{name} is not in lib.config.SETTINGS: register it (and document it)")
        value = self.raw.get(name, "").strip()
        return value or None

    def text(self, name: str) -> str | None:
        """The value, or the registered default when it is unset or blank."""
        return self.given(name) or _REGISTERED[name].default

    def first(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            value = self.given(name)
            if value:
                return value
        return None

    def integer(self, name: str, *, minimum: int, maximum: int, maximum_name: str | None = None) -> int:
        value = self.given(name)
        if value is None:
            return min(int(_REGISTERED[name].default), maximum)
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

    def money(self, name: str) -> Decimal:
        value = self.text(name)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ConfigError(f"{name} must be a dollar amount like 5.00, got {value!r}") from None
        if not amount.is_finite() or amount <= 0:
            raise ConfigError(f"{name} must be a positive dollar amount, got {value!r}")
        return amount

    def boolean(self, name: str) -> bool:
        value = self.text(name)
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.text(name).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, *, secret: bool = False) -> str | None:
        value = self.given(name)
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            shown = "" if secret else f", got {value!r}"
            raise ConfigError(f"{name} must be an http(s):// URL{shown}")
        return value.rstrip("/")

    def path(self, name: str) -> Path:
        """A file; a relative path starts at the project root."""
        value = self.text(name)
        path = Path(value)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if not path.is_file():
            raise ConfigError(f"{name} points to {value!r}, which is not a readable file")
        return path

    def directory(self, name: str) -> Path:
        """A directory: a given path is taken as it is; the default is under the project root."""
        value = self.given(name)
        return Path(value) if value is not None else PROJECT_ROOT / _REGISTERED[name].default

    def prices(self, name: str) -> dict:
        """`{"model": {"input": usd_per_1M, "cached_input": …, "output": …}}`, validated."""
        value = self.given(name)
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
