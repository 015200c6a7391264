"""The fault suite's own PostgreSQL, Redis, MongoDB and Kafka: started by scripts/services.py on
free ports under a temporary ``EVENTHUB_SERVICES_DIR``, so that a test can stop, restart, kill
or freeze any of them without touching the services the rest of the suite (or a running stack)
uses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.stack import ROOT, free_port

SERVICES_SCRIPT = ROOT / "scripts" / "services.py"
NAMES = ("postgres", "redis", "mongodb", "kafka")


class OwnServices:
    """The four services of one fault suite run. ``env`` points a process at them."""

    def __init__(self) -> None:
        # a folder the postgres system user can reach (it runs the cluster when we are root)
        self.folder = Path(tempfile.mkdtemp(prefix="eventhub-chaos-"))
        self.folder.chmod(0o755)
        self.ports = {name: free_port() for name in (*NAMES, "kafka-controller")}
        self.database = "eventhub_chaos"
        redis_url = f"redis://127.0.0.1:{self.ports['redis']}/0"
        self.env = {
            "EVENTHUB_SERVICES_DIR": str(self.folder),
            "DATABASE_URL": (
                f"postgresql://postgres@127.0.0.1:{self.ports['postgres']}/{self.database}"
            ),
            "REDIS_URL": redis_url,
            "CACHE_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "MONGO_URL": f"mongodb://127.0.0.1:{self.ports['mongodb']}/?replicaSet=rs0",
            "MONGO_DB": "eventhub_chaos",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.ports['kafka']}",
            "KAFKA_CONTROLLER_PORT": str(self.ports["kafka-controller"]),
        }

    def run(self, action: str, *names: str) -> str:
        result = subprocess.run(
            [sys.executable, str(SERVICES_SCRIPT), action, *names],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise AssertionError(f"services.py {action} {names}: {result.stdout}{result.stderr}")
        return result.stdout

    def start(self, *names: str) -> None:
        self.run("start", *(names or NAMES))

    def stop(self, *names: str) -> None:
        self.run("stop", *(names or NAMES))

    def pid(self, name: str) -> int:
        return int((self.folder / f"{name}.pid").read_text().strip())

    def freeze(self, name: str) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (unreachable, not gone)."""
        os.kill(self.pid(name), signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        os.kill(self.pid(name), signal.SIGCONT)

    def ensure_up(self) -> None:
        """Start whatever an earlier test left stopped or frozen."""
        for name in NAMES:
            pid_file = self.folder / f"{name}.pid"
            if pid_file.exists():
                try:
                    os.kill(self.pid(name), signal.SIGCONT)
                except (ProcessLookupError, ValueError):
                    pass
        self.start()

    def close(self) -> None:
        for name in NAMES:
            try:
                self.thaw(name)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
        try:
            self.stop()
        finally:
            time.sleep(0.5)
            shutil.rmtree(self.folder, ignore_errors=True)
