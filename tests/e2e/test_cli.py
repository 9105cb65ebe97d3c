"""The CLI as a user runs it: a real process against a real database."""
import subprocess
import sys

import psycopg
import pytest

from lib.cli import COMMANDS
from lib.config import PROJECT_ROOT
from lib.personas import CATALOG
from tests.conftest import child_env, fresh_database


def run_cli(*args, db_url, extra_env=None):
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=db_url, **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_migrate_twice_then_generate_personas_twice_leaves_one_row_each(pg_server):
    url = fresh_database(pg_server, "cli_test")
    for args in (["migrate"], ["migrate"], ["generate-personas"], ["generate-personas"]):
        result = run_cli(*args, db_url=url)
        assert result.returncode == 0, result.stderr
    assert f"0 inserted, 0 updated, {len(CATALOG)} unchanged" in result.stdout
    with psycopg.connect(url) as conn:
        rows = conn.execute("select name, count(*) from sandbox_personas group by name").fetchall()
    assert sorted(name for name, _ in rows) == sorted(p["name"] for p in CATALOG)
    assert all(count == 1 for _, count in rows)


def test_pause_status_resume(database_url, db):
    assert run_cli("pause", "--reason", "weekend", db_url=database_url).stdout.strip() == "training paused: weekend"
    assert '"paused": true' in run_cli("status", db_url=database_url).stdout
    assert run_cli("resume", db_url=database_url).returncode == 0
    assert db.execute("select paused from training_control").fetchone()[0] is False


def test_errors_are_one_line_and_non_zero(pg_server, database_url):
    bad = run_cli("status", db_url=database_url, extra_env={"TRAINING_BATCH_SIZE": "lots"})
    assert bad.returncode == 1
    assert bad.stderr == "error: TRAINING_BATCH_SIZE must be a whole number, got 'lots'\n"

    empty = fresh_database(pg_server, "cli_unmigrated")
    missing = run_cli("status", db_url=empty)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: schema not applied: run python -m lib migrate")
    assert missing.stderr.count("\n") == 1


