"""EventHub's processes as ``make up`` runs them (web, the pipeline worker, webhook workers, beat),
pointed at the fault suite's own services; each can be SIGKILLed and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.chaos.services import ROOT, OwnServices, free_port

BIN = Path(sys.executable).parent

# What the suite changes from the defaults, and why:
STACK_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "eventhub.settings",
    "DJANGO_DEBUG": "true",
    "LOG_FORMAT": "plain",
    "LOG_LEVEL": "INFO",
    # the receiver listens on loopback, and nothing else may be reached
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_EGRESS_NETWORKS": "127.0.0.0/8",
    # a killed webhook worker's claims lapse after this plus the request's timeout: short, so
    # a test sees the sweeper take them back in seconds rather than a minute (the outage
    # tests use the default: their recovery must not depend on a short lease)
    "WEBHOOK_LEASE_SECONDS": "10",
    "KAFKA_PARTITIONS": "4",
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
    "PIPELINE_LAG_CHECK_SECONDS": "2",
    "PIPELINE_IN_WORKER": "false",
    "WORKER_METRICS_PORT": "0",
    "OTEL_ENABLED": "false",
    # the producer sends batches as fast as it can: the suite is about losses, not throttling
    "THROTTLE_PUBLISH_RATE": "100000/s",
    "THROTTLE_READ_RATE": "100000/s",
    "DEMO_RECEIVER_PORT": "0",
}


def process_env(services: OwnServices, **extra: str) -> dict[str, str]:
    env = {**os.environ, **STACK_SETTINGS, **services.env, **extra}
    # the suite's own pytest settings must not leak into the stack
    for name in ("TEST_KAFKA_TOPIC_EVENTS", "TEST_PIPELINE_GROUP_ID", "TEST_MONGO_DB"):
        env.pop(name, None)
    return env


def manage(services: OwnServices, *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(services),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"manage.py {args[0]}: {result.stdout[-2000:]}{result.stderr[-4000:]}")
    return result.stdout


# Run by ``manage.py shell``: the event type, one subscription per receiver path, a writer key.
SCENE = """
import json
from accounts.services import api_key_create
from events.models import EventType
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import subscription_add_secret

spec = json.loads({spec!r})
EventType.objects.update_or_create(
    name=spec["type"],
    defaults={{"schema": {{"type": "object", "required": ["n"],
                          "properties": {{"n": {{"type": "integer"}}}}}},
              "example": {{"n": 1}}}},
)
subscriber = Subscriber.objects.create(name="chaos " + spec["tag"])
ids = {{}}
for path in spec["paths"]:
    subscription = Subscription.objects.create(
        subscriber=subscriber, name=path, url=spec["base"] + path,
        event_types=[spec["type"]], timeout_seconds=spec["timeout"],
        **spec.get("fields", {{}}),
    )
    subscription_add_secret(subscription=subscription)
    ids[path] = subscription.pk
print(json.dumps({{"key": api_key_create(name="chaos " + spec["tag"], role="writer")[1],
                  "subscriptions": ids}}))
"""


def scene(
    services: OwnServices,
    *,
    tag: str,
    event_type: str,
    base_url: str,
    paths: list[str],
    timeout: int = 5,
    fields: dict | None = None,
) -> dict:
    spec = {
        "tag": tag,
        "type": event_type,
        "base": base_url,
        "paths": paths,
        "timeout": timeout,
        "fields": fields or {},
    }
    out = manage(services, "shell", "-c", SCENE.format(spec=json.dumps(spec)))
    return json.loads(out.strip().splitlines()[-1])


class Stack:
    """web, ``pipelines`` pipeline workers, ``webhook_workers`` webhook workers and beat."""

    def __init__(
        self,
        services: OwnServices,
        workdir: Path,
        *,
        pipelines: int = 1,
        webhook_workers: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.services = services
        self.workdir = workdir
        self.web_port = free_port()
        self.extra_env = extra_env or {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, list[str]] = {}
        celery = [str(BIN / "celery"), "-A", "eventhub"]
        self.commands["web"] = [
            str(BIN / "gunicorn"),
            "eventhub.wsgi",
            *("--bind", f"127.0.0.1:{self.web_port}", "--workers", "2", "--threads", "4"),
            *("--config", str(ROOT / "gunicorn.conf.py"), "--config", "python:eventhub.gunicorn"),
        ]
        for n in range(pipelines):
            self.commands[f"pipeline{n}"] = [
                *celery,
                *("worker", "--pipeline", "--pool", "solo", "--queues", "default"),
                *("--without-gossip", "--without-mingle", "--loglevel", "INFO"),
                *("--hostname", f"chaos-default-{n}-{uuid.uuid4().hex[:6]}@localhost"),
            ]
        for n in range(webhook_workers):
            self.commands[f"webhooks{n}"] = [
                *celery,
                *("worker", "--pool", "threads", "--concurrency", "8", "--queues", "webhooks"),
                *("--without-gossip", "--without-mingle", "--loglevel", "INFO"),
                *("--hostname", f"chaos-webhooks-{n}-{uuid.uuid4().hex[:6]}@localhost"),
            ]
        self.commands["beat"] = [
            *celery,
            *("beat", "--loglevel", "INFO", "--schedule", str(workdir / "celerybeat-schedule")),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, name: str | None = None) -> Stack:
        for each in [name] if name else list(self.commands):
            env = process_env(self.services, SERVICE_NAME=f"eventhub-{each}", **self.extra_env)
            if each == "web":  # its workers share their metrics through files
                env["PROMETHEUS_MULTIPROC_DIR"] = str(self.workdir / "web-metrics")
            log = open(self.workdir / f"{each}.log", "ab")  # noqa: SIM115 - closed with the process
            self.processes[each] = subprocess.Popen(
                self.commands[each],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes its children too
            )
            log.close()
        if name in (None, "web"):
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes["web"].poll() is not None:
                raise AssertionError(f"web exited: {self.log('web')}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=3) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"web not ready after {timeout:.0f} s: {self.log('web')}")

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children: no shutdown, no flush, no ack."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, process in self.processes.items():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill(name)
