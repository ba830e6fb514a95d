"""Throwaway PostgreSQL and Redis servers for the suite (Debian's packages; `make test` installs them).

Each server listens on a free loopback port with its data in a temp dir and is
stopped (and the dir removed) at the end. ``DATABASE_URL`` / ``REDIS_URL`` in
the environment are used instead when given. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user the package made.

``PostgresServer.fresh_database()`` makes an empty, migrated database per test
(``CREATE DATABASE ... TEMPLATE``: a copy of a migrated template, milliseconds).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: run `make install-dev` (it installs postgresql)")
    return path


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _wait_for_port(port: int, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {START_TIMEOUT} s")


class PostgresServer:
    """A PostgreSQL server of the suite's own (or the one ``DATABASE_URL`` names)."""

    def __init__(self, url: str | None = None, durable: bool = False):
        self.given = url
        self.url = url or ""
        self.durable = durable  # False (the suite): no fsync, as a test needs no crash safety
        self.dir: Path | None = None
        self.port = 0
        self._template = f"goose_template_{uuid.uuid4().hex[:8]}"

    def start(self) -> "PostgresServer":
        if not self.given:
            self._start_own()
        try:
            self._make_template()
        except BaseException:
            self.stop()  # never leave a server of ours running behind a failed start
            raise
        return self

    def _start_own(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="goose-pg-"))
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(data), "-U", "goose", "-A", "trust",
                                     "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        self.port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
                   "-c max_connections=300 -c shared_buffers=32MB")
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"),
                                     "-o", options, "-w", "-t", str(int(START_TIMEOUT)), "start"]),
                       check=True, capture_output=True)
        self.url = f"postgresql://goose@127.0.0.1:{self.port}/postgres"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def _make_template(self) -> None:
        from goose_api.postgres import migrate
        from goose_api.postgres.db import Database

        self._admin(f"CREATE DATABASE {self._template}")
        db = Database(self._database_url(self._template), min_size=0, max_size=1).open()
        try:
            migrate.migrate(db)
        finally:
            db.close()

    def _database_url(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def fresh_database(self, migrated: bool = True) -> str:
        """The URL of a new empty database (with the schema, unless ``migrated`` is False)."""
        name = f"goose_test_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {self._template}" if migrated else ""))
        return self._database_url(name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def restart(self) -> None:
        """Stop and start the suite's own server (its data kept): an outage of a moment."""
        assert self.dir is not None, "only the suite's own server can be restarted"
        data = self.dir / "data"
        # -l: the restarted server writes to its log, not to our pipes (run() would wait for them forever)
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"),
                                     "-m", "fast", "-w", "-t", str(int(START_TIMEOUT)), "restart"]),
                       check=True, capture_output=True, timeout=2 * START_TIMEOUT)

    def cut_off(self, url: str) -> None:
        """An outage of one database: its connections are ended and new ones refused until ``reconnect``."""
        name = urlsplit(url).path.lstrip("/")
        self._admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        self._admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")

    def reconnect(self, url: str) -> None:
        self._admin(f"ALTER DATABASE {urlsplit(url).path.lstrip('/')} ALLOW_CONNECTIONS true")

    def stop(self) -> None:
        if self.dir is None:
            try:
                self._admin(f"DROP DATABASE IF EXISTS {self._template}")
            except Exception:
                pass
            return
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w",
                                     "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


class RedisServer:
    """A Redis server of the suite's own (or the one ``REDIS_URL`` names)."""

    def __init__(self, url: str | None = None):
        self.given = url
        self.url = url or ""
        self.dir: Path | None = None
        self.port = 0
        self._process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        if self.given:
            return self
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise RuntimeError("redis-server is not installed: run `make install-dev` (it installs redis-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="goose-redis-"))
        self.port = free_port()
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, "redis-server", self._process)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        return self

    def pause(self) -> None:
        """Stop the suite's own server, keeping its port (Redis away for a moment; its data is not kept)."""
        assert self._process is not None, "only the suite's own server can be paused"
        self._process.terminate()
        self._process.wait(10)
        self._process = None

    def resume(self) -> None:
        """Start it again on the same port, empty (a Redis without persistence after a restart)."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, "redis-server", self._process)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def start_postgres(durable: bool = False) -> PostgresServer:
    """The suite's PostgreSQL: ``DATABASE_URL``'s server when set, else a throwaway one (``durable``: with
    fsync and synchronous commits, as a real server: for benchmarks)."""
    return PostgresServer(os.environ.get("DATABASE_URL") or None, durable).start()


def start_redis() -> RedisServer:
    """The suite's Redis: ``REDIS_URL``'s server when set, else a throwaway one."""
    return RedisServer(os.environ.get("REDIS_URL") or None).start()
