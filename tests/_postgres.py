"""A throwaway PostgreSQL cluster for the test suite, and raw access for tamper tests.

Registered from ``tests/conftest.py`` (``pytest_plugins``). The first test that
asks for PostgreSQL starts one cluster for the pytest process (each xdist
worker starts its own: no coordination to get wrong); the session's end stops
and removes it. Nothing here skips: when the cluster cannot start, every test
that needs it errors with the reason, so the run fails.

The cluster is Debian's ``postgresql`` server (``initdb`` / ``pg_ctl`` on PATH or
under ``/usr/lib/postgresql/*/bin``), run as an unprivileged user when the tests
run as root (``initdb`` refuses root), listening on 127.0.0.1 on a free port with
its sockets in its own temporary folder. Each test gets a fresh database,
copied from a template that already holds the migrated schema: measured on a
busy 2-CPU machine, a copy takes 0.1-0.2 s, migrating an empty database 0.4-0.5 s.

``CHARTER_TEST_BACKENDS`` picks the backends the multi-backend suites run on:
``sqlite,postgresql`` (the default, and what CI runs) or either one alone.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

__all__ = [
    "ALL_BACKENDS",
    "Cluster",
    "RawDatabase",
    "raw_database",
    "reap_orphans",
    "selected_backends",
]

ALL_BACKENDS = ("sqlite", "postgresql")
BACKENDS_ENV = "CHARTER_TEST_BACKENDS"
SUPERUSER = "postgres"
TEMPLATE_DB = "charter_template"
# Waits for server start; a loaded CI machine can take a while to run initdb.
START_TIMEOUT_S = 120


def selected_backends() -> list[str]:
    """The backends named by ``CHARTER_TEST_BACKENDS`` (default: every backend).

    Raises:
        pytest.UsageError: when it names an unknown backend or none.
    """
    raw = os.environ.get(BACKENDS_ENV, ",".join(ALL_BACKENDS))
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_BACKENDS))
    if unknown or not names:
        raise pytest.UsageError(
            f"{BACKENDS_ENV}={raw!r}: name one or more of {', '.join(ALL_BACKENDS)}"
        )
    return [name for name in ALL_BACKENDS if name in names]


# -- the cluster ------------------------------------------------------------------------


class ClusterError(Exception):
    """PostgreSQL could not be set up; the message says why."""


def _find_bindir() -> Path:
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
        "/usr/lib/postgresql/*/bin: install Debian's `postgresql` package "
        "(`make services` does), or run only SQLite with CHARTER_TEST_BACKENDS=sqlite"
    )


def _unprivileged() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs a program as an unprivileged user, and its ids.

    ``initdb`` refuses to run as root; the ``postgres`` user the Debian package
    creates is the natural choice, ``nobody`` the fallback.
    """
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
        if shutil.which("setpriv"):
            ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
            return ["setpriv", *ids, "--"], user.pw_uid, user.pw_gid
        raise ClusterError("running as root, but neither runuser nor setpriv is available")
    raise ClusterError("running as root, and there is no `postgres` or `nobody` user to run as")


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_ROOT_PREFIX = "charter-pg-"
_OWNER = "owner.pid"  # the pid of the process that made the cluster


