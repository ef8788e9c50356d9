"""The one typed settings object, built at the edge (CLI, server, SDK entry).

Every value may come from a ``CHARTER_*`` environment variable or be passed
explicitly. Library code receives a :class:`Settings` and never reads
``os.environ`` itself.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No passwd entry (some containers): still attribute changes to someone.
        return "unknown"


class Settings(BaseSettings):
    """Configuration of a registry.

    Attributes:
        home: registry home folder (SQLite file, artifacts, signing key).
        database_url: SQLAlchemy URL; defaults to ``sqlite:///<home>/registry.db``.
        artifacts_url: fsspec URL of the artifact store; defaults to ``<home>/artifacts``.
        user: the acting user recorded on every change; defaults to the OS user.
        checkpoint_every: sign a ledger checkpoint once the log grew by this many
            entries since the last one (``charter audit checkpoint`` signs on demand).
        sqlite_synchronous: ``NORMAL`` (WAL: durable against process crashes, may lose
            the last commits on power loss) or ``FULL`` (durable against power loss).
        busy_timeout_s: how long a SQLite writer waits for the lock held by another.
        url: a Charter server (``http(s)://host:port``); when set, the CLI and
            ``open_registry()`` work against it instead of a local home.
        token: the bearer token for ``url`` (``charter token create USER``).
        max_request_bytes: the largest JSON request body the server accepts
            (blob uploads stream and are not limited by it).
    """

    model_config = SettingsConfigDict(env_prefix="CHARTER_", extra="forbid")

    home: Path = Field(default=Path(".charter"))
    database_url: str | None = None
    artifacts_url: str | None = None
    user: str = Field(default_factory=_os_user)
    checkpoint_every: int = Field(default=100, ge=1)
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    busy_timeout_s: float = Field(default=30.0, gt=0)
    url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    token: SecretStr | None = None
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    @field_validator("user")
    @classmethod
    def _user_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("user must not be blank")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file inside the home."""
        return self.database_url or f"sqlite:///{self.home.resolve() / 'registry.db'}"

    @property
    def resolved_artifacts_url(self) -> str:
        """The artifact store URL, defaulting to the folder inside the home."""
        return self.artifacts_url or str(self.home.resolve() / "artifacts")

    @property
    def key_path(self) -> Path:
        """Path of the Ed25519 private key that signs ledger checkpoints."""
        return self.home / "keys" / "ledger-ed25519.pem"

    @property
    def hash_cache_path(self) -> Path:
        """Path of the local stat cache that skips re-hashing unchanged files."""
        return self.home / "hashcache.sqlite"
