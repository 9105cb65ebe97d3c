"""Settings: the database priority order and a clear error for each kind of bad value."""
import re
from decimal import Decimal

import pytest

from lib.config import PROJECT_ROOT, SETTINGS, ConfigError, Settings, _Env, admin_password, cron_secret


def settings(**env):
    return Settings.from_env(env)


def test_defaults_match_the_docs():
    s = settings()
    assert (s.batch_size, s.max_batch_size, s.max_execution_ms) == (5, 10, 50_000)
    assert (s.max_concurrent_battles, s.delay_between_battles_ms, s.max_concurrent_runs) == (3, 1000, 1)
    assert s.cost_cap_usd == Decimal("5.00")
    assert (s.battle_max_turns, s.max_tokens_per_turn, s.scout_threshold) == (10, 300, 95)
    assert (s.closer_model, s.persona_model, s.referee_model, s.scout_model) == (
        "gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini")
    assert s.llm_provider == "openai"


SUPABASE = {"SANDBOX_SUPABASE_SERVICE_ROLE_KEY": "service-key"}


@pytest.mark.parametrize("env, kind, url", [
    ({}, "embedded", None),
    ({"USE_LOCAL_DB": "true"}, "psycopg", "postgresql://localhost:5432/sandbox"),
    ({"USE_LOCAL_DB": "1", "LOCAL_DB_URL": "postgresql://u@db:5433/x"}, "psycopg", "postgresql://u@db:5433/x"),
    ({"USE_LOCAL_DB": "true", "SUPABASE_SANDBOX_URL": "https://a.supabase.co", **SUPABASE},
     "psycopg", "postgresql://localhost:5432/sandbox"),
    ({"USE_LOCAL_DB": "false", "SUPABASE_SANDBOX_URL": "https://a.supabase.co", **SUPABASE},
     "postgrest", "https://a.supabase.co"),
    ({"SUPABASE_SANDBOX_URL": "https://a.supabase.co", "SANDBOX_SUPABASE_URL": "https://b.supabase.co",
      "NEXT_PUBLIC_SUPABASE_URL": "https://c.supabase.co", **SUPABASE}, "postgrest", "https://a.supabase.co"),
    ({"SANDBOX_SUPABASE_URL": "https://b.supabase.co", "NEXT_PUBLIC_SUPABASE_URL": "https://c.supabase.co",
      **SUPABASE}, "postgrest", "https://b.supabase.co"),
    ({"NEXT_PUBLIC_SUPABASE_URL": "https://c.supabase.co/", **SUPABASE}, "postgrest", "https://c.supabase.co"),
    ({"SUPABASE_SANDBOX_URL": "  ", "NEXT_PUBLIC_SUPABASE_URL": "https://c.supabase.co", **SUPABASE},
     "postgrest", "https://c.supabase.co"),
])
def test_database_priority(env, kind, url):
    database = settings(**env).require_database()
    assert (database.kind, database.url) == (kind, url)


def test_postgrest_url_and_key():
    database = settings(SUPABASE_SANDBOX_URL="https://a.supabase.co", **SUPABASE).require_database()
    assert database.rest_url == "https://a.supabase.co/rest/v1"
    assert database.service_role_key == "service-key"
    assert "service-key" not in repr(database)


def test_on_vercel_without_a_database_is_an_error():
    s = settings(VERCEL="1")
    with pytest.raises(ConfigError, match=r"^Database not configured"):
        s.require_database()


def test_supabase_url_without_service_key_names_the_key():
    with pytest.raises(ConfigError, match="SANDBOX_SUPABASE_SERVICE_ROLE_KEY"):
        settings(SUPABASE_SANDBOX_URL="https://a.supabase.co",
                 SANDBOX_SUPABASE_ANON_KEY="anon").require_database()


