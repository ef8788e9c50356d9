"""Running prebuilt Core statements with little per-call overhead.

SQLAlchemy spends most of a small query's time on the statement, not in the
database: measured on SQLite, an INSERT built per call costs about 50 µs, a
prebuilt one run with ``Connection.execute`` 19 µs, the same SQL through
``Connection.exec_driver_sql`` 7.5 µs, and the driver alone 1.6 µs. So:

- :class:`Compiled` compiles a module-level statement once per dialect and runs
  it on the driver's cursor of the connection's transaction: the SQL is still
  SQLAlchemy's rendering for that dialect (portable), the transaction is still
  begun by SQLAlchemy (with its events: BEGIN IMMEDIATE, the writer lock), and
  driver errors are wrapped in SQLAlchemy's exception classes as before. No type
  processing happens on the way in or out, so it is used only for columns the
  drivers map natively (integers, text, bytes). While anyone listens to cursor
  executes (a statement counter, a profiler), it goes through
  ``exec_driver_sql`` instead, so they see every statement.
- :func:`raw_rows` streams a parameterless bulk read straight from the driver
  cursor, in batches, for verification (on PostgreSQL through a server-side
  cursor, so memory stays flat however large the table).
"""

from __future__ import annotations

import itertools
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["Compiled", "Rows", "raw_rows"]


class Compiled:
    """A statement compiled once per dialect, run on the driver's cursor (see the module).

    Example::

        _MODEL_ID = Compiled(select(models.c.id).where(models.c.name == bindparam("name")))
        _MODEL_ID(conn, {"name": "credit-risk"}).scalar_one_or_none()
    """

    __slots__ = ("_forms", "keys", "stmt")

    def __init__(self, stmt: Any, keys: Sequence[str] | None = None) -> None:
        """Wrap ``stmt``; ``keys`` names the columns of an ``insert(table)`` without values."""
        self.stmt = stmt
        self.keys = list(keys) if keys is not None else None
        self._forms: dict[tuple[type, str], _Form] = {}

    def _form(self, dialect: Any) -> _Form:
        # Keyed by dialect class and parameter style: drivers differ in the latter.
        key = (type(dialect), dialect.paramstyle)
        form = self._forms.get(key)
        if form is None:
            compiled = self.stmt.compile(dialect=dialect, column_keys=self.keys)
            # Literals in the statement (``id == 1``) became parameters with values.
            defaults = {n: b.effective_value for n, b in compiled.binds.items() if not b.required}
            order = tuple(compiled.positiontup) if dialect.positional else None
            form = self._forms[key] = _Form(compiled.string, order, defaults)
        return form

    def __call__(
        self, conn: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] = ()
    ) -> Rows:
        """Run with named ``params`` (a mapping, or a sequence of them for executemany)."""
        form = self._form(conn.dialect)
        sql, order, defaults = form.sql, form.order, form.defaults
        bound: Any
        if type(params) is dict or isinstance(params, Mapping):
            many, bound = False, _bind(params, order, defaults)
        elif not params:
            many, bound = False, _bind({}, order, defaults)
        else:
            many, bound = True, [_bind(p, order, defaults) for p in params]
        if conn.dispatch.before_cursor_execute:
            return Rows.of(conn.exec_driver_sql(sql, bound))
        if not conn.in_transaction():
            conn.begin()  # what SQLAlchemy's autobegin would do, events included
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(sql, bound)
            else:
                cursor.execute(sql, bound)
            return Rows(cursor, form)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                sql, bound, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()


class _Form:
    """One dialect's rendering of a statement, and the row class of its results."""

    __slots__ = ("defaults", "order", "row_type", "sql")

    def __init__(self, sql: str, order: tuple[str, ...] | None, defaults: dict[str, Any]) -> None:
        self.sql = sql
        self.order = order
        self.defaults = defaults
        self.row_type: Any = None  # set from the first result's column names


class Rows:
    """The whole result of one :class:`Compiled` run, with the few accessors used.

    Rows are tuples that also answer to their column names (``row.size``), like
    SQLAlchemy's; every statement run this way is a point query or a bounded list.
    """

    __slots__ = ("_rows", "lastrowid", "rowcount")

    def __init__(self, cursor: Any, form: _Form) -> None:
        rows: list[Any] = []
        if cursor.description is not None:
            rows = cursor.fetchall()
            if rows:
                row_type = form.row_type
                if row_type is None:
                    names = tuple(d[0] for d in cursor.description)
                    row_type = form.row_type = _row_type(names)
                rows = list(map(row_type._make, rows))
        self._rows = rows
        self.rowcount: int = cursor.rowcount
        self.lastrowid: Any = getattr(cursor, "lastrowid", None)

    @classmethod
    def of(cls, result: Any) -> Rows:
        """The same, from a SQLAlchemy result (the path taken while events listen)."""
        out = cls.__new__(cls)
        out._rows = list(result) if result.returns_rows else []
        out.rowcount = result.rowcount
        out.lastrowid = getattr(result, "lastrowid", None)
        return out

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected exactly one row, got {len(self._rows)}")
        return self._rows[0][0]

    def scalar_one_or_none(self) -> Any | None:
        if len(self._rows) > 1:
            raise ValueError(f"expected at most one row, got {len(self._rows)}")
        return self._rows[0][0] if self._rows else None


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _row_type(names: tuple[str, ...]) -> Any:
    """A named-tuple class for these column names (cached: statements are few)."""
    found = _ROW_TYPES.get(names)
    if found is None:
        found = _ROW_TYPES[names] = namedtuple("Row", names, rename=True)
    return found


def _bind(
    params: Mapping[str, Any], order: tuple[str, ...] | None, defaults: dict[str, Any]
) -> Any:
    """The driver's parameters: a tuple in placeholder order, or a dict by name."""
    if order is None:
        return {**defaults, **params} if defaults else params
    return tuple(params[n] if n in params else defaults[n] for n in order)


_RAW_SQL: dict[tuple[int, str], str] = {}  # (id(statement), dialect+driver) -> SQL
_CURSOR_NAMES = itertools.count()  # names of PostgreSQL cursors, unique per process


def raw_rows(conn: Connection, stmt: Any) -> Iterator[tuple[Any, ...]]:
    """Rows of a parameterless module-level statement, straight from the driver cursor.

    Skips SQLAlchemy's per-row work, which costs more than the driver's own on
    100k-row reads. Runs inside the connection's transaction (begun here if
    nothing ran yet, so every bulk read of one verification sees one snapshot).

    Args:
        conn: the transaction's connection.
        stmt: a statement without bind parameters, kept alive by the caller
            (compiled SQL is cached by its identity and dialect).
    """
    key = (id(stmt), f"{conn.dialect.name}+{conn.dialect.driver}")
    sql = _RAW_SQL.get(key)
    if sql is None:
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        sql = _RAW_SQL[key] = str(compiled)
    transaction = conn.get_transaction() or conn.begin()
    server_side = conn.dialect.name == "postgresql"
    if server_side:
        # A named (server-side) cursor: psycopg's ordinary cursor would fetch the
        # whole result into memory before handing over the first row.
        cursor = conn.connection.cursor(name=f"charter_rows_{next(_CURSOR_NAMES)}")
    else:
        cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(2000):
            yield from batch
    finally:
        # A server-side cursor dies with its transaction. Closing it after that (a
        # generator dropped late) would send CLOSE on a connection that is back in
        # the pool, perhaps inside someone else's transaction.
        if not server_side or (not conn.closed and conn.get_transaction() is transaction):
            cursor.close()
