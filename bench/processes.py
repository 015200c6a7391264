"""The benchmarks' own environment and the processes the delivery benchmarks (P4-P6) start.

Importing this module sets, unless already set, the environment that keeps a benchmark off
the development stack's and the tests' data: database ``eventhub_bench``, MongoDB database
``eventhub_bench``, Redis database 14 for the Celery broker and the caches, and loopback
webhook URLs allowed. The Celery workers, the pipeline consumer and the receivers started here
inherit it; each is stopped with SIGTERM (then SIGKILL) by ``stop``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from figures import SERVICE_COMMANDS, _machine_ticks, cpu_seconds, machine_busy  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent

ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "eventhub.settings",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/eventhub_bench",
    "MONGO_DB": "eventhub_bench",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "LOG_LEVEL": "WARNING",
}
for _name, _value in ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
# The run's own queue for ``deliver`` tasks: a worker someone else points at the same broker
# database (queue ``webhooks``) cannot take the benchmark's tasks, nor the benchmark theirs.
QUEUE = os.environ.setdefault("BENCH_WEBHOOKS_QUEUE", f"bench-webhooks-{uuid.uuid4().hex[:8]}")


def route_deliveries_to_bench_queue() -> None:
    """Send this process's ``deliver`` tasks to ``QUEUE`` (call after ``django.setup()``)."""
    from django.conf import settings

    # Celery reads its configuration from the Django settings (``CELERY_*``) when first used
    settings.CELERY_TASK_ROUTES = {"webhooks.tasks.deliver": {"queue": QUEUE}}


# the started processes' output, for when a run goes wrong
LOGS = Path(tempfile.gettempdir()) / f"eventhub-{QUEUE}"


def spawn(name: str, argv: list[str], **env: str) -> subprocess.Popen:
    """Start a process in the benchmark's environment (plus ``env``), output to a log file."""
    LOGS.mkdir(exist_ok=True)
    log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM (a Celery worker finishes its tasks), then SIGKILL after ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def webhooks_worker(index: int, *, threads: int, **env: str) -> subprocess.Popen:
    """A delivery worker as ``make up`` starts it (a thread pool), on the run's queue."""
    argv = [str(BIN / "celery"), "-A", "eventhub", "worker", "--loglevel", "WARNING"]
    argv += ["--pool", "threads", "--concurrency", str(threads), "--queues", QUEUE]
    argv += ["--hostname", f"bench-webhooks-{index}@%h"]
    return spawn(f"webhooks-{index}", argv, **env)


def pipeline_consumer(
    *, batch_timeout_ms: int, fetch_wait_ms: int | None = None, **env: str
) -> subprocess.Popen:
    """The pipeline consumer (``manage.py consume_events`` through ``bench/consumer.py``, which
    queues its tasks on the run's queue); with ``fetch_wait_ms``, librdkafka's
    ``fetch.wait.max.ms`` set to it (a what-if)."""
    argv = [str(BIN / "python"), str(BENCH / "consumer.py")]
    argv += ["--batch-timeout-ms", str(batch_timeout_ms)]
    if fetch_wait_ms is not None:
        argv += ["--what-if-fetch-wait-max-ms", str(fetch_wait_ms)]
    return spawn("consumer", argv, **env)


class ReceiverProcess:
    """``bench/receiver.py`` in a subprocess, with its URL and its ``/stats``."""

    def __init__(self, *, silent: bool = False) -> None:
        argv = [sys.executable, str(BENCH / "receiver.py")] + (["--silent"] if silent else [])
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base + "/stats", timeout=10) as response:
            return json.load(response)

    def receipts(self) -> dict[str, float]:
        with urllib.request.urlopen(self.base + "/receipts", timeout=10) as response:
            return json.load(response)

    def reset(self) -> None:
        request = urllib.request.Request(self.base + "/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        stop(self.process, timeout=5)


def wait_until(predicate, *, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def purge_broker_queue(queue: str = QUEUE) -> int:
    """Drop the tasks left in a queue of the benchmark's broker database."""
    import redis

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    left = client.llen(queue)
    client.delete(queue, f"_kombu.binding.{queue}")
    return int(left)


def service_cpu() -> dict[str, float]:
    """CPU seconds so far of the local services' processes, by service. For PostgreSQL only
    the backends serving the benchmark's database count (others' tests use the same server;
    measure with connections opened before). MongoDB, Redis and Kafka are shared whole."""
    database = os.environ["DATABASE_URL"].rsplit("/", 1)[-1].encode()
    totals = dict.fromkeys(SERVICE_COMMANDS, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            if name == "postgres" and database + b" " not in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        if name in totals:
            totals[name] += cpu_seconds(int(entry.name))
    return totals


class CpuWindow:
    """CPU use over a stretch of time: the machine's (share of all cores busy) and that of
    the benchmark's own processes (share of one core), to tell how much others took."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.ticks = _machine_ticks()
        self.cpu = sum(cpu_seconds(pid) for pid in pids)

    def stop(self) -> tuple[float, float]:
        seconds = time.monotonic() - self.started
        total, idle = _machine_ticks()
        busy = 1 - (idle - self.ticks[1]) / max(1, total - self.ticks[0])
        ours = (sum(cpu_seconds(pid) for pid in self.pids) - self.cpu) / seconds
        return busy, ours


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def remove_run_data(subscriber, type_name: str) -> None:
    """Delete what a run made: its subscriber's deliveries and attempts (plain SQL: the ORM
    would load them first), the subscriber, the event type and its stored events; then purge
    the run's task queue. Needs Django set up."""
    from django.db import connection

    from core import mongo
    from events.models import EventType
    from webhooks.models import Delivery, DeliveryAttempt

    ids = list(subscriber.subscriptions.values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {DeliveryAttempt._meta.db_table} a USING {Delivery._meta.db_table} d "
            "WHERE a.delivery_id = d.id AND d.subscription_id = ANY(%s)",
            [ids],
        )
        cursor.execute(
            f"DELETE FROM {Delivery._meta.db_table} WHERE subscription_id = ANY(%s)", [ids]
        )
    subscriber.delete()
    EventType.objects.filter(name=type_name).delete()
    mongo.get_db()[mongo.EVENTS].delete_many({"type": type_name})
    purge_broker_queue()
