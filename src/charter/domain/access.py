"""API tokens: their shape, how a presented token is split and checked, expiry.

A token is ``chr_<token id>_<secret>``. The id is public (it names the token in
lists, revocations and the ledger); only the sha256 of the secret is stored.
The secret is 256 random bits, so a fast hash is enough: there is nothing to
brute-force, unlike a password, and every request pays for the check.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from charter.domain.entities import format_time, parse_time
from charter.domain.errors import InvalidInputError, UnauthorizedError
from charter.domain.stages import Role

__all__ = [
    "Principal",
    "TokenInfo",
    "hash_secret",
    "new_token",
    "parse_expiry",
    "split_token",
]

PREFIX = "chr_"
_ID = re.compile(r"^[0-9a-f]{16}$")
_DURATION = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's user, their current role, the token."""

    user: str
    role: Role
    token_id: str


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret, only whose it is and its lifetime."""

    token_id: str
    user: str
    label: str
    created_by: str
    created_at: str
    expires_at: str | None = None
    revoked_by: str | None = None
    revoked_at: str | None = None

    def state(self) -> dict[str, Any]:
        """Canonical document for the ledger and JSON output."""
        return asdict(self)

    def status(self, at: str) -> str:
        """``active``, ``expired`` or ``revoked`` at time ``at``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"


def new_token() -> tuple[str, str, str]:
    """A fresh token.

    Returns:
        (token string to hand out once, token id, secret hash to store).
    """
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{token_id}_{secret}", token_id, hash_secret(secret)


def hash_secret(secret: str) -> str:
    """The stored form of a token secret."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    """Split a presented token into (token id, secret).

    Raises:
        UnauthorizedError: the string is not shaped like a Charter token.
    """
    body = token.strip()
    token_id, sep, secret = body.removeprefix(PREFIX).partition("_")
    if not body.startswith(PREFIX) or not sep or not _ID.match(token_id) or len(secret) < 20:
        raise UnauthorizedError("malformed token: expected chr_<id>_<secret>")
    return token_id, secret


def parse_expiry(text: str | None, *, now: datetime) -> str | None:
    """Parse ``--expires``: a duration (``90d``, ``12h``, ``30m``, ``2w``) or a time.

    Raises:
        InvalidInputError: neither form, or a time that is not in the future.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    found = _DURATION.match(text)
    if found:
        amount, unit = int(found.group(1)), _UNITS[found.group(2)]
        if amount == 0:
            raise InvalidInputError("an expiry duration must be positive", field="expires")
        return format_time(now + timedelta(**{unit: amount}))
    try:
        moment = parse_time(text)
    except InvalidInputError:
        raise InvalidInputError(
            f"invalid expiry {text!r}: use a duration like 90d, 12h, 30m, 2w "
            "or an ISO-8601 time such as 2027-01-31T00:00:00Z",
            field="expires",
            value=text,
        ) from None
    if moment <= now:
        raise InvalidInputError(f"expiry {text} is not in the future", field="expires")
    return format_time(moment)
