"""The embedded PostgreSQL launcher: starts on demand, shares a running server, recovers a stale
pid file, and the server stops when its last user leaves, whichever process started it."""
import os
import shutil
import subprocess

import psycopg
import pytest

from lib.config import PROJECT_ROOT
from lib.store.embedded import EmbeddedPostgres


@pytest.fixture
def data_dir():
    path = PROJECT_ROOT / ".data" / "pg-launcher-test"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def answers(server):
    with psycopg.connect(server.url, connect_timeout=2) as conn:
        return conn.execute("select current_database()").fetchone()[0]


def test_start_share_stop_and_recover_stale_pid_file(data_dir):
    first = EmbeddedPostgres(data_dir).start()
    try:
        assert first.started_here and answers(first) == "sandbox"
        second = EmbeddedPostgres(data_dir).start()
        assert not second.started_here and second.port == first.port
        second.stop()
        assert answers(first) == "sandbox", "a process that did not start the server must not stop it"
    finally:
        first.stop()
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    assert not pid_file.exists()

    # A crash leaves postmaster.pid behind, naming a pid that is now some other process.
    impostor = subprocess.Popen(["sleep", "60"])
    try:
        pid_file.write_text(f"{impostor.pid}\n{data_dir}\n0\n5999\n\n127.0.0.1\n0 0\nready\n")
        third = EmbeddedPostgres(data_dir).start()
        try:
            assert third.started_here and answers(third) == "sandbox"
        finally:
            third.stop()
    finally:
        impostor.kill()
        impostor.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to an unprivileged user")
def test_as_root_a_data_dir_behind_a_private_directory_still_works():
    private = PROJECT_ROOT / ".data" / "private-test"
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(parents=True)
    private.chmod(0o700)  # like /root: a clone there is out of reach of the server's user
    server = EmbeddedPostgres(private / "pg").start()
    try:
        assert answers(server) == "sandbox"
        assert private.stat().st_mode & 0o777 == 0o701, "only the search bit was added"
    finally:
        server.stop()
        shutil.rmtree(private, ignore_errors=True)


def _serve(env: dict):
    import sys

    from tests.conftest import child_env, free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "lib", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                               env=child_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def _train(env: dict, *args):
    import sys

    from tests.conftest import child_env

    return subprocess.Popen([sys.executable, "-m", "lib", "train", "--simulate", *args], cwd=PROJECT_ROOT,
                            env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _postmaster(data_dir) -> int | None:
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid) -> bool:
    from pathlib import Path

    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, TypeError):
        return False


@pytest.mark.parametrize("starter", ["train", "serve"])
def test_train_and_serve_share_the_embedded_server_whoever_started_it(data_dir, starter):
    """Whichever process starts the server exits first; the other keeps its database, and the
    server stops when the last one leaves."""
    from tests.conftest import SECRET, wait_until

    env = {"EMBEDDED_DB_DIR": data_dir, "CRON_SECRET": SECRET, "LLM_PROVIDER": "simulated",
           "DELAY_BETWEEN_BATTLES_MS": "3000"}
    auth = {"Authorization": f"Bearer {SECRET}"}
    setup = _train({**env, "DELAY_BETWEEN_BATTLES_MS": "0"}, "--batch-size", "1")  # the schema and personas
    assert setup.wait(timeout=120) == 0, setup.stdout.read()
    assert not _alive(_postmaster(data_dir)), "its only user has left"
    server = trainer = None
    try:
        if starter == "serve":
            server, url = _serve(env)
            wait_until(lambda: _answers(url, auth) == 200, timeout=60, message="serve does not answer")
            trainer = _train(env, "--batch-size", "3")
            _wait_for_a_running_run(data_dir, trainer)
            postmaster = _postmaster(data_dir)
            server.terminate()
            assert server.wait(timeout=30) == 0
            assert _alive(postmaster), "serve stopped the database under a running train"
            output = trainer.stdout.read()
            assert trainer.wait(timeout=120) == 0, output
        else:
            trainer = _train(env, "--batch-size", "3")
            _wait_for_a_running_run(data_dir, trainer)
            postmaster = _postmaster(data_dir)
            server, url = _serve(env)
            wait_until(lambda: _answers(url, auth) == 200, timeout=60, message="serve does not answer")
            output = trainer.stdout.read()
            assert trainer.wait(timeout=120) == 0, output
            assert _answers(url, auth) == 200, "serve lost its database when train exited"
            server.terminate()
            assert server.wait(timeout=30) == 0
        wait_until(lambda: not _alive(postmaster), timeout=30, message="the last user left PostgreSQL running")
    finally:
        for process in (server, trainer):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        leftover = _postmaster(data_dir)
        if leftover is not None and _alive(leftover):
            os.kill(leftover, 2)


def _wait_for_a_running_run(data_dir, trainer) -> None:
    from tests.conftest import wait_until

    wait_until(lambda: trainer.poll() is not None or _running_runs(data_dir), timeout=60,
               message="train did not start its run")
    assert trainer.poll() is None, trainer.stdout.read()


def _running_runs(data_dir) -> int:
    """Runs in progress; 0 while the server is not there or still starting. Autocommit, one
    statement: an open transaction would hold up train's migrate."""
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{_port(data_dir)}/sandbox", autocommit=True,
                             connect_timeout=2) as conn:
            return conn.execute("select count(*) from training_runs where status = 'running'").fetchone()[0]
    except (OSError, ValueError, IndexError, psycopg.Error):
        return 0


def _port(data_dir) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[3])


def _answers(url: str, auth: dict) -> int | None:
    import requests

    try:
        return requests.get(f"{url}/api/cron/scout-scan", headers=auth, timeout=30).status_code
    except requests.ConnectionError:
        return None
