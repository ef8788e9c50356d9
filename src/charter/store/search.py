"""Store queries for listing and searching: filtered, keyset-paginated, index-driven.

A page is one statement for the version rows (``WHERE id > :after ORDER BY id
LIMIT :n``, or descending) plus one for their datasets and tags, whatever the
registry size: no per-row Python, no ``OFFSET`` (which reads every skipped row).
Filters use the indexes of migration ``0006_search``: versions by
``(model_id, id)`` and ``(state, id)``, tags by ``(key, value)``; a stage filter
starts from the small ``stages`` table. Statements are compiled once per filter
combination. Mixed into :class:`charter.store.store.ReadTx`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from charter.domain.entities import Model, Version
from charter.store import schema as t
from charter.store._sql import Compiled
from charter.store._versions import _SCOPES, _VERSION_ROWS, _assemble, _model

__all__ = ["SearchReads", "VersionFilter"]

V, M = t.versions, t.models
_FILTER_KEYS = ("model", "state", "risk_tier", "stage", "tag_key", "tag_value")
# Filters by name: model, state, risk_tier, stage, tag_key (and tag_value).
VersionFilter = dict[str, str]

_version_pages: dict[tuple[frozenset[str], bool], Compiled] = {}
_model_pages: dict[tuple[bool, bool], Compiled] = {}


def _conditions(keys: frozenset[str]) -> list[Any]:
    where: list[Any] = []
    if "model" in keys:
        where.append(M.c.name == bindparam("model"))
    if "risk_tier" in keys:
        where.append(M.c.risk_tier == bindparam("risk_tier"))
    if "state" in keys:
        where.append(V.c.state == bindparam("state"))
    if "stage" in keys:
        holders = select(t.stages.c.version_id).where(t.stages.c.stage == bindparam("stage"))
        where.append(V.c.id.in_(holders))
    if "tag_key" in keys and "tag_value" not in keys:
        tagged = select(t.tags.c.version_id).where(t.tags.c.key == bindparam("tag_key"))
        where.append(V.c.id.in_(tagged))
    return where


def _version_page(keys: frozenset[str], descending: bool) -> Compiled:
    found = _version_pages.get((keys, descending))
    if found is None:
        rows, key = _VERSION_ROWS, V.c.id
        if "tag_value" in keys:
            # Driven by the (key, value, version_id) index: a range scan per page.
            g = t.tags
            rows = rows.join(g, g.c.version_id == V.c.id).where(
                g.c.key == bindparam("tag_key"), g.c.value == bindparam("tag_value")
            )
            key = g.c.version_id
        where = _conditions(keys)
        if "cursor" in keys:
            where.append(key < bindparam("cursor") if descending else key > bindparam("cursor"))
        stmt = (
            rows.where(*where).order_by(key.desc() if descending else key).limit(bindparam("limit"))
        )
        found = _version_pages[(keys, descending)] = Compiled(stmt)
    return found


def _model_page(by_tier: bool, by_prefix: bool) -> Compiled:
    found = _model_pages.get((by_tier, by_prefix))
    if found is None:
        where = [M.c.name > bindparam("cursor")]
        if by_tier:
            where.append(M.c.risk_tier == bindparam("risk_tier"))
        if by_prefix:
            # Exact in every collation (a range would follow PostgreSQL's locale rules);
            # models are few next to versions, so this filter may scan them.
            where.append(func.substr(M.c.name, 1, bindparam("prefix_len")) == bindparam("prefix"))
        stmt = select(M).where(*where).order_by(M.c.name).limit(bindparam("limit"))
        found = _model_pages[(by_tier, by_prefix)] = Compiled(stmt)
    return found


class SearchReads:
    """Paginated, filtered reads; ``conn`` is the transaction's connection."""

    conn: Connection

    def search_versions(
        self, *, filters: VersionFilter, after: int | None, limit: int, descending: bool = False
    ) -> list[tuple[int, Version]]:
        """Up to ``limit`` ``(row id, version)`` pairs matching every filter, by id.

        Args:
            filters: see :data:`VersionFilter`; unknown keys are ignored.
            after: the last row id of the previous page (None: from the start).
            limit: page size.
            descending: newest first (``after`` then bounds from above).
        """
        params: dict[str, Any] = {k: v for k, v in filters.items() if k in _FILTER_KEYS}
        if "tag_value" in params and "tag_key" not in params:
            params.pop("tag_value")
        if after is not None:
            params["cursor"] = after
        statement = _version_page(frozenset(params), descending)
        rows = statement(self.conn, {**params, "limit": limit}).all()
        if not rows:
            return []
        ids = [row[2] for row in rows]  # _VERSION_ROWS: (model, parent, id, …)
        children = self.conn.execute(_SCOPES["ids"][1], {"ids": ids})
        return _assemble(rows, children)

    def search_models(
        self, *, risk_tier: str | None, prefix: str | None, after: str | None, limit: int
    ) -> list[Model]:
        """Up to ``limit`` models by name after ``after``, optionally filtered."""
        params: dict[str, Any] = {"cursor": after or "", "limit": limit}
        if risk_tier is not None:
            params["risk_tier"] = risk_tier
        if prefix:
            params.update(prefix=prefix, prefix_len=len(prefix))
        stmt = _model_page(risk_tier is not None, bool(prefix))
        return [_model(row) for row in stmt(self.conn, params)]
