"""Naming a process so that another one can tell, later, whether it is still there.

A process is named "host pid start-time" (the start time in clock ticks since boot, from
/proc/PID/stat), so a pid reused by another process is not mistaken for it. Only processes of this
host can be checked; on any other host (or on a system without /proc) nothing is known.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time (/proc/PID/stat field 22), or None when there is no such process."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat_line.rsplit(")", 1)[1].split()[19]


def identity() -> str:
    """This process: "host pid start-time"."""
    return f"{socket.gethostname()} {os.getpid()} {start_time(os.getpid())}"


def gone(named: str | None) -> bool:
    """True only when `named` is a process of this host that no longer runs."""
    try:
        host, pid, started = (named or "").split(" ")
        pid_number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname() or not Path("/proc/self/stat").exists():
        return False
    return start_time(pid_number) != started
