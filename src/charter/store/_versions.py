"""Store queries for models, versions and their files, datasets and tags.

Mixed into the read and write transactions of :mod:`charter.store.store`;
rows become domain entities here. Statements are built once, at import, and
run through :class:`~charter.store._sql.Compiled` (see there for why); reads
of every row (for verification) stream through
:func:`~charter.store._sql.raw_rows`. Nothing sends an ``IN`` list of every
id, which is slow and exceeds PostgreSQL's 65,535 bind parameters on large
registries (``versions_by_ids`` sends bounded chunks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    literal_column,
    null,
    select,
    text,
    union,
    union_all,
    update,
)

from charter.domain.entities import DatasetRef, FileRecord, Model, RiskTier, Version, VersionState
from charter.domain.errors import StorageError
from charter.store import schema as t
from charter.store._sql import Compiled, raw_rows

__all__ = ["VersionReads", "VersionWrites"]

V, M = t.versions, t.models
_PARENT = V.alias("parent")
_BY_ID = V.c.id == bindparam("vid")
_BY_MODEL = M.c.name == bindparam("model")
_BY_REF = and_(_BY_MODEL, V.c.version == bindparam("version"))
_BY_IDS = V.c.id.in_(bindparam("ids", expanding=True))
_ID_CHUNK = 500  # ids per IN list: far below every driver's parameter limit

# Row positions matter: _version() unpacks these rows as plain tuples.
_VERSION_FIELDS = [
    "id", "version", "state", "change_kind", "fp_architecture", "fp_data", "fp_config",
    "architecture_method", "manifest_digest", "file_count", "total_size", "run_id", "commit_sha",
    "params", "created_by", "created_at", "published_by", "published_at", "baseline_digest",
]  # fmt: skip
_VERSION_ROWS = (
    select(M.c.name, _PARENT.c.version, *(V.c[name] for name in _VERSION_FIELDS))
    .join(M, M.c.id == V.c.model_id)
    .outerjoin(_PARENT, _PARENT.c.id == V.c.parent_id)
)
# Version attributes a new draft's row takes as they are.
_COPIED = [
    "version", "change_kind", "fp_architecture", "fp_data", "fp_config", "architecture_method",
    "manifest_digest", "file_count", "total_size", "run_id", "created_by", "created_at",
]  # fmt: skip


def _children(where: Any, *, joined: bool) -> Any:
    """Datasets (kind 0) and tags (kind 1) of the selected versions, in one statement."""
    d, g = t.datasets, t.tags
    parts = [
        select(literal_column("0"), d.c.version_id, d.c.position, d.c.name, d.c.role, d.c.uri,
               d.c.digest, d.c.size),
        select(literal_column("1"), g.c.version_id, literal_column("0"), g.c.key, g.c.value,
               null(), null(), null()),
    ]  # fmt: skip
    scoped = []
    for part, table in zip(parts, (d, g), strict=True):
        if joined:  # filter on the versions/models columns in ``where``
            part = part.join(V, V.c.id == table.c.version_id).join(M, M.c.id == V.c.model_id)
        scoped.append(part if where is None else part.where(where))
    return union_all(*scoped)


# Version reads by scope: (rows statement, children statement).
_SCOPES: dict[str, tuple[Any, Any]] = {
    "ref": (Compiled(_VERSION_ROWS.where(_BY_REF)), Compiled(_children(_BY_REF, joined=True))),
    "model": (
        Compiled(_VERSION_ROWS.where(_BY_MODEL)),
        Compiled(_children(_BY_MODEL, joined=True)),
    ),
    # Expanding IN lists vary in length: SQLAlchemy renders them per call.
    "ids": (_VERSION_ROWS.where(_BY_IDS), _children(_BY_IDS, joined=True)),
    "all": (_VERSION_ROWS, _children(None, joined=False)),
}
_MODEL_ROW = Compiled(select(M).where(M.c.name == bindparam("name")))
_MODEL_ID = Compiled(select(M.c.id).where(M.c.name == bindparam("name")))
_VERSION_ID = Compiled(select(V.c.id).join(M, M.c.id == V.c.model_id).where(_BY_REF))
_IDS = Compiled(
    select(M.c.id, V.c.id)
    .outerjoin(V, and_(V.c.model_id == M.c.id, V.c.version == bindparam("version")))
    .where(_BY_MODEL)
)
_REFS = select(V.c.id, M.c.name, V.c.version).join(M, M.c.id == V.c.model_id)
F = t.files
_FILES_OF = Compiled(
    select(F.c.path, F.c.digest, F.c.size)
    .where(F.c.version_id == bindparam("vid"))
    .order_by(F.c.path)
)
_ALL_FILES = select(F.c.version_id, F.c.path, F.c.digest, F.c.size).order_by(
    F.c.version_id, F.c.path
)
_DIGEST_USERS = Compiled(
    select(t.datasets.c.version_id).where(t.datasets.c.digest == bindparam("digest")).distinct()
)
_DIGEST_IN_USE = Compiled(select(F.c.version_id).where(F.c.digest == bindparam("digest")).limit(1))

# Rows that entity queries never return (they join through a parent that does
# not exist), which is exactly where a forged row would hide.
_ORPHANS = {
    kind: select(table.c.version_id).where(table.c.version_id.not_in(select(V.c.id)))
    for kind, table in (("dataset", t.datasets), ("tag", t.tags))
}
_ORPHANS["version"] = select(V.c.id).where(V.c.model_id.not_in(select(M.c.id)))
_LINEAGE = {
    "ancestors": ("SELECT parent_id, 1 FROM versions WHERE id = :vid",
                  "SELECT v.parent_id, w.depth + 1 FROM versions v JOIN walk w ON v.id = w.id"),
    "descendants": ("SELECT id, 1 FROM versions WHERE parent_id = :vid",
                    "SELECT v.id, w.depth + 1 FROM versions v JOIN walk w ON v.parent_id = w.id"),
}  # fmt: skip
# depth < 10000 bounds the walk should a tampered row create a cycle.
_WALK = (
    "WITH RECURSIVE walk(id, depth) AS ({} UNION ALL {} WHERE w.depth < 10000) "
    "SELECT id, depth FROM walk WHERE id IS NOT NULL ORDER BY depth"
)
_WALKS = {direction: Compiled(text(_WALK.format(*parts))) for direction, parts in _LINEAGE.items()}

_INSERT_MODEL = Compiled(insert(M), [c.name for c in M.c if c.name != "id"])
_VERSION_KEYS = [*_COPIED, "model_id", "parent_id", "state", "commit_sha", "params"]
_INSERT_VERSION = Compiled(insert(V).returning(V.c.id), _VERSION_KEYS)
_INSERT_VERSION_OLD = Compiled(insert(V), _VERSION_KEYS)  # SQLite before 3.35: no RETURNING
_INSERT_FILES = Compiled(insert(t.files), ["version_id", "path", "digest", "size"])
_INSERT_DATASETS = Compiled(insert(t.datasets), [c.name for c in t.datasets.c])
_INSERT_TAG = Compiled(insert(t.tags), ["version_id", "key", "value"])
_DELETE_TAG = Compiled(
    delete(t.tags).where(t.tags.c.version_id == bindparam("vid"), t.tags.c.key == bindparam("tag"))
)
_DRAFT_BY_ID = and_(_BY_ID, V.c.state == VersionState.DRAFT.value)
_PUBLISH = Compiled(
    update(V).where(_DRAFT_BY_ID).values(
        state=VersionState.PUBLISHED.value, published_by=bindparam("by"),
        published_at=bindparam("at"), baseline_digest=bindparam("sealed"),
    )
)  # fmt: skip
_DELETE_DRAFT_ROWS = [
    Compiled(delete(table).where(table.c.version_id == bindparam("vid")))
    for table in (t.tags, t.datasets, t.files, t.profile_entries)
]
_DELETE_DRAFT = Compiled(delete(V).where(_DRAFT_BY_ID))


class VersionReads:
    """Model and version queries; ``conn`` is the transaction's connection."""

    conn: Connection

    # -- models -------------------------------------------------------------
    def get_model(self, name: str) -> Model | None:
        """Return the model called ``name``, or None."""
        row = _MODEL_ROW(self.conn, {"name": name}).first()
        return _model(row) if row else None

    def model_id(self, name: str) -> int | None:
        """Return the row id of model ``name``, or None."""
        return _MODEL_ID(self.conn, {"name": name}).scalar_one_or_none()

    def list_models(self) -> list[Model]:
        """Return every model, by name."""
        return [_model(r) for r in self.conn.execute(select(M).order_by(M.c.name))]

    # -- versions -----------------------------------------------------------
    def version_id(self, model: str, version: str) -> int | None:
        """Return the row id of ``model@version``, or None."""
        params = {"model": model, "version": version}
        return _VERSION_ID(self.conn, params).scalar_one_or_none()

    def ids(self, model: str, version: str) -> tuple[int | None, int | None]:
        """Return the row ids of ``model`` and of ``model@version`` (None if absent), at once."""
        row = _IDS(self.conn, {"model": model, "version": version}).first()
        return (row[0], row[1]) if row else (None, None)

    def get_version(self, model: str, version: str) -> Version | None:
        """Return ``model@version`` with datasets and tags, or None."""
        found = self.version_with_id(model, version)
        return found[1] if found else None

    def version_with_id(self, model: str, version: str) -> tuple[int, Version] | None:
        """Return ``(row id, version)`` of ``model@version``, or None (two statements)."""
        found = self._read_versions("ref", {"model": model, "version": version})
        return found[0] if found else None

    def list_versions(self, model: str | None = None) -> list[Version]:
        """Return the versions of ``model`` (or of every model), unordered."""
        if model is None:
            return [v for _, v in self.all_versions()]
        return [v for _, v in self._read_versions("model", {"model": model})]

    def all_versions(self) -> list[tuple[int, Version]]:
        """Return ``(row id, version)`` of every version, in bulk (for verification).

        Raises:
            StorageError: when a row cannot be turned into a version.
        """
        rows, children = _SCOPES["all"]
        return _assemble(list(raw_rows(self.conn, rows)), raw_rows(self.conn, children))

    def versions_by_ids(self, ids: Sequence[int]) -> dict[int, Version]:
        """Return the versions with the given row ids, keyed by id."""
        unique = list(dict.fromkeys(ids))
        out: dict[int, Version] = {}
        for lo in range(0, len(unique), _ID_CHUNK):
            out.update(self._read_versions("ids", {"ids": unique[lo : lo + _ID_CHUNK]}))
        return out

    def _read_versions(self, scope: str, params: dict[str, Any]) -> list[tuple[int, Version]]:
        rows_stmt, children_stmt = _SCOPES[scope]
        rows = _run(self.conn, rows_stmt, params).all()
        return _assemble(rows, _run(self.conn, children_stmt, params)) if rows else []

    def version_refs(self) -> dict[int, str]:
        """Return ``{version id: "name@version"}`` for every version."""
        return {vid: f"{name}@{version}" for vid, name, version in raw_rows(self.conn, _REFS)}

    def referenced_digests(self) -> set[str]:
        """Every blob digest a record still needs: manifests (drafts too) and model cards."""
        query = union(select(t.files.c.digest), select(t.cards.c.digest))
        return {row[0] for row in self.conn.execute(query)}

    def files(self, version_id: int) -> list[FileRecord]:
        """Return the manifest rows of a version, sorted by path."""
        rows = _FILES_OF(self.conn, {"vid": version_id})
        return [FileRecord(path, digest, size) for path, digest, size in rows]

    def lineage_ids(self, version_id: int, *, direction: str) -> list[tuple[int, int]]:
        """Return (version id, depth) of ancestors or descendants, by recursive SQL.

        Args:
            version_id: the starting version (not included).
            direction: ``ancestors`` or ``descendants``.
        """
        walk = _WALKS["ancestors" if direction == "ancestors" else "descendants"]
        return [(r[0], r[1]) for r in walk(self.conn, {"vid": version_id})]

    def version_ids_using_digest(self, digest: str) -> list[int]:
        """Return ids of versions that declared a dataset with ``digest``."""
        return [r[0] for r in _DIGEST_USERS(self.conn, {"digest": digest})]

    def iter_file_rows(self) -> Iterator[tuple[Any, ...]]:
        """Yield every manifest row as a raw ``(version id, path, digest, size)``.

        For verification: by version id then path, streamed in batches, unchecked
        (a tampered row may hold anything).
        """
        return raw_rows(self.conn, _ALL_FILES)

    def digest_in_use(self, digest: str) -> bool:
        """True when any version's manifest names the blob ``digest``."""
        return _DIGEST_IN_USE(self.conn, {"digest": digest}).first() is not None

    def orphan_rows(self) -> list[tuple[str, int]]:
        """Return ``(kind, version id)`` of rows no entity query reaches (for verification).

        Kinds: ``dataset`` and ``tag`` rows whose version does not exist, and
        ``version`` rows whose model does not exist.
        """
        found: dict[tuple[str, int], None] = {}
        for kind, stmt in _ORPHANS.items():
            found.update(((kind, vid), None) for (vid,) in raw_rows(self.conn, stmt))
        return list(found)


