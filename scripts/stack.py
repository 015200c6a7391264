"""Start, stop and report EventHub's own processes in the background.

    python scripts/stack.py start|stop|status

web (gunicorn on WEB_PORT, default 8000), the live streams (uvicorn on ASGI_PORT, default
8001), the Celery worker (which also runs the pipeline
consumer), the webhook delivery worker (queue ``webhooks``, a thread pool), Celery beat, the
gRPC server (GRPC_PORT, default 50051), Flower (FLOWER_PORT, default 5555) and the demo
receiver of the demo subscription (DEMO_RECEIVER_PORT, default 8002; 0: none). Each writes
``.run/<name>.log`` and ``.run/<name>.pid``; ``start`` is idempotent and waits until ``/ready``
is green, ``stop`` ends only what ``start`` started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc import ROOT, port_open, running_pid, spawn, stop_pid, wait_for  # noqa: E402

RUN = ROOT / ".run"
BIN = Path(sys.executable).parent


def load_env() -> None:
    from dotenv import load_dotenv

    load_dotenv(ROOT / ".env", override=False)


def web_port() -> int:
    return int(os.environ.get("WEB_PORT") or 8000)


def asgi_port() -> int:
    return int(os.environ.get("ASGI_PORT") or 8001)


def flower_port() -> int:
    return int(os.environ.get("FLOWER_PORT") or 5555)


def demo_receiver_port() -> int:
    value = os.environ.get("DEMO_RECEIVER_PORT")
    return 8002 if value is None or value == "" else int(value)


def processes() -> dict[str, list[str]]:
    celery = [str(BIN / "celery"), "-A", "eventhub"]
    found = {
        "web": [
            str(BIN / "gunicorn"),
            "eventhub.wsgi",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{web_port()}",
            "--workers",
            os.environ.get("WEB_WORKERS") or "2",
            # a publish mostly waits for the broker's acknowledgement: threads wait together
            "--threads",
            os.environ.get("WEB_THREADS") or "16",
            # JSON logs, and the metrics of exited workers let go (multiprocess mode)
            "--config",
            "python:eventhub.gunicorn",
        ],
        # the live streams (SSE, the events WebSocket, GraphQL subscriptions): one event loop
        "asgi": [
            str(BIN / "uvicorn"),
            "eventhub.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(asgi_port()),
            "--lifespan",
            "off",
            "--timeout-graceful-shutdown",
            "5",
        ],
        "worker": [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            # its tasks (the sweeper, the publish spool) wait on PostgreSQL and Redis: threads
            # of one process, not processes of their own (about 100 MB each)
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--queues",
            "default",
            "--hostname",
            "default@%h",
            # this worker also consumes the events topic: the pipeline bootstep
            "--pipeline",
        ],
        # webhook delivery: a thread pool whose tasks hand their batches to the process's
        # sender, which keeps every request of every batch in flight at once
        "webhooks": [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "threads",
            "--concurrency",
            os.environ.get("WEBHOOK_WORKER_THREADS") or "16",
            "--queues",
            "webhooks",
            "--hostname",
            "webhooks@%h",
        ],
        "beat": [
            *celery,
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(RUN / "celerybeat-schedule"),
        ],
        "grpc": [str(BIN / "python"), "manage.py", "grpc_server"],
        "flower": [*celery, "flower", f"--port={flower_port()}", "--address=127.0.0.1"],
    }
    if demo_receiver_port():
        # the demo subscription's endpoint (seed_demo), so a first run sees webhooks succeed
        found["receiver"] = [str(BIN / "python"), "manage.py", "demo_receiver"]
    return found


# Each Celery worker and the gRPC server serve their own Prometheus metrics (the web's
# /metrics cannot see them): (the variable naming the port, its default, what the process reads)
METRICS_PORTS = {
    "worker": ("PIPELINE_METRICS_PORT", 9101, "WORKER_METRICS_PORT"),
    "webhooks": ("WEBHOOK_METRICS_PORT", 9102, "WORKER_METRICS_PORT"),
    "grpc": ("GRPC_METRICS_PORT", 9103, "GRPC_METRICS_PORT"),
}
# the web's gunicorn workers share their metrics through files here (multiprocess mode;
# eventhub/gunicorn.py empties it at start)
WEB_METRICS_DIR = RUN / "web-metrics"


def metrics_port(name: str) -> int | None:
    if name not in METRICS_PORTS:
        return None
    variable, default, _ = METRICS_PORTS[name]
    return int(os.environ.get(variable) or default)


def process_env(name: str) -> dict[str, str]:
    """The process's environment: its name in logs, metrics and traces (``eventhub-<name>``)
    and where its metrics go."""
    env = {**os.environ, "SERVICE_NAME": f"eventhub-{name}"}
    port = metrics_port(name)
    if port:
        env[METRICS_PORTS[name][2]] = str(port)
    if name == "web":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(WEB_METRICS_DIR)
    return env


def grpc_port() -> int:
    return int(os.environ.get("GRPC_PORT") or 50051)


PORTS = {
    "web": web_port,
    "asgi": asgi_port,
    "flower": flower_port,
    "grpc": grpc_port,
    "receiver": demo_receiver_port,
}
PORT_VARIABLES = {"receiver": "DEMO_RECEIVER_PORT"}


def ready() -> tuple[bool, dict]:
    url = f"http://127.0.0.1:{web_port()}/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return True, json.load(response)
    except urllib.error.HTTPError as exc:
        return False, json.load(exc)


def start() -> int:
    RUN.mkdir(exist_ok=True)
    for name, argv in processes().items():
        pid_file, log_file = RUN / f"{name}.pid", RUN / f"{name}.log"
        pid = running_pid(pid_file)
        if pid:
            print(f"{name:<7} running (pid {pid})")
            continue
        port = PORTS.get(name)
        if port and port_open("127.0.0.1", port()):
            print(
                f"{name:<7} FAILED: port {port()} is taken by another program; "
                f"set {PORT_VARIABLES.get(name, name.upper() + '_PORT')} in .env to use another "
                "port"
            )
            return 1
        pid = spawn(argv, pid_file=pid_file, log_file=log_file, env=process_env(name))
        print(f"{name:<7} started (pid {pid}, log .run/{name}.log)")
    if not wait_for(lambda: ready()[0], timeout=60, interval=0.5):
        print("web     not ready after 60 s:")
        try:
            print(json.dumps(ready()[1], indent=2))
        except Exception as exc:  # noqa: BLE001 - report whatever went wrong
            print(f"  {exc}; see .run/web.log")
        return 1
    checks = ready()[1]["checks"]
    print("ready:  " + ", ".join(f"{n} ok ({c['latency_ms']} ms)" for n, c in checks.items()))
    return 0


def stop() -> int:
    for name in reversed(list(processes())):
        pid = running_pid(RUN / f"{name}.pid")
        if pid:
            stop_pid(pid, timeout=20)
            (RUN / f"{name}.pid").unlink(missing_ok=True)
            print(f"{name:<7} stopped (pid {pid})")
        else:
            print(f"{name:<7} not running")
    return 0


def status() -> int:
    code = 0
    for name in processes():
        pid = running_pid(RUN / f"{name}.pid")
        print(f"{name:<7} {f'running (pid {pid})' if pid else 'not running'}")
        code |= 0 if pid else 1
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args()
    load_env()
    return {"start": start, "stop": stop, "status": status}[args.action]()


if __name__ == "__main__":
    sys.exit(main())