@pytest.mark.parametrize("name, value, message", [
    ("TRAINING_BATCH_SIZE", "five", "TRAINING_BATCH_SIZE must be a whole number, got 'five'"),
    ("TRAINING_BATCH_SIZE", "0", "TRAINING_BATCH_SIZE must be at least 1"),
    ("TRAINING_BATCH_SIZE", "11", "TRAINING_BATCH_SIZE must be at most MAX_TRAINING_BATCH_SIZE (10)"),
    ("MAX_TRAINING_BATCH_SIZE", "-1", "MAX_TRAINING_BATCH_SIZE must be at least 1"),
    ("MAX_TRAINING_EXECUTION_TIME_MS", "1.5", "MAX_TRAINING_EXECUTION_TIME_MS must be a whole number"),
    ("MAX_CONCURRENT_BATTLES", "0", "MAX_CONCURRENT_BATTLES must be at least 1"),
    ("DELAY_BETWEEN_BATTLES_MS", "-5", "DELAY_BETWEEN_BATTLES_MS must be at least 0"),
    ("MAX_CONCURRENT_RUNS", "x", "MAX_CONCURRENT_RUNS must be a whole number"),
    ("KILL_SWITCH_THRESHOLD_USD", "lots", "KILL_SWITCH_THRESHOLD_USD must be a dollar amount"),
    ("KILL_SWITCH_THRESHOLD_USD", "-1", "KILL_SWITCH_THRESHOLD_USD must be a positive dollar amount"),
    ("KILL_SWITCH_THRESHOLD_USD", "NaN", "KILL_SWITCH_THRESHOLD_USD must be a positive dollar amount"),
    ("BATTLE_MAX_TURNS", "1000", "BATTLE_MAX_TURNS must be at most 100"),
    ("MAX_TOKENS_PER_TURN", "abc", "MAX_TOKENS_PER_TURN must be a whole number"),
    ("SCOUT_BREAKTHROUGH_THRESHOLD", "101", "SCOUT_BREAKTHROUGH_THRESHOLD must be at most 100"),
    ("USE_LOCAL_DB", "maybe", "USE_LOCAL_DB must be true or false"),
    ("LLM_PROVIDER", "anthropic", "LLM_PROVIDER must be one of openai, simulated"),
    ("OPENAI_BASE_URL", "localhost:8080", "OPENAI_BASE_URL must be an http(s):// URL"),
    ("NEXT_PUBLIC_APP_URL", "example.com", "NEXT_PUBLIC_APP_URL must be an http(s):// URL"),
    ("CLOSER_PROMPT_PATH", "/no/such/prompt.md", "CLOSER_PROMPT_PATH points to '/no/such/prompt.md'"),
    ("MODEL_PRICES", "{not json", "MODEL_PRICES is not valid JSON"),
    ("MODEL_PRICES", "[1, 2]", "MODEL_PRICES must be a JSON object"),
    ("MODEL_PRICES", '{"m": {"input": 1}}', "MODEL_PRICES: 'm' needs \"input\" and \"output\" prices"),
    ("MODEL_PRICES", '{"m": {"input": -1, "output": 2}}', "MODEL_PRICES: 'm' input price must be a non-negative"),
    ("MODEL_PRICES", '{"m": {"input": 1, "output": 2, "extra": 3}}', "MODEL_PRICES: 'm' has unknown keys"),
])
def test_bad_values_name_the_variable(name, value, message):
    with pytest.raises(ConfigError) as err:
        settings(**{name: value})
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("value", ["10000000", "0.0000001", "0.001", "10000.01", "Infinity", "-Infinity", "sNaN",
                                   "0.0100001"])
def test_the_cost_cap_is_refused_outside_the_range_its_column_holds(value):
    with pytest.raises(ConfigError) as err:
        settings(KILL_SWITCH_THRESHOLD_USD=value)
    assert str(err.value) == (f"KILL_SWITCH_THRESHOLD_USD must be a positive dollar amount from 0.01 to 10000 "
                              f"(at most 6 decimals), got {value!r}")


@pytest.mark.parametrize("value", ["0.01", "10000", "1e3", "0.015"])
def test_the_cost_cap_range_is_inclusive(value):
    assert settings(KILL_SWITCH_THRESHOLD_USD=value).cost_cap_usd == Decimal(value)


@pytest.mark.parametrize("price, shown", [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"),
                                          ("1e308", "1e+308"), ("1e400", "Infinity"), ("10001", "10001")])
def test_model_prices_that_break_the_arithmetic_are_refused(price, shown):
    with pytest.raises(ConfigError) as err:
        settings(MODEL_PRICES=f'{{"m": {{"input": 1, "output": {price}}}}}')
    assert str(err.value) == (f"MODEL_PRICES: 'm' output price must be a non-negative number of USD per 1M tokens, "
                              f"at most 10000, got {shown}")