def test_every_command_has_help():
    for command in sorted(COMMANDS):
        result = subprocess.run([sys.executable, "-m", "lib", command, "--help"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True)
        assert result.returncode == 0 and "usage: python -m lib " + command in result.stdout


def test_train_simulate_on_a_fresh_data_dir_completes_and_prints_its_summary():
    import shutil

    data_dir = PROJECT_ROOT / ".data" / "pg-cli-train-test"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = child_env(EMBEDDED_DB_DIR=data_dir, USE_LOCAL_DB="true", LOCAL_DB_URL="postgresql://nowhere:1/x",
                    DELAY_BETWEEN_BATTLES_MS=100, BATTLE_MAX_TURNS=3)
    try:
        result = subprocess.run([sys.executable, "-m", "lib", "train", "--simulate", "--batch-size", "2"],
                                cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("run ") and "(simulated LLM)" in line for line in lines)
    assert "status         completed" in result.stdout
    assert "battles        2 started, 2 completed" in result.stdout
    assert sum(1 for line in lines if " done " in line) >= 2, "plain progress lines when not a terminal"


def test_train_refuses_clearly_when_paused(database_url, db):
    db.execute("insert into sandbox_personas (name, persona_type, system_prompt) values ('P', 't', 'You are P.')")
    db.execute("update training_control set paused = true, reason = 'budget review'")
    result = run_cli("train", db_url=database_url, extra_env={"LLM_PROVIDER": "simulated"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: Training paused: budget review (resume with python -m lib resume")


def test_train_rejects_a_bad_batch_size():
    result = subprocess.run([sys.executable, "-m", "lib", "train", "--batch-size", "0"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--batch-size: must be at least 1, got 0" in result.stderr


def test_train_on_a_terminal_draws_a_live_bar(database_url, db, fake_openai):
    import os
    import pty

    from lib.store.psycopg import PsycopgStore
    from tests.conftest import seed_personas

    store = PsycopgStore(database_url)
    seed_personas(store, 2)
    store.close()
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=fake_openai.base_url, BATTLE_MAX_TURNS=1, DELAY_BETWEEN_BATTLES_MS=0)
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "2"], cwd=PROJECT_ROOT,
                               env=env, stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(60)
    os.close(leader)
    text = output.decode()
    assert process.returncode == 0
    assert "\r[" in text and "2/2 battles" in text and "left" in text
    assert " done " not in text, "a terminal gets the bar, not the plain lines"


def test_train_exits_non_zero_when_every_battle_failed(database_url, db, fake_openai):
    from lib.store.psycopg import PsycopgStore
    from tests.conftest import seed_personas

    store = PsycopgStore(database_url)
    seed_personas(store, 2)
    store.close()
    fake_openai.fail_next("500", count=1000)
    result = run_cli("train", "--batch-size", "2", db_url=database_url,
                     extra_env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url,
                                "DELAY_BETWEEN_BATTLES_MS": "0"})
    assert result.returncode == 1, result.stdout
    assert "status         failed\n" in result.stdout
    assert "error          no battle completed: 2 failed (the first: gpt-4o: HTTP 500 after 3 attempts)\n" \
        in result.stdout


def test_train_clamps_a_batch_size_past_2_to_the_31(database_url, db, fake_openai):
    from lib.store.psycopg import PsycopgStore
    from tests.conftest import seed_personas

    store = PsycopgStore(database_url)
    seed_personas(store, 2)
    store.close()
    result = run_cli("train", "--batch-size", str(2**31), db_url=database_url, extra_env={
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url, "BATTLE_MAX_TURNS": "1",
        "DELAY_BETWEEN_BATTLES_MS": "0", "MAX_TRAINING_BATCH_SIZE": "2"})
    assert result.returncode == 0, result.stderr
    assert "battles        2 started, 2 completed" in result.stdout
    assert db.execute("select requested_batch_size, batch_size from training_runs").fetchone() == (2**31 - 1, 2)


def test_serve_refuses_a_bad_or_busy_port_in_one_line(tmp_path):
    import socket

    for port in ("99999", "-5"):
        result = subprocess.run([sys.executable, "-m", "lib", "serve", "--port", port], cwd=PROJECT_ROOT,
                                env=child_env(USE_LOCAL_DB="true", LOCAL_DB_URL="postgresql://nowhere:1/x"),
                                capture_output=True, text=True, timeout=60)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == f"error: port {port} is not a port number: use 0 to 65535 (0 picks a free one)\n"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        # No database configured: the embedded one would start, but only once the port is ours.
        result = subprocess.run([sys.executable, "-m", "lib", "serve", "--port", str(busy)], cwd=PROJECT_ROOT,
                                env=child_env(EMBEDDED_DB_DIR=tmp_path / "pg"), capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert result.stderr == (f"error: port {busy} is already in use: stop what holds it or pick another with "
                             "--port (0 picks a free one)\n")
    assert not (tmp_path / "pg").exists(), "nothing was started"


def test_a_version_past_the_sql_integer_and_unstorable_text_are_refused_before_the_database(database_url, db):
    big = run_cli("rollback", "2147483648", db_url=database_url)
    assert big.returncode == 2 and ("argument VERSION_ID: 2147483648 is past the largest version number "
                                    "(2147483647): no such version") in big.stderr
    # An argument with a byte that is not UTF-8 arrives as a lone surrogate (os.fsdecode).
    for args in (("pause", "--reason", "weekend\udcff"), ("promote", "00000000-0000-0000-0000-000000000001",
                                                          "--tactic", "Name it\udcff")):
        refused = run_cli(*args, db_url=database_url)
        assert refused.returncode == 2 and "contains a lone surrogate" in refused.stderr, refused.stderr
    assert db.execute("select paused from training_control").fetchone()[0] is False


@pytest.mark.parametrize("reason, problem", [("lunch\x00", "NUL"), ("lunch\ud800", "lone surrogate")])
def test_text_psycopg_refuses_before_sending_is_a_refusal_of_the_data(psycopg_store, db, reason, problem):
    from lib.store import Rejected
    from lib.store.queries import Queries

    with pytest.raises(Rejected, match=problem):
        Queries(psycopg_store).set_paused(True, reason)
    assert Queries(psycopg_store).pause_state()["paused"] is False, "the connection is still good"
    assert db.execute("select paused from training_control").fetchone()[0] is False
def test_train_names_its_provider_and_models_agrees_on_spend_and_says_what_next(db, database_url, fake_openai):
    """An OPENAI_API_KEY in the shell and LLM_PROVIDER unset: real (here, fake) calls, said first."""
    import re

    from lib.store.psycopg import PsycopgStore
    from tests.conftest import seed_personas

    store = PsycopgStore(database_url)
    seed_personas(store, 2)
    store.close()
    result = run_cli("train", "--batch-size", "2", db_url=database_url, extra_env={
        "OPENAI_API_KEY": "sk-test-key", "OPENAI_BASE_URL": fake_openai.base_url, "DELAY_BETWEEN_BATTLES_MS": "0",
        "BATTLE_MAX_TURNS": "2", "MAX_TOKENS_PER_TURN": "64", "REFEREE_AUDIT_SHARE": "0"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"LLM: the OpenAI-compatible server at {fake_openai.base_url} (OPENAI_BASE_URL): closer "
                        "gpt-4o, sellers gpt-4o-mini, referee gpt-4o, scout gpt-4o-mini. Real calls that cost money: "
                        "at most $5.00 this batch (KILL_SWITCH_THRESHOLD_USD); LLM_PROVIDER=simulated runs offline "
                        "for free")
    progress = [line for line in lines if " done " in line]
    last_spent = re.search(r"\$(\d+\.\d+) of", progress[-1]).group(1)
    [spend] = [line for line in lines if line.startswith("spend")]
    assert re.search(r"\$(\d+\.\d+) of", spend).group(1) == last_spent, (progress[-1], spend)
    assert ("scout: 0 processed (2 new completed battles: none scored 95 or more (SCOUT_BREAKTHROUGH_THRESHOLD) and "
            "none was picked for a referee audit (REFEREE_AUDIT_SHARE 0)), 0 new breakthroughs, 0 alerted") in lines
    assert lines[-1].startswith("next: python -m lib serve (with ADMIN_PASSWORD set) and open "
                                "http://127.0.0.1:3000/admin/training-monitor; python -m lib status")


def test_the_summary_names_billed_spend_that_no_battle_recorded():
    import io

    from lib.progress import print_summary
    from lib.store.queries import BatchSummary

    batch: BatchSummary = {"runId": "r", "status": "completed", "battlesStarted": 1, "battlesCompleted": 1, "battlesFailed": 0,
                           "battlesTimedOut": 0, "battlesKilled": 0, "averageScore": 80.0, "breakthroughs": 0,
                           "totalCost": 0.0, "costCap": 5.0, "durationMs": 1000, "errors": []}
    out = io.StringIO()
    print_summary(batch, out, billed=0.0114)
    assert ("spend          $0.000000 of $5.00 cap (billed $0.011400: $0.011400 of it in calls not recorded on a "
            "battle)\n") in out.getvalue()


def test_status_last_run_is_camel_case(db, database_url):
    import json
    import re

    from lib.store.psycopg import PsycopgStore
    from tests.conftest import seed_personas

    store = PsycopgStore(database_url)
    seed_personas(store, 1)
    store.close()
    assert run_cli("train", "--batch-size", "1", db_url=database_url,
                   extra_env={"LLM_PROVIDER": "simulated", "DELAY_BETWEEN_BATTLES_MS": "0"}).returncode == 0
    last = json.loads(run_cli("status", db_url=database_url).stdout)["lastRun"]
    assert last["status"] == "completed" and last["battlesCompleted"] == 1
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", key) for key in last), sorted(last)
