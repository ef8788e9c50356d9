"""Store queries for API tokens and monitoring flags."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from charter.domain.access import TokenInfo
from charter.domain.stages import Role
from charter.store import schema as t
from charter.store._sql import Compiled

__all__ = ["AccessRows"]

_TOKEN_INFO = (
    "token_id", "user", "label", "created_by", "created_at",
    "expires_at", "revoked_by", "revoked_at",
)  # fmt: skip


_TOKEN_WITH_ROLE = Compiled(
    select(*(t.api_tokens.c[k] for k in _TOKEN_INFO), t.api_tokens.c.secret_hash, t.users.c.role)
    .select_from(t.api_tokens.outerjoin(t.users, t.users.c.name == t.api_tokens.c.user))
    .where(t.api_tokens.c.token_id == bindparam("token_id"))
)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(**{k: getattr(row, k) for k in _TOKEN_INFO})


class AccessRows:
    """Token and flag rows; writes happen inside the caller's write transaction."""

    conn: Connection

    # -- tokens -------------------------------------------------------------
    def insert_token(self, info: TokenInfo, *, secret_hash: str) -> None:
        """Store a new token (its secret only as a hash)."""
        self.conn.execute(insert(t.api_tokens).values(**info.state(), secret_hash=secret_hash))

    def token_with_role(self, token_id: str) -> tuple[TokenInfo, str, Role | None] | None:
        """(token, secret hash, the user's current role) for authentication, in one query."""
        # Every API request runs this: prebuilt, it costs about 40% of building it per call.
        row = _TOKEN_WITH_ROLE(self.conn, {"token_id": token_id}).first()
        if row is None:
            return None
        *info, secret_hash, role = row
        return TokenInfo(*info), secret_hash, Role(role) if role else None

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens (of one user, or all), oldest first."""
        query = select(t.api_tokens).order_by(t.api_tokens.c.created_at, t.api_tokens.c.token_id)
        if user is not None:
            query = query.where(t.api_tokens.c.user == user)
        return [_info(r) for r in self.conn.execute(query)]

    def token_rows(self) -> dict[str, dict[str, Any]]:
        """Every token as stored, hash included (for ``audit verify``)."""
        rows = self.conn.execute(select(t.api_tokens))
        return {r.token_id: {**_info(r).state(), "secret_hash": r.secret_hash} for r in rows}

    def revoke_token(self, token_id: str, *, by: str, at: str) -> bool:
        """Revoke a token; False when it was already revoked (compare-and-set)."""
        done = self.conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.token_id == token_id, t.api_tokens.c.revoked_at.is_(None))
            .values(revoked_by=by, revoked_at=at)
        )
        return bool(done.rowcount)

    # -- monitoring flags ---------------------------------------------------
    def insert_flag(
        self, version_id: int, *, at_risk: bool, document: dict[str, Any], by: str, at: str,
        ledger_seq: int,
    ) -> None:  # fmt: skip
        """Append a flag change (raised or cleared) for a version."""
        values = {"version_id": version_id, "at_risk": at_risk, "by": by, "at": at,
                  "document": json.dumps(document), "ledger_seq": ledger_seq}  # fmt: skip
        self.conn.execute(insert(t.version_flags).values(**values))

    def current_flags(self, version_id: int | None = None) -> dict[int, dict[str, Any]]:
        """The latest flag of each flagged version: ``{version id: flag}``."""
        f = t.version_flags
        latest = select(func.max(f.c.id)).group_by(f.c.version_id)
        if version_id is not None:
            latest = latest.where(f.c.version_id == version_id)
        rows = self.conn.execute(select(f).where(f.c.id.in_(latest.scalar_subquery())))
        return {r.version_id: _flag(r) for r in rows}

    def version_ref(self, version_id: int) -> str:
        """``name@version`` of one version (``?@?`` if it is gone)."""
        row = self.conn.execute(
            select(t.models.c.name, t.versions.c.version)
            .join(t.models, t.models.c.id == t.versions.c.model_id)
            .where(t.versions.c.id == version_id)
        ).first()
        return f"{row.name}@{row.version}" if row else "?@?"

    def flag_rows(self) -> list[tuple[int, dict[str, Any]]]:
        """Every flag change in order, for ``audit verify``."""
        rows = self.conn.execute(select(t.version_flags).order_by(t.version_flags.c.id))
        return [(r.version_id, _flag(r)) for r in rows]


def _flag(r: Any) -> dict[str, Any]:
    return {"at_risk": bool(r.at_risk), "document": json.loads(r.document),
            "by": r.by, "at": r.at, "ledger_seq": r.ledger_seq}  # fmt: skip