def reap_orphans() -> None:
    """Stop and remove clusters whose maker died without stopping them.

    A killed pytest (SIGKILL, a CI timeout) never reaches the session's end:
    its server would run on, holding memory and a port, until the machine
    restarts. A cluster whose maker is alive, or that names no maker, is left.
    """
    for root in Path(tempfile.gettempdir()).glob(f"{_ROOT_PREFIX}*"):
        try:
            owner = int((root / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # names no maker (yet): not ours to judge
        try:
            os.kill(owner, 0)
            continue  # the maker is alive
        except ProcessLookupError:
            pass
        except OSError:
            continue  # alive, or unknowable: leave it
        try:  # the postmaster's pid is the first line of its pid file
            postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown
        except (OSError, ValueError, IndexError):
            pass  # not running any more
        shutil.rmtree(root, ignore_errors=True)


class Cluster:
    """A running throwaway cluster: superuser ``postgres``, trust auth, loopback only."""

    def __init__(self) -> None:
        self.bindir = _find_bindir()
        self.prefix, uid, gid = _unprivileged()
        reap_orphans()
        self.root = Path(tempfile.mkdtemp(prefix=_ROOT_PREFIX))
        (self.root / _OWNER).write_text(str(os.getpid()))
        if uid is not None and gid is not None:
            os.chown(self.root, uid, gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        self._template_ready = False

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Run ``initdb`` and start the server.

        Raises:
            ClusterError: when either fails (the message carries the server log).
        """
        # Trust auth on a loopback-only, throwaway cluster: there is no secret to
        # protect and no password to leak. Text sorts by the ICU en-US collation,
        # as a typical production database's does (not by code point, as SQLite
        # and the C locale do), so code that relies on ORDER BY text fails here.
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--locale-provider=icu", "--icu-locale=en-US",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        # Another process may take the free port between our look and the bind.
        for attempt in range(3):
            self.port = _free_port()
            # fsync and friends off: the cluster lives for one test run and is
            # thrown away, so durability buys nothing and costs seconds.
            options = [
                "-c listen_addresses=127.0.0.1", f"-p {self.port}",
                f"-c unix_socket_directories={shlex.quote(str(self.root))}",
                "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                "-c max_connections=200",
            ]  # fmt: skip
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                    "-t", str(START_TIMEOUT_S), "-o", " ".join(options), "start",
                )  # fmt: skip
                return
            except ClusterError:
                if attempt == 2 or "could not bind" not in self._log_tail():
                    raise

    def stop(self) -> None:
        """Stop the server at once (nothing in it is worth a clean shutdown) and remove it."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [*self.prefix, str(self.bindir / program), *args]
        try:
            done = subprocess.run(
                command,
                cwd=self.root,  # the unprivileged user may not enter the caller's folder
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S + 30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterError(f"`{shlex.join(command)}` failed: {exc}") from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            log = self._log_tail()
            raise ClusterError(
                f"`{shlex.join(command)}` exited with {done.returncode}:\n{output}"
                + (f"\n--- server log ---\n{log}" if log else "")
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- databases ---------------------------------------------------------------
    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` in this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit superuser connection (for CREATE/DROP DATABASE and tampering)."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )

    def create_database(self, *, template: str = "template0") -> str:
        """Create a new, uniquely named database copied from ``template``; return its name."""
        name = f"charter_test_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open to it."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrated_database(self) -> str:
        """A new database with Charter's schema at head (copied from a template)."""
        if not self._template_ready:
            from charter.store import Store

            with self.admin() as conn:
                conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}" TEMPLATE template0')
            store = Store(self.url(TEMPLATE_DB))
            try:
                store.migrate()
            finally:
                store.close()  # a template must have no connections when copied
            self._template_ready = True
        return self.create_database(template=TEMPLATE_DB)


def start_cluster() -> Cluster:
    """Start a cluster, or fail the requesting test with the reason (never skip).

    Raises:
        pytest.fail.Exception: when PostgreSQL cannot start.
    """
    cluster = None
    try:
        cluster = Cluster()
        cluster.start()
        return cluster
    except ClusterError as exc:
        reason = str(exc)
    if cluster is not None:
        cluster.stop()
    pytest.fail(f"PostgreSQL cannot start: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The process's throwaway PostgreSQL cluster, started on first use."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[str]:
    """URL of a fresh database holding Charter's migrated (empty) schema."""
    name = pg_cluster.migrated_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def pg_empty_database(pg_cluster: Cluster) -> Iterator[str]:
    """URL of a fresh, empty database (for migration tests)."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): the test is about SQLite itself; runs on the sqlite backend only",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Drop the postgresql instance of ``sqlite_only`` tests (the SQLite one still runs)."""
    kept = []
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        params = getattr(item, "callspec", None)
        if marker and params is not None and params.params.get("backend") == "postgresql":
            if not marker.kwargs.get("reason") and not marker.args:
                raise pytest.UsageError(f"{item.nodeid}: sqlite_only needs a reason")
            continue
        kept.append(item)
    items[:] = kept


# -- raw database access, as an attacker (or a careful admin) would have it --------------


class RawDatabase:
    """A DB-API connection to a registry's database with ``?`` placeholders on both backends.

    Tamper tests write SQL once; on PostgreSQL the placeholders become ``%s``.
    ``Error`` is the driver's base error class.
    """

    def __init__(self, conn: Any, *, backend: str) -> None:
        self.conn = conn
        self.backend = backend
        self.Error: type[Exception] = (
            sqlite3.DatabaseError if backend == "sqlite" else psycopg.DatabaseError
        )

    def _sql(self, sql: str) -> str:
        if self.backend == "sqlite":
            return sql
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; return the cursor (``fetchone``, ``rowcount``…)."""
        if self.backend == "sqlite":
            return self.conn.execute(sql, tuple(params))
        return self.conn.execute(self._sql(sql), tuple(params) or None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""
        if self.backend == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)

    def trigger_names(self) -> set[str]:
        """Names of the user-defined triggers in the database."""
        if self.backend == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {row[0] for row in self.execute(sql).fetchall()}

    def drop_triggers(self) -> None:
        """Drop every immutability trigger, and stop enforcing foreign keys.

        SQLite's plain connection enforces no foreign keys (``PRAGMA foreign_keys``
        is off by default); on PostgreSQL a superuser gets the same with
        ``session_replication_role = replica``, which skips the internal triggers
        that check them.
        """
        if self.backend == "sqlite":
            for name in self.trigger_names():
                self.execute(f'DROP TRIGGER "{name}"')
            return
        rows = self.execute(
            "SELECT t.tgname, c.relname FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
        ).fetchall()
        for name, table in rows:
            self.execute(f'DROP TRIGGER "{name}" ON "{table}"')
        self.execute("SET session_replication_role = replica")

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def _connect(url: str) -> RawDatabase:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return RawDatabase(sqlite3.connect(parsed.database or ":memory:"), backend="sqlite")
    conn = psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        dbname=parsed.database,
        password=parsed.password,
    )
    return RawDatabase(conn, backend="postgresql")


@contextmanager
def raw_database(
    url: str, *, drop_triggers: bool = True, commit: bool = True
) -> Iterator[RawDatabase]:
    """A raw connection to the database at ``url``.

    Args:
        url: the registry's database URL (``Settings.resolved_database_url``).
        drop_triggers: drop the immutability triggers first (an attacker with raw
            access can); False leaves them in place to show they refuse changes.
        commit: commit when the block succeeds (else everything is rolled back).
    """
    db = _connect(url)
    try:
        if drop_triggers:
            db.drop_triggers()
        yield db
        if commit:
            db.commit()
        else:
            db.rollback()
    finally:
        db.close()
