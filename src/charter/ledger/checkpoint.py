"""Signed checkpoints: a log's size and root, signed with Ed25519.

A checkpoint commits the log operator to one tree: anyone holding the public key
can check that a root really is the registry's, and two checkpoints can then be
tied together with a consistency proof. The signed body follows the spirit of
the C2SP / transparency-dev checkpoint note, one field per line::

    <origin>
    <tree size, decimal>
    <root hash, standard base64 with padding>
    <timestamp, ISO-8601 UTC, e.g. 2026-11-27T12:00:00.123456Z>

each line ending in ``\\n``. The key id is the first 8 bytes of SHA-256 over the
raw 32-byte Ed25519 public key, in hex (16 characters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from charter.domain.errors import LedgerError

from .merkle import HASH_SIZE

__all__ = [
    "Checkpoint",
    "checkpoint_body",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_to_pem",
    "public_key_to_pem",
    "sign_checkpoint",
    "utc_timestamp",
    "verify_checkpoint",
]

# Strict on purpose: the body is signed text, so one spelling per instant keeps
# "same checkpoint" and "same bytes" the same question.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_SIGNATURE_SIZE = 64


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the log ``origin`` had ``tree_size`` leaves and this root".

    Attributes:
        origin: identity of the log (e.g. the registry id); no newlines.
        tree_size: number of leaves.
        root_hash: raw 32-byte root (RFC 9162 MTH) of the first ``tree_size`` leaves.
        timestamp: when it was signed, ISO-8601 UTC ending in ``Z``.
        key_id: 16 hex characters identifying the signing key (see :func:`key_id`).
        signature: raw 64-byte Ed25519 signature over :meth:`body`.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: str
    key_id: str
    signature: bytes

    def body(self) -> bytes:
        """Return the signed message (see :func:`checkpoint_body`).

        Raises:
            LedgerError: if a field cannot be encoded.
        """
        return checkpoint_body(
            origin=self.origin,
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            timestamp=self.timestamp,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping.

        ``root_hash`` is lowercase hex (as elsewhere in Charter), ``signature``
        standard base64 (as in signed notes); the other fields are as stored.

        Returns:
            ``{"origin", "tree_size", "root_hash", "timestamp", "key_id", "signature"}``.
        """
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Parse the output of :meth:`to_dict`.

        Args:
            data: mapping with the six fields, encoded as :meth:`to_dict` does.

        Returns:
            The checkpoint (its signature is *not* verified here).

        Raises:
            LedgerError: if a field is missing, of the wrong type or badly encoded.
        """
        try:
            origin, size, timestamp, kid = (
                data["origin"],
                data["tree_size"],
                data["timestamp"],
                data["key_id"],
            )
            root_hash = bytes.fromhex(data["root_hash"])
            signature = base64.b64decode(data["signature"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise LedgerError(f"malformed checkpoint: {exc!r}") from exc
        if not (isinstance(origin, str) and isinstance(timestamp, str) and isinstance(kid, str)):
            raise LedgerError("malformed checkpoint: origin, timestamp and key_id must be strings")
        if not isinstance(size, int) or isinstance(size, bool):
            raise LedgerError("malformed checkpoint: tree_size must be an integer")
        if len(root_hash) != HASH_SIZE or len(signature) != _SIGNATURE_SIZE:
            raise LedgerError(
                f"malformed checkpoint: root_hash must be {HASH_SIZE} bytes "
                f"and signature {_SIGNATURE_SIZE} bytes"
            )
        return cls(
            origin=origin,
            tree_size=size,
            root_hash=root_hash,
            timestamp=timestamp,
            key_id=kid,
            signature=signature,
        )


def checkpoint_body(*, origin: str, tree_size: int, root_hash: bytes, timestamp: str) -> bytes:
    """Return the exact bytes a checkpoint signature covers.

    Args:
        origin: log identity; non-empty, no newline.
        tree_size: number of leaves, >= 0.
        root_hash: raw 32-byte root.
        timestamp: ISO-8601 UTC such as ``2026-11-27T12:00:00.123456Z``.

    Returns:
        ``f"{origin}\\n{tree_size}\\n{base64(root)}\\n{timestamp}\\n"`` as UTF-8.

    Raises:
        LedgerError: if a field is malformed (a newline would make the body ambiguous).
    """
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise LedgerError("checkpoint origin must be a non-empty line of text", origin=origin)
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
        raise LedgerError(f"checkpoint tree size must be an integer >= 0, got {tree_size!r}")
    if not isinstance(root_hash, bytes) or len(root_hash) != HASH_SIZE:
        raise LedgerError(f"checkpoint root must be {HASH_SIZE} raw bytes")
    if not isinstance(timestamp, str) or not _valid_timestamp(timestamp):
        raise LedgerError(
            f"checkpoint timestamp must be ISO-8601 UTC like 2026-11-27T12:00:00.123456Z, "
            f"got {timestamp!r}",
            timestamp=timestamp,
        )
    root_b64 = base64.b64encode(root_hash).decode("ascii")
    return f"{origin}\n{tree_size}\n{root_b64}\n{timestamp}\n".encode()


def _valid_timestamp(text: str) -> bool:
    if not _TIMESTAMP.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)  # the shape is right; are the values (month 13)?
    except ValueError:
        return False
    return True


def utc_timestamp(moment: datetime | None = None) -> str:
    """Format an instant the way checkpoints spell it.

    Args:
        moment: an aware datetime; ``None`` means now.

    Returns:
        ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC.

    Raises:
        LedgerError: if ``moment`` is naive (its zone would be a guess).
    """
    if moment is None:
        moment = datetime.now(UTC)
    elif moment.tzinfo is None:
        raise LedgerError("checkpoint timestamps need a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate_private_key() -> Ed25519PrivateKey:
    """Create a new Ed25519 signing key.

    Returns:
        The private key.
    """
    return Ed25519PrivateKey.generate()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return the short id of a public key: hex of SHA-256(raw key)[:8].

    Args:
        public_key: an Ed25519 public key.

    Returns:
        16 lowercase hex characters.

    Raises:
        LedgerError: if ``public_key`` is not an Ed25519 public key.
    """
    if not isinstance(public_key, Ed25519PublicKey):
        raise LedgerError(f"expected an Ed25519 public key, got {type(public_key).__name__}")
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8].hex()


