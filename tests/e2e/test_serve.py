"""`python -m lib serve` from outside: idle connections are closed, a client that goes away is one
JSON log line (never a traceback), SIGTERM stops the embedded PostgreSQL it started, and the
`--cron` loop fires what is due."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import requests

from devtools.fakes.receiver import Receiver
from devtools.harness import Output
from lib.config import PROJECT_ROOT
from tests.conftest import SECRET, child_env, free_port, seed_personas, wait_until

AUTH = {"Authorization": f"Bearer {SECRET}"}


def start(env: dict, *options: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lib", "serve", "--port", str(port), *options],
                               cwd=PROJECT_ROOT, env=child_env(**env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    process.banner = process.stdout.readline()
    assert process.banner.startswith("serving on"), process.banner
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen) -> list[str]:
    process.terminate()
    out, _ = process.communicate(timeout=30)
    return out.splitlines()


def reset_on_close(sock: socket.socket) -> None:
    """Close with a TCP reset, as a client that crashed or was killed does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def test_idle_and_half_sent_connections_are_closed_and_the_server_keeps_answering(base_env, db):
    process, url = start(base_env, "--idle-timeout", "1")
    try:
        idle = [socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) for _ in range(40)]
        for index, sock in enumerate(idle):
            if index % 2:
                sock.sendall(b"POST /api/cron/train HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            sock.setblocking(False)
        assert requests.get(f"{url}/api/cron/train", timeout=10).status_code == 401, "still answering"
        wait_until(lambda: all(closed_by_server(sock) for sock in idle), timeout=20,
                   message="the server kept idle connections open")
        for sock in idle:
            sock.close()
        # A body that never arrives: 408, not a wait without end.
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=20) as slow:
            slow.sendall(f"POST /api/cron/train HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\n"
                         "Content-Length: 100\r\n\r\n{\"batch".encode())
            assert slow.recv(65536).startswith(b"HTTP/1.0 408 ")
    finally:
        lines = stop(process)
    assert not any("Traceback" in line for line in lines), lines
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 0


