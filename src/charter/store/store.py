"""Metadata store: one implementation for SQLite and PostgreSQL.

Rows become domain entities at this boundary. A write happens inside
``Store.write()``; the service puts every state change and its ledger entry in
the same transaction (invariant 3). This module knows nothing of Merkle trees:
it stores entries, node hashes and checkpoints as the service hands them over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, text, update
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from charter.domain.entities import (
    DatasetRef,
    FileRecord,
    LedgerRecord,
    Model,
    RiskTier,
    Version,
    VersionState,
)
from charter.domain.errors import AlreadyExistsError, StorageError
from charter.store import schema as t
from charter.store.engine import create_store_engine, migrate, pending_migrations
from charter.store.profiles import ProfileReads, ProfileWrites

__all__ = ["CheckpointRow", "ReadTx", "Store", "WriteTx"]

CheckpointRow = tuple[int, bytes, str, str, bytes]
"""(tree_size, root_hash, timestamp, key_id, signature)."""

_VERSION_COLUMNS = [
    t.versions.c.id,
    t.models.c.name,
    t.versions.c.version,
    t.versions.c.state,
    t.versions.c.change_kind,
    t.versions.c.fp_architecture,
    t.versions.c.fp_data,
    t.versions.c.fp_config,
    t.versions.c.architecture_method,
    t.versions.c.manifest_digest,
    t.versions.c.file_count,
    t.versions.c.total_size,
    t.versions.c.run_id,
    t.versions.c.commit_sha,
    t.versions.c.params,
    t.versions.c.created_by,
    t.versions.c.created_at,
    t.versions.c.published_by,
    t.versions.c.published_at,
    t.versions.c.baseline_digest,
    t.versions.c.parent_id,
]


class Store:
    """Metadata persistence chosen by URL.

    Example:
        >>> store = Store("sqlite:///:memory:")
        >>> store.migrate()
        >>> with store.read() as tx:
        ...     tx.list_models()
        []
    """

    def __init__(self, url: str, *, synchronous: str = "NORMAL", busy_timeout_s: float = 30.0):
        self.url = url
        self.engine: Engine = create_store_engine(
            url, synchronous=synchronous, busy_timeout_s=busy_timeout_s
        )
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        """Bring the schema to the newest revision.

        Raises:
            StorageError: when the database cannot be read or migrated.
        """
        try:
            if pending_migrations(self.engine):
                migrate(self.engine)
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(
                f"cannot open the registry database: {_reason(exc)}", url=self.url
            ) from None

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """Open a read transaction."""
        try:
            with self.engine.connect() as conn:
                yield ReadTx(conn)
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(f"database read failed: {_reason(exc)}", url=self.url) from None

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        """Open a write transaction; everything inside commits or nothing does."""
        options = {"sqlite_begin": "IMMEDIATE"} if self.is_sqlite else {}
        try:
            with self.engine.connect().execution_options(**options) as conn, conn.begin():
                yield WriteTx(conn)
        except IntegrityError as exc:
            raise AlreadyExistsError(
                f"a concurrent change created the same record: {_reason(exc)}"
            ) from None
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(f"database write failed: {_reason(exc)}", url=self.url) from None


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


class ReadTx(ProfileReads):
    """Queries, inside one transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn

    # -- models -------------------------------------------------------------
    def get_model(self, name: str) -> Model | None:
        """Return the model called ``name``, or None."""
        row = self.conn.execute(select(t.models).where(t.models.c.name == name)).first()
        return _model(row) if row else None

    def model_id(self, name: str) -> int | None:
        """Return the row id of model ``name``, or None."""
        return self.conn.execute(
            select(t.models.c.id).where(t.models.c.name == name)
        ).scalar_one_or_none()

    def list_models(self) -> list[Model]:
        """Return every model, by name."""
        rows = self.conn.execute(select(t.models).order_by(t.models.c.name))
        return [_model(r) for r in rows]

    # -- versions -----------------------------------------------------------
    def version_id(self, model: str, version: str) -> int | None:
        """Return the row id of ``model@version``, or None."""
        return self.conn.execute(
            select(t.versions.c.id)
            .join(t.models, t.models.c.id == t.versions.c.model_id)
            .where(t.models.c.name == model, t.versions.c.version == version)
        ).scalar_one_or_none()

    def get_version(self, model: str, version: str) -> Version | None:
        """Return ``model@version`` with datasets and tags, or None."""
        found = self._versions(and_(t.models.c.name == model, t.versions.c.version == version))
        return found[0] if found else None

    def list_versions(self, model: str | None = None) -> list[Version]:
        """Return the versions of ``model`` (or of every model), unordered."""
        where = t.models.c.name == model if model is not None else None
        return self._versions(where)

    def versions_by_ids(self, ids: Sequence[int]) -> dict[int, Version]:
        """Return the versions with the given row ids, keyed by id."""
        return dict(self._versions_with_ids(t.versions.c.id.in_(list(ids)))) if ids else {}

    def _versions(self, where: Any) -> list[Version]:
        return [v for _, v in self._versions_with_ids(where)]

    def _versions_with_ids(self, where: Any) -> list[tuple[int, Version]]:
        parent = t.versions.alias("parent")
        query = (
            select(*_VERSION_COLUMNS, parent.c.version.label("parent_version"))
            .join(t.models, t.models.c.id == t.versions.c.model_id)
            .outerjoin(parent, parent.c.id == t.versions.c.parent_id)
        )
        if where is not None:
            query = query.where(where)
        rows = self.conn.execute(query).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        ds: dict[int, list[DatasetRef]] = {i: [] for i in ids}
        for d in self.conn.execute(
            select(t.datasets)
            .where(t.datasets.c.version_id.in_(ids))
            .order_by(t.datasets.c.version_id, t.datasets.c.position)
        ):
            ds[d.version_id].append(DatasetRef(d.name, d.role, d.uri, d.digest, d.size))
        tg: dict[int, dict[str, str]] = {i: {} for i in ids}
        for g in self.conn.execute(select(t.tags).where(t.tags.c.version_id.in_(ids))):
            tg[g.version_id][g.key] = g.value
        return [(r.id, _version(r, tuple(ds[r.id]), tg[r.id])) for r in rows]

    def version_refs(self) -> dict[int, str]:
        """Return ``{version id: "name@version"}`` for every version."""
        rows = self.conn.execute(
            select(t.versions.c.id, t.models.c.name, t.versions.c.version).join(
                t.models, t.models.c.id == t.versions.c.model_id
            )
        )
        return {r.id: f"{r.name}@{r.version}" for r in rows}

    def files(self, version_id: int) -> list[FileRecord]:
        """Return the manifest rows of a version, sorted by path."""
        rows = self.conn.execute(
            select(t.files.c.path, t.files.c.digest, t.files.c.size)
            .where(t.files.c.version_id == version_id)
            .order_by(t.files.c.path)
        )
        return [FileRecord(r.path, r.digest, r.size) for r in rows]

    def lineage_ids(self, version_id: int, *, direction: str) -> list[tuple[int, int]]:
        """Return (version id, depth) of ancestors or descendants, by recursive SQL.

        Args:
            version_id: the starting version (not included).
            direction: ``ancestors`` or ``descendants``.
        """
        if direction == "ancestors":
            step = "SELECT v.parent_id, w.depth + 1 FROM versions v JOIN walk w ON v.id = w.id"
            start = "SELECT parent_id, 1 FROM versions WHERE id = :vid"
        else:
            step = "SELECT v.id, w.depth + 1 FROM versions v JOIN walk w ON v.parent_id = w.id"
            start = "SELECT id, 1 FROM versions WHERE parent_id = :vid"
        # depth < 10000 bounds the walk should a tampered row create a cycle.
        sql = text(
            f"WITH RECURSIVE walk(id, depth) AS ({start} UNION ALL {step} "  # noqa: S608
            "WHERE w.depth < 10000) SELECT id, depth FROM walk WHERE id IS NOT NULL ORDER BY depth"
        )
        return [(r[0], r[1]) for r in self.conn.execute(sql, {"vid": version_id})]

    def version_ids_using_digest(self, digest: str) -> list[int]:
        """Return ids of versions that declared a dataset with ``digest``."""
        rows = self.conn.execute(
            select(t.datasets.c.version_id).where(t.datasets.c.digest == digest).distinct()
        )
        return [r[0] for r in rows]

    def all_files(self) -> dict[int, list[FileRecord]]:
        """Return every manifest row, grouped by version id (for verification)."""
        out: dict[int, list[FileRecord]] = {}
        rows = self.conn.execute(select(t.files).order_by(t.files.c.version_id, t.files.c.path))
        for r in rows:
            out.setdefault(r.version_id, []).append(FileRecord(r.path, r.digest, r.size))
        return out

    def digest_in_use(self, digest: str) -> bool:
        """True when any version's manifest names the blob ``digest``."""
        found = self.conn.execute(
            select(t.files.c.version_id).where(t.files.c.digest == digest).limit(1)
        ).first()
        return found is not None

    # -- ledger -------------------------------------------------------------
    def ledger_size(self) -> int:
        """Number of entries in the ledger."""
        size = self.conn.execute(select(t.ledger_head.c.size)).scalar_one_or_none()
        return int(size or 0)

    def ledger_origin(self) -> str | None:
        """The log identity written at initialisation, or None before it."""
        return self.conn.execute(select(t.ledger_head.c.origin)).scalar_one_or_none()

    def entries(self, start: int = 0, stop: int | None = None) -> list[LedgerRecord]:
        """Return ledger entries with ``start <= seq < stop``, in order."""
        query = select(t.ledger_entries).where(t.ledger_entries.c.seq >= start)
        if stop is not None:
            query = query.where(t.ledger_entries.c.seq < stop)
        rows = self.conn.execute(query.order_by(t.ledger_entries.c.seq))
        return [
            LedgerRecord(r.seq, r.type, r.subject, r.actor, r.time, r.body, r.leaf_hash)
            for r in rows
        ]

    def entries_for(self, subject: str) -> list[LedgerRecord]:
        """Return the entries about ``subject``, in order."""
        rows = self.conn.execute(
            select(t.ledger_entries)
            .where(t.ledger_entries.c.subject == subject)
            .order_by(t.ledger_entries.c.seq)
        )
        return [
            LedgerRecord(r.seq, r.type, r.subject, r.actor, r.time, r.body, r.leaf_hash)
            for r in rows
        ]

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return stored subtree hashes for (level, idx) keys that exist."""
        if not keys:
            return {}
        cond = or_(
            *(and_(t.ledger_nodes.c.level == lv, t.ledger_nodes.c.idx == ix) for lv, ix in keys)
        )
        rows = self.conn.execute(select(t.ledger_nodes).where(cond))
        return {(r.level, r.idx): r.hash for r in rows}

    def all_nodes(self) -> dict[tuple[int, int], bytes]:
        """Return every stored subtree hash (for verification)."""
        return {(r.level, r.idx): r.hash for r in self.conn.execute(select(t.ledger_nodes))}

    def checkpoints(self) -> list[CheckpointRow]:
        """Return every signed checkpoint, oldest first."""
        rows = self.conn.execute(select(t.checkpoints).order_by(t.checkpoints.c.tree_size))
        return [(r.tree_size, r.root_hash, r.timestamp, r.key_id, r.signature) for r in rows]

    def latest_checkpoint(self) -> CheckpointRow | None:
        """Return the checkpoint with the largest tree size, or None."""
        r = self.conn.execute(
            select(t.checkpoints).order_by(t.checkpoints.c.tree_size.desc()).limit(1)
        ).first()
        return (r.tree_size, r.root_hash, r.timestamp, r.key_id, r.signature) if r else None


class WriteTx(ReadTx, ProfileWrites):
    """Changes, inside one transaction that the service also writes the ledger in."""

    def insert_model(self, model: Model) -> None:
        """Insert a new model row."""
        self.conn.execute(insert(t.models).values(**model.state()))

    def insert_version(
        self, version: Version, *, model_id: int, parent_id: int | None, files: Sequence[FileRecord]
    ) -> int:
        """Insert a draft version with its files and datasets; return its row id."""
        vid = self.conn.execute(
            insert(t.versions).values(
                model_id=model_id,
                version=version.version,
                state=version.state.value,
                parent_id=parent_id,
                change_kind=version.change_kind,
                fp_architecture=version.fp_architecture,
                fp_data=version.fp_data,
                fp_config=version.fp_config,
                architecture_method=version.architecture_method,
                manifest_digest=version.manifest_digest,
                file_count=version.file_count,
                total_size=version.total_size,
                run_id=version.run_id,
                commit_sha=version.commit,
                params=json.dumps(version.params, sort_keys=True),
                created_by=version.created_by,
                created_at=version.created_at,
            )
        ).inserted_primary_key
        if vid is None:  # pragma: no cover - every supported dialect returns the key
            raise StorageError("the database returned no id for the new version")
        vid = vid[0]
        if files:
            self.conn.execute(
                insert(t.files),
                [
                    {"version_id": vid, "path": f.path, "digest": f.digest, "size": f.size}
                    for f in files
                ],
            )
        if version.datasets:
            self.conn.execute(
                insert(t.datasets),
                [
                    {"version_id": vid, "position": i, **d.state()}
                    for i, d in enumerate(version.datasets)
                ],
            )
        return int(vid)

    def publish_version(self, version_id: int, *, by: str, at: str, baseline_digest: str) -> None:
        """Mark a draft published and seal its baseline (the row is frozen from then on)."""
        done = self.conn.execute(
            update(t.versions)
            .where(t.versions.c.id == version_id, t.versions.c.state == VersionState.DRAFT.value)
            .values(
                state=VersionState.PUBLISHED.value,
                published_by=by,
                published_at=at,
                baseline_digest=baseline_digest,
            )
        )
        if done.rowcount != 1:
            raise StorageError("version was published concurrently", version_id=version_id)

    def delete_draft(self, version_id: int) -> None:
        """Delete a draft version and its rows."""
        for table in (t.tags, t.datasets, t.files, t.profile_entries):
            self.conn.execute(delete(table).where(table.c.version_id == version_id))
        done = self.conn.execute(
            delete(t.versions).where(
                t.versions.c.id == version_id, t.versions.c.state == VersionState.DRAFT.value
            )
        )
        if done.rowcount != 1:
            raise StorageError("version is no longer a draft", version_id=version_id)

    def set_tags(self, version_id: int, tags: dict[str, str | None]) -> None:
        """Set (value) or remove (None) tags of a version."""
        for key, value in tags.items():
            self.conn.execute(
                delete(t.tags).where(t.tags.c.version_id == version_id, t.tags.c.key == key)
            )
            if value is not None:
                self.conn.execute(
                    insert(t.tags).values(version_id=version_id, key=key, value=value)
                )

    # -- ledger -------------------------------------------------------------
    def init_ledger(self, origin: str) -> None:
        """Create the ledger head once (idempotent)."""
        if self.ledger_origin() is None:
            self.conn.execute(insert(t.ledger_head).values(id=1, size=0, origin=origin))

    def lock_ledger(self) -> int:
        """Lock the ledger head for this transaction and return the current size.

        Raises:
            StorageError: when the ledger was never initialised.
        """
        size = self.conn.execute(
            select(t.ledger_head.c.size).where(t.ledger_head.c.id == 1).with_for_update()
        ).scalar_one_or_none()
        if size is None:
            raise StorageError("the ledger is not initialised: run `charter init`")
        return int(size)

    def append_entry(self, record: LedgerRecord, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store one entry with the subtree hashes it completes, and grow the head."""
        self.conn.execute(
            insert(t.ledger_entries).values(
                seq=record.seq,
                type=record.type,
                subject=record.subject,
                actor=record.actor,
                time=record.time,
                body=record.body,
                leaf_hash=record.leaf_hash,
            )
        )
        self.conn.execute(
            insert(t.ledger_nodes),
            [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes],
        )
        self.conn.execute(
            update(t.ledger_head).where(t.ledger_head.c.id == 1).values(size=record.seq + 1)
        )

    def add_checkpoint(self, row: CheckpointRow) -> None:
        """Store a signed checkpoint."""
        size, root, ts, key_id, sig = row
        self.conn.execute(
            insert(t.checkpoints).values(
                tree_size=size, root_hash=root, timestamp=ts, key_id=key_id, signature=sig
            )
        )


def _model(row: Any) -> Model:
    return Model(
        name=row.name,
        description=row.description,
        owner=row.owner,
        risk_tier=RiskTier(row.risk_tier),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _version(row: Any, datasets: tuple[DatasetRef, ...], tags: dict[str, str]) -> Version:
    return Version(
        model=row.name,
        version=row.version,
        state=VersionState(row.state),
        parent=row.parent_version,
        change_kind=row.change_kind,
        fp_architecture=row.fp_architecture,
        fp_data=row.fp_data,
        fp_config=row.fp_config,
        architecture_method=row.architecture_method,
        manifest_digest=row.manifest_digest,
        file_count=row.file_count,
        total_size=row.total_size,
        run_id=row.run_id,
        commit=row.commit_sha,
        params=json.loads(row.params),
        datasets=datasets,
        created_by=row.created_by,
        created_at=row.created_at,
        published_by=row.published_by,
        published_at=row.published_at,
        baseline_digest=row.baseline_digest,
        tags=tags,
    )
