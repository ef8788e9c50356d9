"""The one error tree of Charter.

Every error a user can cause or meet is a :class:`CharterError` carrying a stable
``code``, a human ``message`` and structured ``details``. Surfaces (CLI, API, web)
map this tree to their output in exactly one place each; nothing below them
prints or exits.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "BumpRefusedError",
    "CharterError",
    "ConflictError",
    "ForbiddenError",
    "GateRefusedError",
    "HomeError",
    "ImmutableError",
    "IntegrityError",
    "InvalidInputError",
    "LedgerError",
    "NotFoundError",
    "StorageError",
    "UnauthorizedError",
]


class CharterError(Exception):
    """Base of every error Charter raises on purpose.

    Attributes:
        code: stable machine-readable identifier (``not_found``, ``invalid_input``…).
        exit_code: CLI exit status: 1 = refused / a check failed, 2 = usage or input error.
        message: one sentence saying what was wrong, where, and what is valid.
        details: structured fields (``field``, ``value``, ``valid``…) for JSON output.
    """

    code: ClassVar[str] = "charter_error"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-ready mapping (``code``, ``message``, ``details``)."""
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInputError(CharterError):
    """A value given by the user is malformed (bad semver, bad name, bad path…)."""

    code = "invalid_input"
    exit_code = 2


class UncanonicalValueError(InvalidInputError, ValueError):
    """A value canonical JSON cannot carry (NaN, integers beyond 2**53 - 1, lone surrogates).

    Also a ``ValueError``, which :func:`charter.domain.canonical.canonical_bytes`
    raised before: callers catching that still do.
    """


class NotFoundError(CharterError):
    """A named model, version, entry or file does not exist."""

    code = "not_found"
    exit_code = 2


class AlreadyExistsError(CharterError):
    """Something with that identity exists already (model name, version number)."""

    code = "already_exists"
    exit_code = 2


class ConflictError(CharterError):
    """The state moved under us (a concurrent writer won a compare-and-set)."""

    code = "conflict"
    exit_code = 1


class BumpRefusedError(CharterError):
    """The declared change kind is smaller than what the fingerprints show."""

    code = "bump_refused"
    exit_code = 1


class ImmutableError(CharterError):
    """An attempt to change something sealed (a published version, a baseline)."""

    code = "immutable"
    exit_code = 1


class IntegrityError(CharterError):
    """Stored bytes or records disagree with their digests or with the ledger."""

    code = "integrity"
    exit_code = 1


class LedgerError(CharterError):
    """The audit ledger cannot produce what was asked (bad proof request, bad key)."""

    code = "ledger"
    exit_code = 1


class HomeError(CharterError):
    """The registry home is missing, unreadable or not initialised."""

    code = "home"
    exit_code = 2


class StorageError(CharterError):
    """The database or artifact store failed or is corrupted."""

    code = "storage"
    exit_code = 1


class ForbiddenError(CharterError):
    """The acting user's role does not allow this action."""

    code = "forbidden"
    exit_code = 1


class GateRefusedError(CharterError):
    """A promotion was refused: the gate failed or approvals are missing."""

    code = "gate_refused"
    exit_code = 1


class UnauthorizedError(CharterError):
    """No valid credentials: the token is missing, unknown, expired or revoked."""

    code = "unauthorized"
    exit_code = 1
