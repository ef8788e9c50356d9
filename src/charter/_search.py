"""Search use cases: versions and models, filtered and paginated for any registry size.

Pages are keyset-paginated by an opaque cursor (the last row id, or model
name), so page 10,000 costs what page 1 costs. Mixed into
:class:`charter.service.Registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from charter.domain.entities import Model, RiskTier, Version, VersionState
from charter.domain.errors import InvalidInputError
from charter.domain.stages import validate_stage
from charter.domain.versioning import validate_name
from charter.store import Store

__all__ = ["MAX_PAGE", "Page", "SearchUseCases"]

MAX_PAGE = 1000
_MAX_ID = 2**31 - 1  # row ids are 32-bit integers in every backend
T = TypeVar("T")


class _Host(Protocol):
    store: Store


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next (None: this was the last)."""

    items: tuple[T, ...]
    next_cursor: str | None


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be 1 to {MAX_PAGE}", field="limit", value=limit)
    return limit


def _int_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > _MAX_ID:
        raise InvalidInputError("invalid cursor: pass next_cursor as returned", field="cursor")
    return int(cursor)


class SearchUseCases:
    """Listing and searching versions and models."""

    def search_versions(
        self: _Host,
        *,
        model: str | None = None,
        state: str | None = None,
        risk_tier: str | None = None,
        stage: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> Page[Version]:
        """Versions matching every given filter, in registration order (or newest first).

        Args:
            model: model name. state: ``draft`` or ``published``.
            risk_tier: the model's tier. stage: versions holding that stage now.
            tag: ``KEY`` (any value) or ``KEY=VALUE``.
            cursor: ``next_cursor`` of the previous page.
            limit: page size, 1 to :data:`MAX_PAGE`.

        Raises:
            InvalidInputError: a malformed filter, cursor or limit.
        """
        filters: dict[str, str] = {}
        if model is not None:
            filters["model"] = validate_name(model, field="model")
        if state is not None:
            try:
                filters["state"] = VersionState(state).value
            except ValueError:
                raise InvalidInputError(
                    f"invalid state {state!r}: use draft or published", field="state"
                ) from None
        if risk_tier is not None:
            filters["risk_tier"] = RiskTier.parse(risk_tier).value
        if stage is not None:
            filters["stage"] = validate_stage(stage)
        if tag is not None:
            key, sep, value = tag.partition("=")
            if not key or len(key) > 128:
                raise InvalidInputError("tag filter is KEY or KEY=VALUE", field="tag")
            filters["tag_key"] = key
            if sep:
                filters["tag_value"] = value
        size = _limit(limit)
        with self.store.read() as tx:
            rows = tx.search_versions(
                filters=filters, after=_int_cursor(cursor), limit=size, descending=newest_first
            )
        following = str(rows[-1][0]) if len(rows) == size else None
        return Page(tuple(v for _, v in rows), following)

    def search_models(
        self: _Host,
        *,
        risk_tier: str | None = None,
        prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Model]:
        """Models by name, optionally of one risk tier or starting with ``prefix``."""
        tier = RiskTier.parse(risk_tier).value if risk_tier is not None else None
        if prefix is not None and (len(prefix) > 64 or not prefix.isprintable()):
            raise InvalidInputError("prefix is at most 64 printable characters", field="prefix")
        if cursor is not None and len(cursor) > 64:
            raise InvalidInputError("invalid cursor: pass next_cursor as returned", field="cursor")
        size = _limit(limit)
        with self.store.read() as tx:
            found = tx.search_models(risk_tier=tier, prefix=prefix, after=cursor, limit=size)
        following = found[-1].name if len(found) == size else None
        return Page(tuple(found), following)