def private_key_to_pem(private_key: Ed25519PrivateKey) -> bytes:
    """Serialise a private key as unencrypted PKCS#8 PEM.

    Unencrypted because the registry home protects the file by permissions and
    has no secret to derive an encryption key from; store it accordingly.

    Args:
        private_key: the Ed25519 private key.

    Returns:
        PEM bytes (``-----BEGIN PRIVATE KEY-----``).
    """
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from unencrypted PKCS#8 PEM.

    Args:
        pem: PEM bytes as written by :func:`private_key_to_pem`.

    Returns:
        The private key.

    Raises:
        LedgerError: if the PEM is malformed, encrypted, or not an Ed25519 key.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise LedgerError(f"cannot load the ledger signing key from PEM: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(
            f"the ledger signing key must be Ed25519, got {type(key).__name__}",
            key_type=type(key).__name__,
        )
    return key


def public_key_to_pem(public_key: Ed25519PublicKey) -> bytes:
    """Serialise a public key as SubjectPublicKeyInfo PEM.

    Args:
        public_key: the Ed25519 public key.

    Returns:
        PEM bytes (``-----BEGIN PUBLIC KEY-----``).
    """
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key from SubjectPublicKeyInfo PEM.

    Args:
        pem: PEM bytes as written by :func:`public_key_to_pem`.

    Returns:
        The public key.

    Raises:
        LedgerError: if the PEM is malformed or not an Ed25519 key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise LedgerError(f"cannot load the ledger public key from PEM: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError(
            f"the ledger public key must be Ed25519, got {type(key).__name__}",
            key_type=type(key).__name__,
        )
    return key


def sign_checkpoint(
    private_key: Ed25519PrivateKey,
    *,
    origin: str,
    tree_size: int,
    root_hash: bytes,
    timestamp: str,
) -> Checkpoint:
    """Sign a checkpoint.

    Args:
        private_key: the log's Ed25519 signing key.
        origin: log identity.
        tree_size: number of leaves.
        root_hash: raw 32-byte root of those leaves.
        timestamp: ISO-8601 UTC (see :func:`utc_timestamp`).

    Returns:
        The signed checkpoint.

    Raises:
        LedgerError: if a field is malformed or the key is not Ed25519.
    """
    if not isinstance(private_key, Ed25519PrivateKey):
        raise LedgerError(f"expected an Ed25519 private key, got {type(private_key).__name__}")
    body = checkpoint_body(
        origin=origin, tree_size=tree_size, root_hash=root_hash, timestamp=timestamp
    )
    return Checkpoint(
        origin=origin,
        tree_size=tree_size,
        root_hash=root_hash,
        timestamp=timestamp,
        key_id=key_id(private_key.public_key()),
        signature=private_key.sign(body),
    )


def verify_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Check a checkpoint's signature and key id against a trusted public key.

    Args:
        checkpoint: the checkpoint to check.
        public_key: the log's trusted Ed25519 public key.

    Returns:
        ``True`` only if the key id names ``public_key`` and the signature covers
        exactly these fields; ``False`` for any mismatch or malformed field.

    Raises:
        LedgerError: if ``public_key`` is not an Ed25519 public key (a caller
            bug, not a property of the checkpoint).
    """
    expected_id = key_id(public_key)
    if checkpoint.key_id != expected_id:
        return False
    if not isinstance(checkpoint.signature, bytes) or len(checkpoint.signature) != _SIGNATURE_SIZE:
        return False
    try:
        body = checkpoint.body()
    except LedgerError:
        return False
    try:
        public_key.verify(checkpoint.signature, body)
    except InvalidSignature:
        return False
    return True
