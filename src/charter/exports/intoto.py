"""in-toto Statements (v1) about a version's safety profile, in DSSE envelopes.

A Statement binds a predicate to a subject: here the version, named
``model@version`` and identified by its manifest digest. The envelope is DSSE
protocol v1 (https://github.com/secure-systems-lab/dsse): the payload is the
statement's RFC 8785 canonical JSON, and the Ed25519 signature covers the
pre-authentication encoding (PAE) of payload type and payload, so neither can
be swapped without breaking the signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from charter.domain.canonical import canonical_bytes
from charter.domain.entities import Version
from charter.domain.errors import IntegrityError, InvalidInputError
from charter.domain.folding import AmendmentRecord, EffectiveProfile

__all__ = [
    "PAYLOAD_TYPE",
    "SAFETY_PROFILE_PREDICATE",
    "STATEMENT_TYPE",
    "amendment_statement",
    "baseline_statement",
    "dsse_sign",
    "dsse_verify",
    "intoto_statement",
    "pae",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SAFETY_PROFILE_PREDICATE = "https://charter.dev/attestations/safety-profile/v1"
_SHA256 = re.compile(r"^sha256:([0-9a-f]{64})$")


def intoto_statement(
    *, version: Version, predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    """Build an in-toto Statement v1 whose subject is the version.

    Args:
        version: the subject; named ``model@version``, digested by its manifest digest.
        predicate_type: URI saying what the predicate means.
        predicate: the JSON-ready claim about the subject.

    Returns:
        The statement as a JSON-ready dict.

    Raises:
        InvalidInputError: the manifest digest is not ``sha256:<64 hex>`` or
            ``predicate_type`` is empty.
    """
    match = _SHA256.match(version.manifest_digest)
    if match is None:
        raise InvalidInputError(
            f"{version.ref} has a malformed manifest digest {version.manifest_digest!r}",
            field="manifest_digest",
        )
    if not predicate_type:
        raise InvalidInputError("a statement needs a predicate type", field="predicate_type")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": version.ref, "digest": {"sha256": match.group(1)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def _require_published(version: Version) -> str:
    if version.baseline_digest is None:
        raise InvalidInputError(
            f"{version.ref} is not published: its baseline is sealed at publish",
            field="version",
        )
    return version.baseline_digest


def baseline_statement(*, version: Version, profile: EffectiveProfile) -> dict[str, Any]:
    """Attest a published version's sealed baseline profile.

    Args:
        version: a published version (it carries the sealed baseline digest).
        profile: its baseline, folded with ``baseline_only=True``.

    Returns:
        A statement with predicate ``{"kind": "baseline", "profile": …, "baseline_digest": …}``.

    Raises:
        InvalidInputError: the version is a draft, the profile is of another
            version, or it holds amendments (it is not the baseline).
    """
    sealed = _require_published(version)
    if profile.ref != version.ref:
        raise InvalidInputError(f"the profile is of {profile.ref}, not {version.ref}")
    if profile.amendments or any(e.amendment_id is not None for e in profile.entries):
        raise InvalidInputError(
            "a baseline statement takes the baseline profile alone (fold it with "
            "baseline_only=True); amendments have statements of their own",
            field="profile",
        )
    predicate = {"kind": "baseline", "profile": profile.to_dict(), "baseline_digest": sealed}
    return intoto_statement(
        version=version, predicate_type=SAFETY_PROFILE_PREDICATE, predicate=predicate
    )


def amendment_statement(
    *, version: Version, amendment: AmendmentRecord, entries: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Attest one amendment of a published version's profile.

    The ``amendment`` part of the predicate is the same document the ledger's
    ``profile.amended`` entry carries, so an auditor can compare the two.

    Args:
        version: the published version that was amended.
        amendment: the amendment record (who, when, why, what it retracted).
        entries: the full entry bodies the amendment added, in its order.

    Returns:
        A statement with predicate ``{"kind": "amendment", "amendment": …, "baseline_digest": …}``.

    Raises:
        InvalidInputError: the version is a draft, or ``entries`` are not exactly
            the amendment's entries.
    """
    sealed = _require_published(version)
    given = [str(e.get("id")) for e in entries]
    if given != list(amendment.entry_ids):
        raise InvalidInputError(
            f"amendment {amendment.id} added {list(amendment.entry_ids)}, "
            f"but the entries given are {given}",
            field="entries",
        )
    predicate = {
        "kind": "amendment",
        "amendment": {**amendment.to_dict(), "entries": [dict(e) for e in entries]},
        "baseline_digest": sealed,
    }
    return intoto_statement(
        version=version, predicate_type=SAFETY_PROFILE_PREDICATE, predicate=predicate
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths being byte
    counts in ASCII decimal.

    Args:
        payload_type: the envelope's ``payloadType``.
        payload: the raw (decoded) payload bytes.

    Returns:
        The bytes to sign or verify.
    """
    kind = payload_type.encode("utf-8")
    return b" ".join(
        [b"DSSEv1", str(len(kind)).encode(), kind, str(len(payload)).encode(), payload]
    )


def dsse_sign(
    statement: dict[str, Any], private_key: Ed25519PrivateKey, *, keyid: str
) -> dict[str, Any]:
    """Sign an in-toto statement into a DSSE envelope.

    Args:
        statement: an in-toto Statement v1 (see :func:`intoto_statement`).
        private_key: the Ed25519 signing key.
        keyid: a hint naming the key (not authenticated by the signature).

    Returns:
        ``{"payloadType", "payload", "signatures": [{"keyid", "sig"}]}`` with
        standard base64 for payload and signature.

    Raises:
        InvalidInputError: ``statement`` is not an in-toto Statement v1, or the
            key is not an Ed25519 private key.
        ValueError: the statement holds values canonical JSON cannot carry.
    """
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise InvalidInputError(f"only in-toto statements ({STATEMENT_TYPE}) are signed here")
    if not isinstance(private_key, Ed25519PrivateKey):
        raise InvalidInputError(
            f"expected an Ed25519 private key, got {type(private_key).__name__}"
        )
    payload = canonical_bytes(statement)
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def _b64decode(value: Any, what: str) -> bytes:
    # DSSE allows standard or URL-safe base64; accept both, strictly.
    if isinstance(value, str):
        for altchars in (None, b"-_"):
            try:
                padded = value + "=" * (-len(value) % 4) if altchars else value
                return base64.b64decode(padded, altchars=altchars, validate=True)
            except (binascii.Error, ValueError):
                continue
    raise IntegrityError(f"DSSE envelope: {what} is not base64", field=what)


def dsse_verify(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify a DSSE envelope and return the in-toto statement it carries.

    The envelope is accepted when at least one of its signatures verifies with
    ``public_key`` over PAE(payloadType, payload); the payload is parsed only
    after that.

    Args:
        envelope: the parsed envelope JSON.
        public_key: the Ed25519 key expected to have signed it.

    Returns:
        The decoded statement.

    Raises:
        IntegrityError: the envelope is malformed, its payload type is not
            in-toto, no signature verifies (payload or signature altered, or
            another key signed it), or the payload is not an in-toto Statement v1.
        InvalidInputError: ``public_key`` is not an Ed25519 public key.
    """
    if not isinstance(public_key, Ed25519PublicKey):
        raise InvalidInputError(f"expected an Ed25519 public key, got {type(public_key).__name__}")
    if not isinstance(envelope, dict):
        raise IntegrityError("DSSE envelope must be a JSON object")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise IntegrityError(
            f"DSSE envelope: unexpected payloadType {payload_type!r}, expected {PAYLOAD_TYPE!r}",
            field="payloadType",
        )
    payload = _b64decode(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise IntegrityError("DSSE envelope holds no signatures", field="signatures")
    if not all(isinstance(s, dict) for s in signatures):
        raise IntegrityError("DSSE envelope: each signature must be an object", field="signatures")
    message = pae(PAYLOAD_TYPE, payload)
    if not any(_verifies(public_key, _b64decode(s.get("sig"), "sig"), message) for s in signatures):
        raise IntegrityError(
            "DSSE signature does not verify: the payload or signature was altered, "
            "or another key signed it",
            keyids=[str(s.get("keyid", "")) for s in signatures],
        )
    try:
        statement = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IntegrityError("DSSE payload is not JSON", field="payload") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise IntegrityError(
            f"DSSE payload is not an in-toto statement ({STATEMENT_TYPE})", field="payload"
        )
    return statement


def _verifies(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
