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

import base64
import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Concatenate, cast

from lib.redact import remember, url_password

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VERCEL_JSON = PROJECT_ROOT / "vercel.json"  # routes, rewrites and crons, as Vercel reads them
SUPABASE_URL_VARS = ("SUPABASE_SANDBOX_URL", "SANDBOX_SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL")
OPENAI_KEY_VARS = ("SANDBOX_OPENAI_API_KEY", "OPENAI_API_KEY")
LLM_PROVIDERS = ("openai", "simulated")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
AUTO_PROPOSE_CHOICES = ("off", "breakthroughs", "all")
CANARY_VERDICT_CHOICES = ("score", "head_to_head")
# KILL_SWITCH_THRESHOLD_USD lands in training_runs.cost_cap, numeric(12, 6). Below a cent not one
# call fits; above $10,000 a batch it is a typo, not a budget.
COST_CAP_MIN, COST_CAP_MAX, COST_CAP_DECIMALS = Decimal("0.01"), Decimal("10000"), 6
# A daily or monthly budget: what its numeric(12, 6) reckoning holds.
BUDGET_MAX = Decimal("100000")
# MODEL_PRICES, USD per 1M tokens: the dearest models cost hundreds; more is a typo (or 1e308,
# which makes every cost overflow).
PRICE_MAX = 10_000


