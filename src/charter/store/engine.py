"""Engine creation and migrations for SQLite and PostgreSQL.

SQLite runs in WAL mode with one writer at a time: write transactions start
with ``BEGIN IMMEDIATE`` so two processes never both read, then both try to
upgrade to a write lock (which SQLite resolves by failing one of them).

PostgreSQL gets the same discipline: a write transaction (execution option
``charter_writer``) first takes a transaction-level advisory lock, so writers
run one at a time and every read they make, including of the ledger head, sees
what the previous writer committed (READ COMMITTED takes a fresh snapshot per
statement). Check-then-insert code (``max(id) + 1``, "does this name exist?")
is therefore as safe as on SQLite, and the ledger stays linear with any number
of writer processes. Read transactions (``charter_reader``) run REPEATABLE READ,
READ ONLY: one snapshot for all their statements, as SQLite's WAL readers have,
so a verification never sees half of a concurrent write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from charter.domain.errors import InvalidInputError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["SCHEMA_HEAD", "create_store_engine", "migrate", "pending_migrations", "schema_head"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (a test holds it equal to Alembic's head). Opening
# a database that is current then needs no Alembic import, a tenth of a server's
# start-up; Alembic is imported only to migrate.
SCHEMA_HEAD = "0006_search"


def create_store_engine(
    url: str, *, synchronous: str = "NORMAL", busy_timeout_s: float = 30.0
) -> Engine:
    """Create an engine for ``url`` with Charter's connection settings.

    Args:
        url: ``sqlite:///path`` or ``postgresql+psycopg://…``.
        synchronous: SQLite ``synchronous`` pragma (``NORMAL`` or ``FULL``).
        busy_timeout_s: how long a SQLite writer waits for the write lock.

    Raises:
        InvalidInputError: when ``url`` is not a supported database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInputError(
            f"invalid database URL {url!r}: use sqlite:///PATH or postgresql+psycopg://…",
            field="database_url",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, synchronous=synchronous, busy_timeout_s=busy_timeout_s)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(url)
    raise InvalidInputError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql",
        field="database_url",
    )


_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}
WAL_CAP_PAGES = 16_384  # 64 MiB of 4 KiB pages


def _sqlite_engine(url: str, *, synchronous: str, busy_timeout_s: float) -> Engine:
    # Named parameters: prebuilt statements (store._sql) then hand their dict of
    # values to the driver as it is, instead of building a tuple per call.
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, paramstyle="named")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a committed transaction survives a process crash; only a
        # power loss may roll back the last commits. FULL survives that too.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints run in the store's WalCheckpointer thread, not inside commits;
        # the commit that takes the WAL past WAL_CAP_PAGES still runs one, which
        # bounds the file (see charter.store._wal).
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CAP_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_CAP_PAGES * 4096}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        sql = _BEGIN[conn.get_execution_options().get("sqlite_begin", "DEFERRED")]
        if conn.dispatch.before_cursor_execute:  # a statement counter sees BEGIN too
            conn.exec_driver_sql(sql)
            return
        try:  # on the driver: SQLAlchemy's execution costs more than BEGIN itself
            conn.connection.dbapi_connection.execute(sql)
        except sqlite3.Error as exc:  # wrapped as SQLAlchemy would (the store catches those)
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=conn.dialect) from exc

    return engine


# Key of the advisory lock every PostgreSQL write transaction holds ("charter" in
# ASCII). Advisory locks belong to one database, so registries in other
# databases of the same server do not wait for each other.
WRITER_LOCK_KEY = 0x63686172746572


def _postgres_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("charter_writer"):
            # Held until commit or rollback; waits for the writer before us.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")

    return engine


def _alembic_config(connection: Any) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def schema_head() -> str | None:
    """Alembic's own idea of the newest revision (reads the migration scripts)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def pending_migrations(engine: Engine) -> bool:
    """Return True when the database is not at the newest schema revision."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return True
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return [row[0] for row in rows] != [SCHEMA_HEAD]


def migrate(engine: Engine, *, revision: str = "head") -> None:
    """Upgrade the database schema to ``revision`` (idempotent)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two servers starting at once: the second waits, then finds nothing to do.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")
        from alembic import command

        command.upgrade(_alembic_config(conn), revision)