class VersionWrites(VersionReads):
    """Model and version changes, inside the caller's write transaction."""

    def insert_model(self, model: Model) -> None:
        """Insert a new model row."""
        _INSERT_MODEL(self.conn, model.state())

    def insert_version(
        self, version: Version, *, model_id: int, parent_id: int | None, files: Sequence[FileRecord]
    ) -> int:
        """Insert a draft version with its files and datasets; return its row id."""
        row = {name: getattr(version, name) for name in _COPIED}
        row.update(
            model_id=model_id,
            parent_id=parent_id,
            state=version.state.value,
            commit_sha=version.commit,
            params=json.dumps(version.params, sort_keys=True),
        )
        if self.conn.dialect.insert_returning:
            vid = int(_INSERT_VERSION(self.conn, row).scalar_one())
        else:
            vid = int(_INSERT_VERSION_OLD(self.conn, row).lastrowid)
        if files:
            _INSERT_FILES(
                self.conn,
                [
                    {"version_id": vid, "path": f.path, "digest": f.digest, "size": f.size}
                    for f in files
                ],
            )
        if version.datasets:
            refs = enumerate(version.datasets)
            _INSERT_DATASETS(
                self.conn, [{"version_id": vid, "position": i, **d.state()} for i, d in refs]
            )
        return vid

    def publish_version(self, version_id: int, *, by: str, at: str, baseline_digest: str) -> None:
        """Mark a draft published and seal its baseline (the row is frozen from then on)."""
        params = {"vid": version_id, "by": by, "at": at, "sealed": baseline_digest}
        if _PUBLISH(self.conn, params).rowcount != 1:
            raise StorageError("version was published concurrently", version_id=version_id)

    def delete_draft(self, version_id: int) -> None:
        """Delete a draft version and its rows."""
        for stmt in _DELETE_DRAFT_ROWS:
            stmt(self.conn, {"vid": version_id})
        if _DELETE_DRAFT(self.conn, {"vid": version_id}).rowcount != 1:
            raise StorageError("version is no longer a draft", version_id=version_id)

    def set_tags(self, version_id: int, tags: dict[str, str | None]) -> None:
        """Set (value) or remove (None) tags of a version."""
        for key, value in tags.items():
            _DELETE_TAG(self.conn, {"vid": version_id, "tag": key})
            if value is not None:
                _INSERT_TAG(self.conn, {"version_id": version_id, "key": key, "value": value})


