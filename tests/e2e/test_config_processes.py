"""Settings as processes meet them: the CLI stopped by a misconfigured cap or price before
anything runs, and the CLI naming a variable outside the priority order as ignored."""
from lib.config import PROJECT_ROOT
from tests.unit.test_config import settings


def test_a_misconfigured_cap_or_price_stops_the_cli_before_anything_runs(tmp_path):
    import subprocess
    import sys

    from tests.conftest import child_env

    for name, value in (("KILL_SWITCH_THRESHOLD_USD", "10000000"), ("MODEL_PRICES", '{"gpt-4o": {"input": NaN, '
                                                                                     '"output": 1}}')):
        env = child_env(LLM_PROVIDER="simulated", EMBEDDED_DB_DIR=tmp_path / "never-created", **{name: value})
        result = subprocess.run([sys.executable, "-m", "lib", "train"], cwd=PROJECT_ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and result.stderr.startswith(f"error: {name}"), result.stderr
        assert result.stderr.count("\n") == 1
        assert not (tmp_path / "never-created").exists(), "nothing ran: no database was even started"


def test_a_variable_outside_the_priority_order_is_named_as_ignored(pg_server):
    from tests.conftest import fresh_database
    from tests.e2e.test_cli import run_cli

    url = fresh_database(pg_server, "ignored_vars_test")
    result = run_cli("migrate", db_url=url, extra_env={"DATABASE_URL": "postgresql://nowhere.invalid:1/x"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("warning: DATABASE_URL is set but ignored: this project reads USE_LOCAL_DB=true "
                             "with LOCAL_DB_URL\n")
    assert settings(LOCAL_DB_URL="postgresql://elsewhere/db").ignored == (
        "LOCAL_DB_URL is set but ignored: it is used only with USE_LOCAL_DB=true",)
