"""The embedded PostgreSQL launcher: starts on demand, shares a running server, recovers a stale
pid file, and only the process that started a server stops it."""
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
