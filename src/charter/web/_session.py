"""The web session: an encrypted cookie holding the user's token and a CSRF secret.

The cookie is stateless (no server-side session table), so any number of server
processes can serve a user as long as they share the secret. It is encrypted
and authenticated with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``), not merely signed: it carries the bearer token the user
logged in with, and every request re-checks that token with
:meth:`~charter.service.Registry.authenticate`, so a revoked or expired token
logs the user out on their next click. Fernet's timestamp gives every session
an absolute lifetime (:data:`MAX_AGE_S`) on top of the token's own expiry.

CSRF uses the synchronizer pattern: a random per-session secret, inside the
encrypted cookie, that every POST must repeat in a ``csrf_token`` form field or
an ``X-CSRF-Token`` header (htmx sends it from ``hx-headers`` on ``<body>``).
A cross-site page can make the browser send the cookie, but cannot read the
secret out of it or out of our pages. The login form is protected the same
way, by an anonymous session issued with the form.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from charter.service import Registry

__all__ = ["COOKIE", "MAX_AGE_S", "Session", "SessionCodec", "server_secret"]

COOKIE = "charter_session"
MAX_AGE_S = 12 * 3600
_INFO = b"charter web session cookie v1"


@dataclass(frozen=True)
class Session:
    """What the cookie holds.

    Attributes:
        csrf: the per-session CSRF secret every form repeats.
        token: the bearer token of the logged-in user (None: anonymous).
        flash: a one-time message ``(kind, text)`` for the next page shown.
    """

    csrf: str
    token: str | None = None
    flash: tuple[str, str] | None = None

    @classmethod
    def fresh(cls, *, token: str | None = None) -> Session:
        """A new session with a new CSRF secret (at login and logout: no fixation)."""
        return cls(csrf=secrets.token_urlsafe(32), token=token)

    def with_flash(self, kind: str, text: str) -> Session:
        """This session, carrying a message for the next page."""
        return replace(self, flash=(kind, text))

    def csrf_matches(self, presented: str | None) -> bool:
        """Constant-time comparison of a presented CSRF token with the session's."""
        return bool(presented) and hmac.compare_digest(
            self.csrf.encode(), (presented or "").encode()
        )


class SessionCodec:
    """Encrypts sessions into cookie values and back.

    Example:
        >>> codec = SessionCodec(b"a server secret")
        >>> s = Session.fresh()
        >>> codec.loads(codec.dumps(s)) == s
        True
        >>> codec.loads("forged") is None
        True
    """

    def __init__(self, secret: bytes, *, max_age_s: int = MAX_AGE_S) -> None:
        # HKDF separates this key from whatever else the secret is used for.
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.max_age_s = max_age_s

    def dumps(self, session: Session) -> str:
        """Encrypt ``session`` into a cookie value."""
        data: dict[str, Any] = {"c": session.csrf, "t": session.token}
        if session.flash is not None:
            data["f"] = list(session.flash)
        return self._fernet.encrypt(json.dumps(data).encode()).decode("ascii")

    def loads(self, value: str | None) -> Session | None:
        """Decrypt a cookie value; None when absent, forged, altered or too old."""
        if not value:
            return None
        try:
            raw = self._fernet.decrypt(value.encode("ascii"), ttl=self.max_age_s)
            data = json.loads(raw)
        except (InvalidToken, UnicodeError, ValueError, binascii.Error):
            return None
        flash = data.get("f")
        return Session(
            csrf=str(data["c"]),
            token=data.get("t"),
            flash=(str(flash[0]), str(flash[1])) if flash else None,
        )


def server_secret(registry: Registry) -> bytes:
    """The secret session keys derive from.

    ``Settings.session_secret`` when the settings carry one; otherwise the
    registry's ledger signing key, which every server process of a registry
    already shares (HKDF with a label of its own keeps the two uses apart, and
    the derived key reveals nothing about the signing key). Rotating either
    logs every web user out.
    """
    configured = getattr(registry.settings, "session_secret", None)
    if configured:
        value = (
            configured.get_secret_value() if hasattr(configured, "get_secret_value") else configured
        )
        return str(value).encode()
    return registry._key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