def test_a_client_that_goes_away_is_one_json_line(base_env, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    process, url = start({**base_env, "MAX_TRAINING_EXECUTION_TIME_MS": "3000", "NEXT_PUBLIC_APP_URL": None})
    port = int(url.rsplit(":", 1)[1])
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        # A first batch warms the process, so the next one's battles start at once.
        requests.post(f"{url}/api/cron/train", json={"batchSize": 1}, headers=AUTH, timeout=60)
        fake_openai.hang_all = True  # the next batch runs to its deadline while its client is gone
        # Gone before its request line is complete; before its body arrived; before its answer.
        for data in (b"GET /api/cron/tr",
                     f"POST /api/cron/train HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\n"
                     "Content-Length: 100\r\n\r\n{".encode(),
                     f"POST /api/cron/train HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\n"
                     "Content-Length: 0\r\n\r\n".encode()):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(data)
            if data.endswith(b"\r\n\r\n"):
                wait_until(lambda: db.execute("select count(*) from sandbox_battles b join training_runs r on "
                                              "r.id = b.run_id where r.status = 'running'").fetchone()[0],
                           timeout=20, message="the second batch did not start")
            reset_on_close(sock)
        wait_until(lambda: db.execute("select count(*) from training_runs where status <> 'running'"
                                      ).fetchone()[0] == 2, timeout=30, message="the batch was not recorded")
        assert requests.get(f"{url}/api/cron/train", timeout=10).status_code == 401, "still answering"
        # The batch is recorded before its answer is sent: the third line comes only then.
        wait_until(lambda: len(output.containing('"client_disconnected"')) >= 3, timeout=30,
                   message="a client_disconnected line for each client that went away")
    finally:
        process.terminate()
        process.wait(timeout=30)
        lines = output.until_closed(timeout=10)
    assert not any("Traceback" in line or not line.startswith(("{", "warning: ")) for line in lines), lines
    gone = [json.loads(line) for line in lines if '"client_disconnected"' in line]
    assert len(gone) == 3, lines
    [sending] = [line for line in gone if line["during"] == "sending the response"]
    assert sending["path"] == "/api/cron/train", gone
    assert db.execute("select status from training_runs order by started_at desc").fetchone()[0] == "timed_out", \
        "the batch is recorded whatever happened to its client"


def test_sigterm_stops_the_embedded_postgres_that_serve_started():
    data_dir = PROJECT_ROOT / ".data" / "pg-serve-sigterm-test"
    shutil.rmtree(data_dir, ignore_errors=True)
    process, url = start({"CRON_SECRET": SECRET, "LLM_PROVIDER": "simulated", "EMBEDDED_DB_DIR": data_dir})
    try:
        postmaster = int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        assert process_alive(postmaster)
        answer = requests.get(f"{url}/api/cron/scout-scan", headers=AUTH, timeout=30)
        assert "schema not applied" in answer.json()["message"], "served from the embedded database"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0
        wait_until(lambda: not process_alive(postmaster), timeout=20, message="PostgreSQL still running after SIGTERM")
    finally:
        process.kill()
        if "postmaster" in locals() and process_alive(postmaster):
            os.kill(postmaster, signal.SIGINT)
        shutil.rmtree(data_dir, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_the_cron_loop_fires_what_is_due_with_the_bearer_and_stops(monkeypatch, capsys):
    from lib.serve import run_crons

    monkeypatch.setenv("CRON_SECRET", SECRET)
    receiver = Receiver()
    stopping = threading.Event()
    crons = [{"path": "/api/cron/train", "schedule": "* * * * *"},  # due every minute
             {"path": "/api/cron/never", "schedule": "0 0 31 2 *"}]  # 31 February
    loop = threading.Thread(target=run_crons, args=(receiver.server.server_address[1], crons, stopping))
    loop.start()
    printed = []
    try:
        wait_until(lambda: printed.append(capsys.readouterr().out) or "cron /api/cron/train: 200" in "".join(printed),
                   timeout=20, message="the due cron was not fired")
    finally:
        stopping.set()
        loop.join(5)
        receiver.stop()
    assert not loop.is_alive(), "the loop stops when asked"
    calls = receiver.received
    assert 1 <= len(calls) <= 2 and {call["path"] for call in calls} == {"/api/cron/train"}, calls
    assert calls[0]["method"] == "GET" and calls[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert calls[0]["headers"]["User-Agent"] == "vercel-cron/1.0"


def test_serve_cron_starts_the_loop_beside_the_server(base_env, db):
    process, url = start(base_env, "--cron")
    try:
        assert requests.get(f"{url}/api/cron/train", timeout=10).status_code == 401
    finally:
        stop(process)
    assert process.banner.rstrip().endswith(", crons on)"), process.banner


def stop_and_read(process: subprocess.Popen) -> list[str]:
    """`stop`, keeping what `readline` already buffered past the banner (communicate reads the raw pipe)."""
    process.terminate()
    out = process.stdout.read()
    process.wait(timeout=30)
    return out.splitlines()


def test_serve_says_at_start_up_what_will_not_work_and_every_bad_setting_at_once(tmp_path):
    process, url = start({"LLM_PROVIDER": "simulated", "MAX_CONCURRENT_RUNS": "x", "KILL_SWITCH_THRESHOLD_USD": "-1",
                          "DATABASE_URL": "postgresql://nowhere.invalid/x", "EMBEDDED_DB_DIR": tmp_path / "unused"})
    try:
        answer = requests.get(f"{url}/api/cron/scout-scan", timeout=30)
    finally:
        lines = stop_and_read(process)
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 3, lines
    assert "MAX_CONCURRENT_RUNS must be a whole number" in warnings[0]
    assert "KILL_SWITCH_THRESHOLD_USD must be a positive dollar amount" in warnings[0]
    assert warnings[1].startswith("warning: CRON_SECRET is not set: /api/cron/* refuse every call")
    assert warnings[2].startswith("warning: ADMIN_PASSWORD is not set")
    assert answer.status_code == 500


def test_serve_warns_of_an_ignored_variable_and_a_missing_openai_key(base_env, db):
    env = {**base_env, "ADMIN_PASSWORD": "pw", "DATABASE_URL": "postgresql://nowhere.invalid/x"}
    env.pop("OPENAI_API_KEY"), env.pop("NEXT_PUBLIC_APP_URL")
    process, url = start(env)
    try:
        requests.get(f"{url}/api/cron/scout-scan", timeout=30)  # answered once the start-up lines are out
    finally:
        lines = stop_and_read(process)
    assert [line for line in lines if line.startswith("warning: ")] == [
        "warning: DATABASE_URL is set but ignored: this project reads USE_LOCAL_DB=true with LOCAL_DB_URL",
        "warning: no OpenAI key (SANDBOX_OPENAI_API_KEY or OPENAI_API_KEY) and LLM_PROVIDER is not simulated: "
        "/api/cron/train fails (set LLM_PROVIDER=simulated for offline runs)"], lines


def test_the_readme_try_it_locally_commands_run_a_batch(db, database_url, psycopg_store):
    """The README's serve line, with its variables as written (… filled in), and its curl: a 200."""
    import re

    readme = (PROJECT_ROOT / "README.md").read_text()
    line = re.search(r"Try it locally: `((?:\w+=\S+ )+)\S*python -m lib serve`", readme)
    assert line, "the README's Try it locally line"
    env = dict(assignment.split("=", 1) for assignment in line.group(1).split())
    env = {name: (SECRET if value == "…" else value) for name, value in env.items()}
    curl = re.search(r"curl -X POST \$URL(\S+) .*-d '(\{.*\})'", readme)
    seed_personas(psycopg_store, 2)
    process, url = start({**env, "USE_LOCAL_DB": "true", "LOCAL_DB_URL": database_url,
                          "DELAY_BETWEEN_BATTLES_MS": "0"})
    try:
        answer = requests.post(f"{url}{curl.group(1)}", data=curl.group(2), timeout=120,
                               headers={**AUTH, "Content-Type": "application/json"})
    finally:
        stop_and_read(process)
    assert answer.status_code == 200, answer.text
