"""What every benchmark prints besides its figures, with no side effect on import: the
machine (cores, how busy before the run, versions), the CPU and memory of processes from
/proc, and the figures as one JSON line (``FIGURES {...}``) that ``bench/run.py`` collects."""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project's packages, for writer_credentials
RUN = ROOT / ".run"  # the pid files of what `make up` started
SERVICES_RUN = ROOT / ".services"  # ... and of the services scripts/services.py started
SERVICES = ("postgres", "redis", "mongodb", "kafka")
# the services' processes by their command name, where their pid files are not ours
SERVICE_COMMANDS = ("postgres", "mongod", "redis-server", "java")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> float:
    """The process's proportional set size (PSS: shared pages divided among their sharers, so
    PostgreSQL's backends do not count its shared buffers each), in MB."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0.0


def _machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4]  # total, idle + iowait


def machine_busy(seconds: float = 3.0) -> float:
    """Share of all cores busy over ``seconds`` (from /proc/stat): run before a benchmark, it
    says how much of the machine other programs were using."""
    total, idle = _machine_ticks()
    time.sleep(seconds)
    total2, idle2 = _machine_ticks()
    return 1 - (idle2 - idle) / max(1, total2 - total)


def machine() -> dict:
    """The machine as a figure needs it: cores, load and busy share before the run, versions."""
    import django
    import rest_framework

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 2),
        "busy_before": round(machine_busy(2.0), 3),
        "python": platform.python_version(),
        "django": django.__version__,
        "drf": rest_framework.__version__,
        "kernel": platform.release(),
    }


def print_machine(info: dict) -> None:
    print(
        f"machine: {info['cores']} cores, load {info['load_before']} and "
        f"{info['busy_before']:.0%} busy before the run; Python {info['python']}, "
        f"Django {info['django']}, DRF {info['drf']}"
    )


def children(pid: int) -> list[int]:
    found = []
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += [int(child), *children(int(child))]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def stack_processes() -> dict[str, list[int]]:
    """The processes `make up` started (from .run/*.pid, with their children: gunicorn's and
    Celery's workers) and the services scripts/services.py started (.services/*.pid, with
    PostgreSQL's backends), by name. Services it did not start are not counted."""
    found: dict[str, list[int]] = {}
    for folder in (RUN, SERVICES_RUN):
        for pid_file in sorted(folder.glob("*.pid")):
            try:
                pid = int(pid_file.read_text().split()[0])
            except (ValueError, IndexError):
                continue
            if Path(f"/proc/{pid}").exists():
                found[pid_file.stem] = [pid, *children(pid)]
    return found


class Watch:
    """CPU seconds and peak memory (PSS) of groups of processes over a stretch of time, found
    again every ``interval`` s by ``discover`` (PostgreSQL's backends and gunicorn's workers
    come and go): a process that starts during the window counts whole, one that ends counts
    up to its last sample. A group's memory is the sum of its processes'."""

    def __init__(self, discover, interval: float = 0.5) -> None:
        self.discover = discover
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group_of: dict[int, str] = {}
        self.peak: dict[str, float] = {}
        self.peak_by_pid: dict[int, float] = {}
        self._sample_cpu(initial=True)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample_cpu(self, *, initial: bool = False) -> dict[str, list[int]]:
        groups = self.discover()
        for name, pids in groups.items():
            for pid in pids:
                seconds = cpu_seconds(pid)
                if pid not in self.first:
                    self.first[pid] = seconds if initial else 0.0
                    self.group_of[pid] = name
                self.last[pid] = max(seconds, self.last.get(pid, 0.0))
        return groups

    def _sample(self, interval: float) -> None:
        while not self._done.wait(interval):
            groups = self._sample_cpu()
            for name, pids in groups.items():
                each = {pid: memory_mb(pid) for pid in pids}
                for pid, mb in each.items():
                    self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0.0), mb)
                self.peak[name] = max(self.peak.get(name, 0.0), sum(each.values()))

    def stop(self) -> tuple[dict[str, float], dict[str, float]]:
        """CPU seconds used and peak memory (MB), by group."""
        self._done.set()
        self._thread.join()
        self._sample_cpu()
        used: dict[str, float] = {}
        for pid, name in self.group_of.items():
            used[name] = used.get(name, 0.0) + self.last[pid] - self.first[pid]
        return used, self.peak

    def largest(self, group: str) -> float:
        """The peak memory (MB) of the group's largest process (a web worker, say)."""
        return max(
            (mb for pid, mb in self.peak_by_pid.items() if self.group_of.get(pid) == group),
            default=0.0,
        )


def writer_credentials() -> tuple[str, str, Callable[[], None]]:
    """A writer API key and a writer user's access token, and what removes both (sets Django
    up with the stack's settings)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.services import api_key_create

    stamp = int(time.time())
    api_key, key = api_key_create(name=f"bench-{stamp}", role="writer")
    user = User.objects.create_user(f"bench-{stamp}")
    user.groups.add(Group.objects.get(name="writer"))
    token = str(AccessToken.for_user(user))

    def remove() -> None:
        api_key.delete()
        user.delete()

    return key, token, remove


def emit(name: str, figures: dict) -> None:
    """The figures as one line for bench/run.py (after the human-readable lines)."""
    print("FIGURES " + json.dumps({name: figures}, default=str))
