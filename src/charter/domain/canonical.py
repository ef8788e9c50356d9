"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme) and digests over it.

Ledger entries, manifests and state documents are hashed as canonical JSON so
that any party, in any language, recomputes the same bytes and the same digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

__all__ = ["canonical_bytes", "canonical_digest", "loads", "sha256_hex"]


def canonical_bytes(value: Any) -> bytes:
    """Serialise ``value`` to RFC 8785 canonical JSON bytes.

    Raises:
        ValueError: if ``value`` holds something JSON cannot carry (NaN, sets, bytes…).
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise ValueError(f"value cannot be canonicalised: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_digest(value: Any) -> str:
    """Return ``sha256:<hex>`` of the canonical JSON of ``value``."""
    return "sha256:" + sha256_hex(canonical_bytes(value))


def loads(data: bytes | str) -> Any:
    """Parse JSON produced by :func:`canonical_bytes`."""
    return json.loads(data)