@pytest.mark.parametrize("key, named", [
    ("sb_publishable_AbCdEf0123456789", "a publishable key (sb_publishable_…)"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIn0.c2ln", "the anon key (a JWT whose role is anon)"),
])
def test_a_public_supabase_key_is_refused_at_start_up_without_echoing_it(key, named):
    s = settings(SUPABASE_SANDBOX_URL="https://a.supabase.co", SANDBOX_SUPABASE_SERVICE_ROLE_KEY=key)
    with pytest.raises(ConfigError) as err:
        s.require_database()
    assert str(err.value).startswith(f"SANDBOX_SUPABASE_SERVICE_ROLE_KEY holds {named}, which the tables refuse")
    assert key not in str(err.value)


@pytest.mark.parametrize("key", ["sb_secret_AbCdEf0123456789",
                                 "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2ln", "eyJnot.a.jwt"])
def test_secret_and_service_role_keys_are_taken(key):
    s = settings(SUPABASE_SANDBOX_URL="https://a.supabase.co", SANDBOX_SUPABASE_SERVICE_ROLE_KEY=key)
    assert s.require_database().service_role_key == key


def test_local_db_url_must_be_postgres():
    with pytest.raises(ConfigError, match="LOCAL_DB_URL must be a postgresql:// URL"):
        settings(USE_LOCAL_DB="true", LOCAL_DB_URL="mysql://x")


def test_secret_urls_are_never_echoed():
    with pytest.raises(ConfigError) as err:
        settings(SLACK_WEBHOOK_URL="hooks.slack.com/services/T000/B000/SECRETSECRET")
    assert "SLACK_WEBHOOK_URL" in str(err.value) and "SECRET" not in str(err.value)


def test_openai_key_priority_and_requirement():
    assert settings(SANDBOX_OPENAI_API_KEY="sk-a", OPENAI_API_KEY="sk-b").require_openai_key() == "sk-a"
    assert settings(OPENAI_API_KEY="sk-b").require_openai_key() == "sk-b"
    with pytest.raises(ConfigError, match="SANDBOX_OPENAI_API_KEY"):
        settings().require_openai_key()
    assert settings(LLM_PROVIDER="simulated").require_openai_key() == ""


def test_model_prices_add_and_default_cached_to_input():
    prices = settings(MODEL_PRICES='{"my-model": {"input": 1.5, "output": 6}}').model_prices
    assert prices["my-model"] == {"input": Decimal("1.5"), "output": Decimal("6"), "cached_input": Decimal("1.5")}


def test_secrets_are_not_in_repr():
    s = settings(CRON_SECRET="cron-secret-value", OPENAI_API_KEY="sk-secret", ADMIN_PASSWORD="pw-secret",
                 SLACK_WEBHOOK_URL="https://hooks.slack.test/T/B/secret-path")
    text = repr(s)
    for secret in ("cron-secret-value", "sk-secret", "pw-secret", "secret-path"):
        assert secret not in text


def test_the_secrets_readers_read_only_their_variable_and_blank_is_unset():
    malformed = {"TRAINING_BATCH_SIZE": "lots", "USE_LOCAL_DB": "maybe"}
    assert cron_secret({**malformed, "CRON_SECRET": "  s3cret \n"}) == "s3cret"
    assert admin_password({**malformed, "ADMIN_PASSWORD": " pw "}) == "pw"
    for blank in ("", "   ", "\t\n"):
        assert cron_secret({"CRON_SECRET": blank}) is None
        assert admin_password({"ADMIN_PASSWORD": blank}) is None
    assert settings(CRON_SECRET=" s3cret ").cron_secret == "s3cret", "Settings reads it through the same reader"


def test_only_registered_variables_can_be_read():
    with pytest.raises(KeyError, match=r"NOT_A_SETTING is not in lib\.config\.SETTINGS"):
        _Env({}).given("NOT_A_SETTING")
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)


def test_the_environment_is_read_only_in_lib_config():
    """Every setting goes through lib/config.py; `serve` only writes the database it started."""
    for path in sorted((PROJECT_ROOT / "lib").rglob("*.py")):
        if path.name == "config.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b(os\.environ|getenv)\b", line) and not re.match(r'\s*os\.environ\["\w+"\] = ', line):
                raise AssertionError(f"{path.relative_to(PROJECT_ROOT)}:{number} reads the environment: use lib.config")


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(ConfigError) as err:
        settings(MAX_CONCURRENT_RUNS="x", KILL_SWITCH_THRESHOLD_USD="-1", DAILY_BUDGET_USD="abc",
                 USE_LOCAL_DB="maybe")
    assert str(err.value).startswith("4 settings are wrong:\n")
    assert [p.split(" ")[0] for p in err.value.problems] == ["USE_LOCAL_DB", "MAX_CONCURRENT_RUNS",
                                                            "KILL_SWITCH_THRESHOLD_USD", "DAILY_BUDGET_USD"]