def _run(conn: Connection, stmt: Any, params: dict[str, Any]) -> Any:
    return stmt(conn, params) if isinstance(stmt, Compiled) else conn.execute(stmt, params)


def _model(row: Any) -> Model:
    try:
        return Model(
            name=row.name,
            description=row.description,
            owner=row.owner,
            risk_tier=RiskTier(row.risk_tier),
            created_by=row.created_by,
            created_at=row.created_at,
        )
    except (ValueError, TypeError) as exc:
        raise StorageError(
            f"model row {row.name!r} cannot be read: {exc}", table="models"
        ) from None


_STATES = {state.value: state for state in VersionState}


def _assemble(rows: Sequence[Any], children: Any) -> list[tuple[int, Version]]:
    """Turn version rows plus their dataset/tag rows into ``(id, Version)`` pairs."""
    datasets: dict[int, list[tuple[int, DatasetRef]]] = {}
    tags: dict[int, dict[str, str]] = {}
    for kind, vid, position, a, b, c, digest, size in children:
        if kind == 0:
            datasets.setdefault(vid, []).append((position, DatasetRef(a, b, c, digest, size)))
        else:
            tags.setdefault(vid, {})[a] = b
    out = []
    for row in rows:
        vid = row[2]
        refs = datasets.get(vid)
        ordered = tuple(ref for _, ref in sorted(refs, key=lambda p: p[0])) if refs else ()
        out.append((vid, _version(row, ordered, tags.get(vid, {}))))
    return out


