"""EventHub's processes as ``make up`` runs them, started by a test with the test's settings on
free ports: the web (gunicorn, two workers sharing their metrics), the pipeline worker, the
webhook worker and the gRPC server. Used by the tests that look at the stack from outside (a
real Prometheus scraping it, traces reaching a real OTLP endpoint)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import Receiver, pipeline_env

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Stack:
    """Start with ``start()``, end with ``stop()``; ``ports`` names each process's metrics."""

    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self, name: str, **extra: str) -> dict[str, str]:
        return pipeline_env(
            SERVICE_NAME=f"eventhub-{name}",
            TEST_WEBHOOK_RECORD_IN_BACKGROUND="true",
            PIPELINE_LAG_CHECK_SECONDS="1",
            **self.extra_env,
            **extra,
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> Stack:
        celery = [str(BIN / "celery"), "-A", "eventhub", "worker", "--without-gossip"]
        metrics_dir = self.workdir / "web-metrics"  # gunicorn's settings make it
        self.ports = {name: free_port() for name in ("worker", "webhooks", "grpc")}
        self.ports["web"] = self.web_port
        self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "eventhub.wsgi",
                *("--bind", f"127.0.0.1:{self.web_port}", "--workers", "2", "--threads", "2"),
                *("--config", "python:eventhub.gunicorn"),
            ],
            self.env("web", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)),
        )
        self._spawn(
            "worker",
            [
                *celery,
                *("--pipeline", "--pool", "solo", "--queues", "default"),
                *("--hostname", f"test-default-{uuid.uuid4().hex[:6]}@localhost"),
            ],
            self.env("worker", WORKER_METRICS_PORT=str(self.ports["worker"])),
        )
        self._spawn(
            "webhooks",
            [
                *celery,
                *("--pool", "threads", "--concurrency", "4", "--queues", "webhooks"),
                *("--hostname", f"test-webhooks-{uuid.uuid4().hex[:6]}@localhost"),
            ],
            self.env("webhooks", WORKER_METRICS_PORT=str(self.ports["webhooks"])),
        )
        self._spawn(
            "grpc",
            [sys.executable, "manage.py", "grpc_server", "--port", str(self.grpc_port)],
            self.env("grpc", GRPC_METRICS_PORT=str(self.ports["grpc"])),
        )
        deadline = time.monotonic() + 60
        waiting = dict(self.ports)
        while waiting and time.monotonic() < deadline:
            for name, port in list(waiting.items()):
                if self.processes[name].poll() is not None:
                    self.stop()
                    raise AssertionError(f"{name} exited: {self.log(name)}")
                if answers(f"http://127.0.0.1:{port}/metrics"):
                    del waiting[name]
            time.sleep(0.2)
        if waiting:
            self.stop()
            raise AssertionError(f"not serving metrics after 60 s: {sorted(waiting)}")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def log_lines(self, name: str) -> list[str]:
        return (self.workdir / f"{name}.log").read_text(errors="replace").splitlines()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@dataclass
class Scene:
    """What a test of the running stack publishes through: a writer key, and a real webhook
    receiver subscribed to ``order.*``."""

    hook: Receiver
    key: str

    def publish(self, stack: Stack, data: dict, **headers: str) -> int:
        """POST one ``order.created`` event (CloudEvents JSON) to the stack's web; the status."""
        body = {
            "id": str(uuid.uuid4()),
            "source": "/stack",
            "specversion": "1.0",
            "type": "order.created",
            "data": data,
        }
        request = urllib.request.Request(
            f"{stack.url}/api/v1/events",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/cloudevents+json",
                "X-API-Key": self.key,
                **headers,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
