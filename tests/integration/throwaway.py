"""Throwaway PostgreSQL and Kafka servers for outage tests: started on free loopback ports in a
scratch directory, restarted at will, removed afterwards. The shared servers others use are never
touched. They are started the way ``scripts/services.sh`` starts the shared ones (Debian's
PostgreSQL binaries run as the ``postgres`` user; Kafka's jars from ``services.sh
kafka-classpath`` in KRaft mode)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _scratch(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o755)
    return path


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own: roles ``tradeops_owner`` (owns the database) and
    ``tradeops`` (the runtime role), database ``tradeops``, as scripts/services.sh sets them up."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql (scripts/services.sh up)")
        self.bin = bins[-1].parent
        self.port = free_port()
        self.dir = _scratch("tradeops-pg-")
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.root = os.geteuid() == 0

    def _as_pg(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["runuser", "-u", "postgres", "--", *cmd] if self.root else list(cmd)
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=180)

    def url(self, user: str = "tradeops", database: str = "tradeops") -> str:
        return f"postgres://{user}:{user}@127.0.0.1:{self.port}/{database}"

    def clone(self, source: str, target: str) -> None:
        """``target``: a copy of ``source`` (CREATE DATABASE ... TEMPLATE; nobody may be connected
        to ``source``), owned by the owner role like the original."""
        sql = f'CREATE DATABASE "{target}" TEMPLATE "{source}" OWNER tradeops_owner'
        self._as_pg(str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                    "-d", "postgres", "-c", sql)  # fmt: skip

    def start(self) -> None:
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        if not self.data.exists():
            self._as_pg(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--locale=C")
            (self.data / "postgresql.auto.conf").write_text(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.dir}'\n"
                "max_connections = 100\nfsync = off\ntimezone = 'UTC'\n"
            )
            (self.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
            if self.root:
                for name in ("postgresql.auto.conf", "pg_hba.conf"):
                    shutil.chown(self.data / name, "postgres", "postgres")
            self._pg_ctl("start")
            sql = (
                "CREATE ROLE tradeops_owner LOGIN CREATEDB PASSWORD 'tradeops_owner';"
                "CREATE ROLE tradeops LOGIN PASSWORD 'tradeops';"
                "CREATE DATABASE tradeops OWNER tradeops_owner;"
            )
            for statement in sql.split(";")[:-1]:
                self._as_pg(str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                            "-d", "postgres", "-c", statement)  # fmt: skip
        else:
            self._pg_ctl("start")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._as_pg(
            str(self.bin / "pg_ctl"), action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", *extra
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self, down_for: float) -> None:
        """Stop (every connection dies), stay down ``down_for`` seconds, start again."""
        self.stop()
        time.sleep(down_for)
        self._pg_ctl("start")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_pg(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayKafka:
    """A single-node KRaft broker of its own on free ports."""

    def __init__(self) -> None:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts/services.sh"), "kafka-classpath"], capture_output=True, text=True, timeout=900
        )
        if out.returncode != 0:
            raise RuntimeError(f"no Kafka jars: {out.stderr[-1000:]}")
        self.libs = out.stdout.strip().splitlines()[-1]
        self.port, self.controller_port = free_port(), free_port()
        self.dir = _scratch("tradeops-kafka-")
        self.config = self.dir / "server.properties"
        self.log4j = self.dir / "log4j2.properties"
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str, **kwargs):
        return [
            "java",
            "-Xms128m",
            "-Xmx512m",
            f"-Dlog4j2.configurationFile={self.log4j}",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def start(self) -> None:
        if not self.config.exists():
            self.config.write_text(
                "process.roles=broker,controller\nnode.id=1\n"
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}\n"
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}\n"
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}\n"
                "inter.broker.listener.name=PLAINTEXT\ncontroller.listener.names=CONTROLLER\n"
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
                f"log.dirs={self.dir / 'data'}\nnum.partitions=1\nauto.create.topics.enable=true\n"
                "offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n"
                "transaction.state.log.min.isr=1\nshare.coordinator.state.topic.replication.factor=1\n"
                "share.coordinator.state.topic.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n"
                "offsets.topic.num.partitions=4\n"
            )
            self.log4j.write_text(
                "status = warn\nappender.f.type = File\nappender.f.name = f\n"
                f"appender.f.fileName = {self.dir / 'server.log'}\nappender.f.layout.type = PatternLayout\n"
                "appender.f.layout.pattern = [%d] %p %m (%c)%n\n"
                "rootLogger.level = WARN\nrootLogger.appenderRef.f.ref = f\n"
            )
            cluster = (
                subprocess.run(
                    self._java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(self.config)),
                capture_output=True,
                check=True,
                timeout=180,
            )
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.config)),
            stdout=open(self.dir / "kafka.out", "ab"),  # noqa: SIM115 - the broker writes to it while it lives
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 180) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"throwaway Kafka exited: {(self.dir / 'kafka.out').read_text()[-2000:]}")
            if port_answers(self.port):
                try:
                    meta = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=3)
                    if meta.brokers and meta.controller_id >= 0:
                        return
                except Exception:
                    pass
            time.sleep(0.5)
        raise RuntimeError("throwaway Kafka did not answer in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self, down_for: float) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def remove(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
