"""Starting, finding and stopping background processes by pid file.

Shared by ``services.py`` (PostgreSQL, Redis, MongoDB, Kafka) and ``stack.py`` (web, Celery,
Flower): each process started here has ``<name>.pid`` and ``<name>.log`` in a git-ignored state
folder, so a later ``stop`` ends exactly what was started and nothing else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def running_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process still runs; a stale file is removed."""
    pid = read_pid(pid_file)
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(argv: list[str], *, pid_file: Path, log_file: Path, env: dict | None = None) -> int:
    """Start ``argv`` in its own session, output appended to ``log_file``; write its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
            env=env,
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def stop_pid(
    pid: int, *, timeout: float = 10.0, group: bool = True, sig: int = signal.SIGTERM
) -> None:
    """Send ``sig`` (SIGTERM) to the process (its whole session when ``group``), then SIGKILL
    after ``timeout``."""

    def send(signum: int) -> None:
        try:
            if group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, signum)

    send(sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    send(signal.SIGKILL)
    while pid_alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.1)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check, *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            pass
        time.sleep(interval)
    return False
