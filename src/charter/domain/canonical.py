"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme) and digests over it.

Ledger entries, manifests and state documents are hashed as canonical JSON so
that any party, in any language, recomputes the same bytes and the same digest.

Speed: the reference serialiser (``rfc8785``) is pure Python, about 4x slower
than the C encoder behind :func:`json.dumps`, and every ledger append and every
manifest check of ``audit verify`` goes through here. For most values the two
produce the same bytes, so :func:`canonical_bytes` takes the C path when it can
prove that, and defers to ``rfc8785`` otherwise. The proof, for values made only
of exact ``dict`` (string keys) / ``list`` / ``tuple`` / ``str`` / ``int`` /
``bool`` / ``None``:

- strings: RFC 8785 escapes ``"``, ``\\`` and U+0000..U+001F exactly like
  ``json.dumps(..., ensure_ascii=False)`` (short forms ``\\b \\t \\n \\f \\r``,
  else lowercase ``\\u00xx``) and writes every other character as UTF-8;
- integers: both print decimal digits; RFC 8785 refuses magnitudes above
  2**53 - 1, so those take the reference path, which raises;
- key order: RFC 8785 sorts keys by UTF-16 code units, Python by code points;
  the two orders differ only for characters outside the Basic Multilingual
  Plane (surrogate pairs sort below U+E000..U+FFFF), so keys holding any take
  the reference path;
- floats, subclasses (enums, ``OrderedDict``…) and anything else take the
  reference path, as do strings that are not valid UTF-8 (lone surrogates).

``tests/perf_paths/test_canonical.py`` checks the equality with property tests.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from charter.domain.errors import UncanonicalValueError

__all__ = ["canonical_bytes", "canonical_digest", "loads", "sha256_hex"]

# RFC 8785 (through I-JSON) limits integers to what an IEEE 754 double holds exactly.
_INT_MAX = 2**53 - 1
_BMP_MAX = "\uffff"

_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode


def canonical_bytes(value: Any) -> bytes:
    """Serialise ``value`` to RFC 8785 canonical JSON bytes.

    Args:
        value: JSON-like data: dicts with string keys, lists, tuples, strings,
            integers within +-(2**53 - 1), floats, booleans and None.

    Returns:
        The canonical UTF-8 bytes.

    Raises:
        UncanonicalValueError: (a ``ValueError`` and an ``InvalidInputError``) if
            ``value`` holds something JSON cannot carry (NaN, sets, bytes,
            integers beyond 2**53 - 1, non-string keys, lone surrogates…).
    """
    if _plain(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference path report it
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise UncanonicalValueError(
            f"a value cannot be stored as canonical JSON: {exc} (JSON numbers are integers "
            "within ±(2**53 - 1) or finite floats; text is valid Unicode)"
        ) from exc


def _plain(value: Any) -> bool:
    """True when ``json.dumps`` provably writes ``value`` as RFC 8785 would.

    Exact type checks on purpose: a ``str`` or ``int`` subclass may serialise
    differently in the two encoders, so it takes the reference path. Scalars
    inside containers are checked inline: most of a document is strings, and a
    call per string would cost more than the encoding saved.
    """
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > _BMP_MAX):
                return False
            if not _plain_scalar(item) and not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110 (a loop: all() over a generator is slower here)
            if not _plain_scalar(item) and not _plain(item):
                return False
        return True
    return _plain_scalar(value)


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    return kind is int and -_INT_MAX <= value <= _INT_MAX


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_digest(value: Any) -> str:
    """Return ``sha256:<hex>`` of the canonical JSON of ``value``.

    Raises:
        ValueError: as :func:`canonical_bytes`.
    """
    return "sha256:" + sha256_hex(canonical_bytes(value))


def loads(data: bytes | str) -> Any:
    """Parse JSON produced by :func:`canonical_bytes`."""
    return json.loads(data)