class ConfigError(ValueError):
    """A setting is missing or has a bad value; the message names the variable.

    `problems` lists every bad setting found at once (one line each), so a user fixes them all
    in one go instead of one per restart.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]

    @classmethod
    def of(cls, problems: list[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(problems[0])
        listed = "\n".join(f"  - {problem}" for problem in problems)
        return cls(f"{len(problems)} settings are wrong:\n{listed}", problems)


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
    Setting("REASONING_EFFORT", "low", "`reasoning_effort` sent to reasoning models only (`gpt-5…`, `o1`, `o3`, "
                                       "`o4-mini`…): `none`, `minimal`, `low`, `medium` or `high`; their reasoning "
                                       "counts against `MAX_TOKENS_PER_TURN`"),
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
    Setting("DAILY_BUDGET_USD", None, "the most the provider may bill, in USD, for every model call started in one "
                                      "UTC day (runs, scout scans, persona generation, referee checks, the proposer), "
                                      "across parallel processes; once reached, they are refused until 00:00 UTC",
            shown="no daily limit"),
    Setting("MONTHLY_BUDGET_USD", None, "the same for a UTC calendar month", shown="no monthly limit"),
    Setting("CRON_FAN_OUT", "1", "runs each Vercel Cron call starts: it runs one and dispatches the others to "
                                 "`NEXT_PUBLIC_APP_URL`; at most `MAX_CONCURRENT_RUNS`"),
    Setting("BATTLE_MAX_TURNS", "10", "closer–seller exchanges in one battle, at most"),
    Setting("MAX_TOKENS_PER_TURN", "300", "the longest reply, in tokens"),
    Setting("SCOUT_BREAKTHROUGH_THRESHOLD", "95", "referee score (0–100) from which a battle is a breakthrough "
                                                  "candidate (then confirmed by a re-score)"),
    Setting("REFEREE_CONFIRM_MODEL", None, "the model that re-scores a candidate before it becomes a breakthrough",
            shown="`REFEREE_MODEL`"),
    Setting("REFEREE_CONFIRM_MARGIN", "3", "a candidate is confirmed when the mean of both scores reaches the "
                                           "cutoff and the re-score is at least the cutoff minus this"),
    Setting("REFEREE_AUDIT_SHARE", "0.05", "share (0–1) of completed battles the scout re-scores to measure the "
                                           "referee's consistency"),
    Setting("REFEREE_DRIFT_ALERT", "5", "mean absolute difference (points) of audit pairs over 7 days above which "
                                        "Slack is alerted, once a day at most"),
    Setting("REFEREE_RESCORE_CAP_USD", "0.50", "the most one scout scan may spend on re-scores (confirmations and "
                                               "audits)"),
    Setting("REFEREE_CHECK_CAP_USD", "1.00", "the most `python -m lib referee-check` may spend"),
    Setting("CANARY_SHARE", "0.5", "while a candidate version exists, the share of a run's battles it gets, each "
                                   "paired with an active-version battle on the same persona, the least-paired "
                                   "personas first (above 0, at most 0.5)"),
    Setting("CANARY_MAX_PAIRS", "100", "pairs after which an undecided canary is inconclusive (the active version "
                                       "stays)"),
    Setting("CANARY_VERDICT", "score", "what a canary pair's difference is: `score` (candidate score − active score, "
                                       "in points) or `head_to_head` (one referee call judges both calls of each "
                                       "pair: a verdict of +1, 0 or −1, docs/versions.md)"),
    Setting("AUTO_PROPOSE", "off", "`breakthroughs`: confirmed breakthroughs' tactics enter the proposal queue by "
                                   "themselves; `all`: the proposer's proposals too (docs/versions.md)"),
    Setting("MAX_ACTIVE_TACTICS", "12", "the most tactics a version holds; an addition beyond it first proposes "
                                        "removing the weakest measured one"),
    Setting("PROPOSER_MODEL", None, "the proposer's model (with `AUTO_PROPOSE=all`): it reads the worst recent "
                                    "battles and proposes one tactic or one removal", shown="no proposer"),
    Setting("PROPOSER_EVERY", "100", "completed battles between two proposer turns (a turn whose call fails is "
            "given back: the next run takes it)"),
    Setting("NEXT_PUBLIC_APP_URL", None, "this deployment's URL: the scout webhook's target, dashboard links in Slack"),
    Setting("VERCEL_AUTOMATION_BYPASS_SECRET", None, "sent as `x-vercel-protection-bypass` on the scout webhook"),
    Setting("SLACK_WEBHOOK_URL", None, "Slack incoming webhook for alerts; unset, nothing is sent"),
    Setting("CLOSER_PROMPT_PATH", "lib/prompts/closer.md", "the closer's base prompt; a relative path starts at the "
                                                          "project root"),
    Setting("EMBEDDED_DB_DIR", ".data/pg", "local only: where the embedded PostgreSQL keeps its data (the default "
                                           "is under the project root)"),
)
_REGISTERED = {setting.name: setting for setting in SETTINGS}
# Variables other tools use for the same things, which this project does not read: set, each is
# named in a warning with the variable to use instead (a DATABASE_URL pointing nowhere would
# otherwise be silently replaced by the embedded database).
IGNORED_VARIABLES = {
    "DATABASE_URL": "USE_LOCAL_DB=true with LOCAL_DB_URL",
    "POSTGRES_URL": "USE_LOCAL_DB=true with LOCAL_DB_URL",
    "SUPABASE_URL": "SUPABASE_SANDBOX_URL",
    "SUPABASE_SERVICE_ROLE_KEY": "SANDBOX_SUPABASE_SERVICE_ROLE_KEY",
    "OPENAI_API_BASE": "OPENAI_BASE_URL",
}


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
    url: str | None = None  # set for `psycopg` and `postgrest`
    service_role_key: str | None = field(default=None, repr=False)  # set for `postgrest`

    @property
    def rest_url(self) -> str:
        return f"{(self.url or '').rstrip('/')}/rest/v1"


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
    reasoning_effort: str
    model_prices: dict[str, dict[str, Decimal]]
    batch_size: int
    max_batch_size: int
    max_execution_ms: int
    max_concurrent_battles: int
    delay_between_battles_ms: int
    max_concurrent_runs: int
    cost_cap_usd: Decimal
    daily_budget_usd: Decimal | None
    monthly_budget_usd: Decimal | None
    cron_fan_out: int
    battle_max_turns: int
    max_tokens_per_turn: int
    scout_threshold: int
    referee_confirm_model: str
    referee_confirm_margin: Decimal
    referee_audit_share: Decimal
    referee_drift_alert: Decimal
    referee_rescore_cap_usd: Decimal
    referee_check_cap_usd: Decimal
    app_url: str | None
    bypass_secret: str | None = field(repr=False)
    slack_webhook_url: str | None = field(repr=False)
    closer_prompt_path: Path
    embedded_db_dir: Path
    # The canary (lib/canary.py): the candidate's share of a run's battles, each paired with an
    # active battle on the same persona, and the pairs after which an undecided canary is inconclusive.
    canary_share: float
    canary_max_pairs: int
    canary_verdict: str  # CANARY_VERDICT_CHOICES
    # The autonomous loop (lib/proposals.py): what enters the proposal queue by itself, the most
    # tactics a version holds, and the proposer (off without a model).
    auto_propose: str
    max_active_tactics: int
    proposer_model: str | None
    proposer_every: int
    # Variables set in the environment that are never read, each with what to set instead.
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return cls._read(_Env(os.environ if env is None else env, collect=True))

    @classmethod
    def _read(cls, env: _Env) -> Settings:
        try:
            database, database_error = _select_database(env)
        except ConfigError as exc:
            env.errors.append(str(exc))
            database, database_error = None, str(exc)
        max_batch = env.integer("MAX_TRAINING_BATCH_SIZE", minimum=1, maximum=1000)
        max_runs = env.integer("MAX_CONCURRENT_RUNS", minimum=1, maximum=100)
        settings = cls(
            cron_secret=cron_secret(env.raw),
            database=database,
            database_error=database_error,
            openai_api_key=env.first(OPENAI_KEY_VARS),
            openai_base_url=env.url("OPENAI_BASE_URL"),
            llm_provider=env.choice("LLM_PROVIDER", LLM_PROVIDERS),
            closer_model=env.defaulted("CLOSER_MODEL"),
            persona_model=env.defaulted("PERSONA_MODEL"),
            referee_model=env.defaulted("REFEREE_MODEL"),
            scout_model=env.defaulted("SCOUT_MODEL"),
            reasoning_effort=env.choice("REASONING_EFFORT", REASONING_EFFORTS),
            model_prices=env.prices("MODEL_PRICES"),
            batch_size=env.integer("TRAINING_BATCH_SIZE", minimum=1, maximum=max_batch,
                                   maximum_name="MAX_TRAINING_BATCH_SIZE"),
            max_batch_size=max_batch,
            max_execution_ms=env.integer("MAX_TRAINING_EXECUTION_TIME_MS", minimum=1_000, maximum=3_600_000),
            max_concurrent_battles=env.integer("MAX_CONCURRENT_BATTLES", minimum=1, maximum=50),
            delay_between_battles_ms=env.integer("DELAY_BETWEEN_BATTLES_MS", minimum=0, maximum=60_000),
            max_concurrent_runs=max_runs,
            cost_cap_usd=env.money("KILL_SWITCH_THRESHOLD_USD", minimum=COST_CAP_MIN, maximum=COST_CAP_MAX,
                                      decimals=COST_CAP_DECIMALS),
            daily_budget_usd=env.money("DAILY_BUDGET_USD", minimum=COST_CAP_MIN, maximum=BUDGET_MAX,
                                       decimals=COST_CAP_DECIMALS) if env.given("DAILY_BUDGET_USD") else None,
            monthly_budget_usd=env.money("MONTHLY_BUDGET_USD", minimum=COST_CAP_MIN, maximum=BUDGET_MAX,
                                         decimals=COST_CAP_DECIMALS) if env.given("MONTHLY_BUDGET_USD") else None,
            cron_fan_out=env.integer("CRON_FAN_OUT", minimum=1, maximum=max_runs, maximum_name="MAX_CONCURRENT_RUNS"),
            battle_max_turns=env.integer("BATTLE_MAX_TURNS", minimum=1, maximum=100),
            max_tokens_per_turn=env.integer("MAX_TOKENS_PER_TURN", minimum=16, maximum=16_384),
            scout_threshold=env.integer("SCOUT_BREAKTHROUGH_THRESHOLD", minimum=0, maximum=100),
            referee_confirm_model=env.text("REFEREE_CONFIRM_MODEL") or env.defaulted("REFEREE_MODEL"),
            referee_confirm_margin=env.decimal("REFEREE_CONFIRM_MARGIN", minimum=0, maximum=100),
            referee_audit_share=env.decimal("REFEREE_AUDIT_SHARE", minimum=0, maximum=1),
            referee_drift_alert=env.decimal("REFEREE_DRIFT_ALERT", minimum=Decimal("0.01"), maximum=100),
            referee_rescore_cap_usd=env.money("REFEREE_RESCORE_CAP_USD", minimum=Decimal("0.000001"),
                                              maximum=COST_CAP_MAX, decimals=COST_CAP_DECIMALS),
            referee_check_cap_usd=env.money("REFEREE_CHECK_CAP_USD", minimum=Decimal("0.000001"), maximum=COST_CAP_MAX,
                                             decimals=COST_CAP_DECIMALS),
            app_url=env.url("NEXT_PUBLIC_APP_URL"),
            bypass_secret=env.text("VERCEL_AUTOMATION_BYPASS_SECRET"),
            slack_webhook_url=env.url("SLACK_WEBHOOK_URL", secret=True),
            closer_prompt_path=env.path("CLOSER_PROMPT_PATH"),
            embedded_db_dir=env.directory("EMBEDDED_DB_DIR"),
            canary_share=env.fraction("CANARY_SHARE", maximum=0.5,
                                      meaning="the candidate's share of a run's battles, each paired with an "
                                              "active battle on the same persona"),
            canary_max_pairs=env.integer("CANARY_MAX_PAIRS", minimum=10, maximum=100_000),
            canary_verdict=env.choice("CANARY_VERDICT", CANARY_VERDICT_CHOICES),
            auto_propose=env.choice("AUTO_PROPOSE", AUTO_PROPOSE_CHOICES),
            max_active_tactics=env.integer("MAX_ACTIVE_TACTICS", minimum=1, maximum=100),
            proposer_model=env.text("PROPOSER_MODEL"),
            proposer_every=env.integer("PROPOSER_EVERY", minimum=1, maximum=1_000_000),
            ignored=ignored_variables(env.raw),
        )
        if env.errors:
            raise ConfigError.of(env.errors)
        # What redaction masks by value, wherever a driver or provider quotes it (lib.redact).
        remember(settings.cron_secret, settings.openai_api_key, settings.bypass_secret, settings.slack_webhook_url,
                 database.service_role_key if database else None, url_password(database.url) if database else None)
        return settings

    @property
    def simulated(self) -> bool:
        return self.llm_provider == "simulated"

    def require_database(self) -> Database:
        if self.database is None:
            raise ConfigError(self.database_error or "Database not configured")
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


def ignored_variables(raw: Mapping[str, str]) -> tuple[str, ...]:
    """One warning per variable that is set but not read, naming the variable to use."""
    warnings = [f"{name} is set but ignored: this project reads {instead}"
                for name, instead in IGNORED_VARIABLES.items() if raw.get(name, "").strip()]
    if raw.get("LOCAL_DB_URL", "").strip() and raw.get("USE_LOCAL_DB", "").strip().lower() not in (
            "1", "true", "yes", "on"):
        warnings.append("LOCAL_DB_URL is set but ignored: it is used only with USE_LOCAL_DB=true")
    return tuple(warnings)


def _select_database(env: _Env) -> tuple[Database | None, str | None]:
    """The documented priority: local psycopg, then Supabase, then embedded (never on Vercel)."""
    if env.boolean("USE_LOCAL_DB"):
        local_url = env.defaulted("LOCAL_DB_URL")
        if not local_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("LOCAL_DB_URL must be a postgresql:// URL")
        return Database("psycopg", url=local_url), None
    for name in SUPABASE_URL_VARS:
        url = env.url(name)
        if url:
            key = env.text("SANDBOX_SUPABASE_SERVICE_ROLE_KEY")
            if not key:
                return None, (
                    f"Database not configured: {name} is set but SANDBOX_SUPABASE_SERVICE_ROLE_KEY is "
                    "not (use the service_role key from Supabase → Project Settings → API)"
                )
            public = _public_key_kind(key)
            if public:
                return None, (
                    f"SANDBOX_SUPABASE_SERVICE_ROLE_KEY holds {public}, which the tables refuse: use the secret "
                    "key (sb_secret_…) or the legacy service_role key from Supabase → Project Settings → API"
                )
            return Database("postgrest", url=url, service_role_key=key), None
    if env.given("VERCEL"):
        return None, (
            "Database not configured: set SUPABASE_SANDBOX_URL and SANDBOX_SUPABASE_SERVICE_ROLE_KEY "
            "(or USE_LOCAL_DB=true with LOCAL_DB_URL)"
        )
    return Database("embedded"), None


def _public_key_kind(key: str) -> str | None:
    """What public key this is, if it is one: a publishable key, or a legacy JWT whose role is anon."""
    if key.startswith("sb_publishable_"):
        return "a publishable key (sb_publishable_…)"
    parts = key.split(".")
    if len(parts) == 3 and key.startswith("eyJ"):
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return None  # not a JWT we can read: Supabase will say whether it takes it
        if isinstance(claims, dict) and claims.get("role") in ("anon", "authenticated"):
            return f"the {claims['role']} key (a JWT whose role is {claims['role']})"
    return None


def _collected[**P, R](reader: Callable[Concatenate[_Env, str, P], R]) -> Callable[Concatenate[_Env, str, P], R]:
    """In collecting mode, a bad value is noted in `errors` and read again as unset (its
    default), so that every other setting is still checked and all problems are told at once."""

    @functools.wraps(reader)
    def read(self: _Env, name: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return reader(self, name, *args, **kwargs)
        except ConfigError as exc:
            if not self.collect:
                raise
            self.errors.append(str(exc))
            # None stands in for the value only until `Settings._read` raises with every error.
            if name in self.masked or _REGISTERED[name].default is None:
                return cast(R, None)  # no default to fall back on, or it is bad too (a missing prompt file)
            self.masked.add(name)
            try:
                return reader(self, name, *args, **kwargs)
            except ConfigError:
                return cast(R, None)

    return read


class _Env:
    """Typed readers over the raw environment; each error names its variable.

    Only variables listed in `SETTINGS` can be read, and an unset one takes its default from there.
    With `collect`, readers note errors in `errors` instead of raising (see `_collected`).
    """

    def __init__(self, raw: Mapping[str, str], collect: bool = False):
        self.raw = raw
        self.collect = collect
        self.errors: list[str] = []
        self.masked: set[str] = set()  # read as unset: their value was refused

    def given(self, name: str) -> str | None:
        """The variable's value, stripped; None when it is unset or blank."""
        if name not in _REGISTERED:
            raise KeyError(f"{name} is not in lib.config.SETTINGS: register it (and document it)")
        if name in self.masked:
            return None
        value = self.raw.get(name, "").strip()
        return value or None

    def text(self, name: str) -> str | None:
        """The value, or the registered default when it is unset or blank."""
        return self.given(name) or _REGISTERED[name].default

    def defaulted(self, name: str) -> str:
        """The value, or the registered default of a setting that has one."""
        value = self.text(name)
        if value is None:
            raise KeyError(f"{name} has no default in lib.config.SETTINGS: read it with given() or text()")
        return value

    def first(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            value = self.given(name)
            if value:
                return value
        return None

    @_collected
    def integer(self, name: str, *, minimum: int, maximum: int, maximum_name: str | None = None) -> int:
        value = self.given(name)
        if value is None:
            return min(int(self.defaulted(name)), maximum)
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

    @_collected
    def fraction(self, name: str, *, maximum: float, meaning: str) -> float:
        """A number above 0 and at most `maximum`."""
        value = self.defaulted(name)
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not 0 < number <= maximum:  # also refuses nan
            raise ConfigError(f"{name} must be a number above 0 and at most {maximum} ({meaning}), got {value!r}")
        return number

    @_collected
    def money(self, name: str, *, minimum: Decimal, maximum: Decimal, decimals: int) -> Decimal:
        """A dollar amount within the range its column holds, checked before anything runs."""
        value = self.defaulted(name)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ConfigError(f"{name} must be a dollar amount like 5.00, got {value!r}") from None
        exponent = amount.as_tuple().exponent  # an int for a finite amount
        if (not amount.is_finite() or not minimum <= amount <= maximum
                or (isinstance(exponent, int) and exponent < -decimals)):
            raise ConfigError(f"{name} must be a positive dollar amount from {minimum} to {maximum} "
                              f"(at most {decimals} decimals), got {value!r}")
        return amount

    @_collected
    def decimal(self, name: str, *, minimum: Decimal | int, maximum: Decimal | int) -> Decimal:
        """A number from `minimum` to `maximum` inclusive (points, a share)."""
        value = self.defaulted(name)
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ConfigError(f"{name} must be a number from {minimum} to {maximum}, got {value!r}") from None
        if not number.is_finite() or not Decimal(minimum) <= number <= Decimal(maximum):
            raise ConfigError(f"{name} must be a number from {minimum} to {maximum}, got {value!r}")
        return number

    @_collected
    def boolean(self, name: str) -> bool:
        value = self.defaulted(name)
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    @_collected
    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.defaulted(name).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    @_collected
    def url(self, name: str, *, secret: bool = False) -> str | None:
        value = self.given(name)
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            shown = "" if secret else f", got {value!r}"
            raise ConfigError(f"{name} must be an http(s):// URL{shown}")
        return value.rstrip("/")

    @_collected
    def path(self, name: str) -> Path:
        """A file; a relative path starts at the project root."""
        value = self.defaulted(name)
        path = Path(value)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if not path.is_file():
            raise ConfigError(f"{name} points to {value!r}, which is not a readable file")
        return path

    def directory(self, name: str) -> Path:
        """A directory: a given path is taken as it is; the default is under the project root."""
        value = self.given(name)
        return Path(value) if value is not None else PROJECT_ROOT / self.defaulted(name)

    @_collected
    def prices(self, name: str) -> dict[str, dict[str, Decimal]]:
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
                # NaN fails both comparisons; Infinity and 1e308 fail the second.
                if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price <= PRICE_MAX:
                    raise ConfigError(f"{name}: {model!r} {kind} price must be a non-negative number of USD per "
                                      f"1M tokens, at most {PRICE_MAX}, got {json.dumps(price)[:40]}")
                parsed[kind] = Decimal(str(price))
            parsed.setdefault("cached_input", parsed["input"])
            prices[model] = parsed
        return prices