def _params(text: str) -> dict[str, str]:
    # Most versions have no parameters: skip the parser for them.
    return {} if text == "{}" else json.loads(text)


def _version(row: Sequence[Any], datasets: tuple[DatasetRef, ...], tags: dict[str, str]) -> Version:
    """Build a version from a ``_VERSION_ROWS`` tuple."""
    (model, parent, _id, version, state, kind, fp_arch, fp_data, fp_config, method, manifest,
     count, total, run_id, commit, params, by, at, pub_by, pub_at, sealed) = row  # fmt: skip
    try:
        if (known := _STATES.get(state)) is None:
            raise ValueError(f"unknown state {state!r}")
        return Version(
            model=model, version=version, state=known, parent=parent, change_kind=kind,
            fp_architecture=fp_arch, fp_data=fp_data, fp_config=fp_config,
            architecture_method=method, manifest_digest=manifest, file_count=count,
            total_size=total, run_id=run_id, commit=commit, params=_params(params),
            datasets=datasets, created_by=by, created_at=at, published_by=pub_by,
            published_at=pub_at, baseline_digest=sealed, tags=tags,
        )  # fmt: skip
    except (ValueError, TypeError) as exc:  # includes JSONDecodeError
        raise StorageError(
            f"version row {model}@{version} cannot be read: {exc}", table="versions"
        ) from None
