"""Access use cases: API tokens for the server, and authenticating a request.

Tokens are created, listed and revoked here (and so from the CLI of a local
home, or over the API); each creation and revocation is a ledger event that
carries the secret's hash, so ``audit verify`` catches a token row slipped into
the database behind the ledger's back. Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from charter._gates import _Host, _require
from charter.domain.access import (
    Principal,
    TokenInfo,
    hash_secret,
    new_token,
    parse_expiry,
    split_token,
)
from charter.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from charter.domain.stages import Role
from charter.journal import now

__all__ = ["AccessUseCases"]


class AccessUseCases:
    """API tokens and request authentication."""

    def create_token(
        self: _Host, *, user: str, expires: str | None = None, label: str = ""
    ) -> tuple[str, TokenInfo]:
        """Create a bearer token for ``user`` (admins for anyone; users for themselves).

        Args:
            user: a registry user (``charter user add``): the token acts with their role.
            expires: a duration (``90d``, ``12h``) or an ISO-8601 time; None = never.
            label: what the token is for, shown in lists.

        Returns:
            (the token, shown this once and never stored; its listing).

        Raises:
            InvalidInputError: bad expiry or label. NotFoundError: unknown user.
            ForbiddenError: a non-admin asking for someone else's token.
        """
        at = now()
        expires_at = parse_expiry(expires, now=datetime.now(UTC))
        if len(label) > 200 or any(ord(c) < 32 for c in label):
            raise InvalidInputError("a token label is at most 200 printable characters")
        token, token_id, secret_hash = new_token()
        with self.store.write() as tx:
            if tx.get_user(user) is None:
                raise NotFoundError(
                    f"unknown user {user!r}: add them first with `charter user add {user} "
                    "--role viewer|contributor|approver|admin`",
                    user=user,
                )
            if user != self.user:
                _require(tx, self.user, Role.ADMIN, f"create tokens for {user}")
            info = TokenInfo(token_id, user, label, self.user, at, expires_at)
            tx.insert_token(info, secret_hash=secret_hash)
            state = info.state() | {"secret_hash": secret_hash}
            self._record(tx, "token.created", f"token:{token_id}", {"token": state})
        return token, info

    def list_tokens(self: _Host, *, user: str | None = None) -> list[TokenInfo]:
        """Tokens of ``user`` (or all): never their secrets."""
        with self.store.read() as tx:
            return tx.tokens(user)

    def revoke_token(self: _Host, *, token_id: str) -> TokenInfo:
        """Revoke a token at once (admins any; users their own).

        Raises:
            NotFoundError: no such token. ForbiddenError: someone else's, not admin.
            InvalidInputError: already revoked.
        """
        at = now()
        with self.store.write() as tx:
            found = tx.token_with_role(token_id)
            if found is None:
                raise NotFoundError(f"unknown token {token_id!r}", token_id=token_id)
            info = found[0]
            if info.user != self.user:
                _require(tx, self.user, Role.ADMIN, f"revoke tokens of {info.user}")
            if not tx.revoke_token(token_id, by=self.user, at=at):
                raise InvalidInputError(f"token {token_id} is already revoked", token_id=token_id)
            data = {"token_id": token_id, "revoked_by": self.user, "revoked_at": at}
            self._record(tx, "token.revoked", f"token:{token_id}", data)
        return TokenInfo(**(info.state() | {"revoked_by": self.user, "revoked_at": at}))

    def authenticate(self: _Host, *, token: str) -> Principal:
        """The principal a bearer token stands for, with the user's *current* role.

        Raises:
            UnauthorizedError: malformed, unknown, expired or revoked token, or a user
                who no longer exists. The message says which, never the secret.
        """
        token_id, secret = split_token(token)
        with self.store.read() as tx:
            found = tx.token_with_role(token_id)
        if found is None:
            raise UnauthorizedError("unknown token", token_id=token_id)
        info, stored, role = found
        # Constant-time: the comparison must not tell how much of a guess matched.
        if not hmac.compare_digest(stored, hash_secret(secret)):
            raise UnauthorizedError("unknown token", token_id=token_id)
        status = info.status(now())
        if status != "active":
            when = info.revoked_at if status == "revoked" else info.expires_at
            raise UnauthorizedError(f"token {token_id} was {status} at {when}", token_id=token_id)
        if role is None:
            raise UnauthorizedError(f"the user {info.user} of token {token_id} no longer exists")
        return Principal(info.user, role, token_id)


def require_role(principal: Principal, needed: Role, action: str) -> None:
    """Refuse ``principal`` unless their role includes ``needed``.

    Raises:
        ForbiddenError: naming the role needed and the role held.
    """
    if not principal.role.allows(needed):
        raise ForbiddenError(
            f"{principal.user} may not {action}: it needs the {needed.value} role, "
            f"{principal.user} has {principal.role.value}",
            user=principal.user,
            needed=needed.value,
        )
