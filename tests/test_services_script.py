"""scripts/services.sh: really starts, reports and stops the services, idempotently."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "services.py"


def services(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_status_reports_the_four_services_running():
    result = services("status")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("postgres", "redis", "mongodb", "kafka"):
        assert f"{name}" in result.stdout
    assert result.stdout.count(" running at ") == 4


def test_a_second_start_changes_nothing():
    before = services("status").stdout
    result = services("start")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started at" not in result.stdout  # nothing new was launched
    assert services("status").stdout == before


def test_an_unknown_service_name_is_refused():
    result = services("start", "cassandra")
    assert result.returncode == 2
    assert "unknown service(s): cassandra" in result.stderr


def test_a_port_taken_by_another_program_is_reported(tmp_path, free_port):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port))
        squatter.listen()
        result = services(
            "start",
            "kafka",
            env={
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port}",
                "EVENTHUB_SERVICES_DIR": str(tmp_path),
            },
        )
    assert result.returncode == 1
    assert f"port {free_port} on 127.0.0.1 is taken by something that is not kafka" in result.stdout


def other_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("name", "variable", "url"),
    [
        ("kafka", "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:{port}"),
        ("mongodb", "MONGO_URL", "mongodb://127.0.0.1:{port}/?replicaSet=rs0"),
    ],
)
def test_start_and_stop_a_throwaway_instance(tmp_path, free_port, name, variable, url):
    env = {
        variable: url.format(port=free_port),
        "EVENTHUB_SERVICES_DIR": str(tmp_path),
        "KAFKA_CONTROLLER_PORT": str(other_free_port()),
    }
    try:
        started = services("start", name, env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"started at 127.0.0.1:{free_port}" in started.stdout
        pid = int((tmp_path / f"{name}.pid").read_text())

        again = services("start", name, env=env)
        assert f"started here, pid {pid}" in again.stdout

        status = services("status", name, env=env)
        assert status.returncode == 0 and " running at " in status.stdout
    finally:
        stopped = services("stop", name, env=env)
    assert f"stopped (pid {pid})" in stopped.stdout
    down = services("status", name, env=env)
    assert down.returncode == 1 and " down at " in down.stdout
    assert not (tmp_path / f"{name}.pid").exists()


def test_postgres_files_belong_to_the_user_it_runs_as():
    """As root, the cluster runs as ``postgres``, which must own its data and write its log."""
    if os.geteuid() != 0:
        pytest.skip("only root starts PostgreSQL as another user")
    sys.path.insert(0, str(ROOT / "scripts"))
    import pwd

    import services as script

    service = script.Postgres()
    if not service.owned_pid():
        pytest.skip("this PostgreSQL was not started by scripts/services.py")
    postgres = pwd.getpwnam("postgres").pw_uid
    assert service.dir.stat().st_uid == postgres
    assert (service.dir / "data").stat().st_uid == postgres
    assert service.log_file.stat().st_uid == postgres
    assert "database system is ready to accept connections" in service.log_file.read_text()


def test_stop_leaves_alone_what_it_did_not_start(tmp_path):
    result = services("stop", "postgres", "redis", env={"EVENTHUB_SERVICES_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.count("not started here; left alone") == 2
    assert services("status", "postgres", "redis").returncode == 0


def test_a_kafka_cluster_id_never_looks_like_an_option(monkeypatch):
    """The id is passed to Kafka's storage tool on its command line: one starting with "-"
    made the format fail (one first start in 64)."""
    import base64
    import importlib

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    module = importlib.import_module("services")
    ids = [module.kafka_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
