"""in-toto statements and DSSE envelopes: right shape, signed, and tamper-evident."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter._profiles import entry_bodies
from charter.domain.canonical import canonical_bytes
from charter.domain.entities import Version, VersionState
from charter.domain.errors import IntegrityError, InvalidInputError
from charter.domain.folding import (
    AmendmentRecord,
    EffectiveProfile,
    ProfileRecord,
    baseline_digest,
    fold,
)
from charter.domain.profile import parse_document
from charter.exports import (
    PAYLOAD_TYPE,
    SAFETY_PROFILE_PREDICATE,
    STATEMENT_TYPE,
    amendment_statement,
    baseline_statement,
    dsse_sign,
    dsse_verify,
    intoto_statement,
    pae,
)

AT = "2026-03-01T10:00:00.000000Z"
LATER = "2026-03-04T10:00:00.000000Z"
MANIFEST_HEX = hashlib.sha256(b"manifest").hexdigest()
BASELINE = """
evaluations: [{name: accuracy, value: 0.9, slice: "region=EU", ci: {low: 0.85, high: 0.95}}]
bias_audits:
  - {sensitive_feature: sex, metric: selection_rate,
     groups: [{group: f, value: 0.3, size: 98}, {group: m, value: 0.5, size: 205}]}
"""
AMENDMENT = "adversarial: [{pack: {name: p, version: '1'}, target: t, attempts: 8, hits: 2}]"


def _records(text: str, *, amendment_id: str | None, at: str) -> list[ProfileRecord]:
    bodies = entry_bodies(parse_document(text), counts={}, user="alice", at=at)
    return [ProfileRecord(b["id"], b["section"], b, amendment_id, at) for b in bodies]


BASE_RECORDS = _records(BASELINE, amendment_id=None, at=AT)
AMEND_RECORDS = _records(AMENDMENT, amendment_id="am-1", at=LATER)
AMENDMENT_RECORD = AmendmentRecord(
    id="am-1",
    reason="red-team campaign in production",
    evidence=("https://example.org/report",),
    retracts=(),
    entry_ids=("adv-1",),
    author="bob",
    created_at=LATER,
)


def make_version(*, published: bool = True) -> Version:
    return Version(
        model="credit-risk",
        version="2.4.0",
        state=VersionState.PUBLISHED if published else VersionState.DRAFT,
        parent=None,
        change_kind=None,
        fp_architecture="sha256:" + "a" * 64,
        fp_data="sha256:" + "b" * 64,
        fp_config="sha256:" + "c" * 64,
        architecture_method="unknown",
        manifest_digest="sha256:" + MANIFEST_HEX,
        file_count=1,
        total_size=10,
        run_id=None,
        commit=None,
        params={},
        datasets=(),
        created_by="alice",
        created_at=AT,
        baseline_digest=baseline_digest(BASE_RECORDS) if published else None,
    )


def make_profile(version: Version, *, amended: bool = False) -> EffectiveProfile:
    return fold(
        ref=version.ref,
        records=BASE_RECORDS + (AMEND_RECORDS if amended else []),
        amendments=[AMENDMENT_RECORD] if amended else [],
        sealed_digest=version.baseline_digest,
    )


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    """The signing key."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def statement() -> dict[str, Any]:
    """A baseline statement of a published version."""
    version = make_version()
    return baseline_statement(version=version, profile=make_profile(version))


@pytest.fixture
def envelope(statement: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The statement signed into a DSSE envelope."""
    return dsse_sign(statement, key, keyid="k1")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_statement_names_the_version_and_its_manifest_digest() -> None:
    stmt = intoto_statement(
        version=make_version(), predicate_type="https://example.org/p", predicate={"x": 1}
    )
    assert stmt == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "credit-risk@2.4.0", "digest": {"sha256": MANIFEST_HEX}}],
        "predicateType": "https://example.org/p",
        "predicate": {"x": 1},
    }


def test_a_malformed_manifest_digest_is_refused() -> None:
    bad = dataclasses.replace(make_version(), manifest_digest="md5:abc")
    with pytest.raises(InvalidInputError, match="malformed manifest digest"):
        intoto_statement(version=bad, predicate_type="https://example.org/p", predicate={})


def test_the_baseline_statement_carries_the_sealed_profile(statement: dict[str, Any]) -> None:
    version = make_version()
    predicate = statement["predicate"]
    assert statement["predicateType"] == SAFETY_PROFILE_PREDICATE
    assert predicate["kind"] == "baseline"
    assert predicate["baseline_digest"] == version.baseline_digest
    assert predicate["profile"] == make_profile(version).to_dict()
    assert [e["id"] for e in predicate["profile"]["entries"]] == ["eval-1", "bias-1"]


def test_a_baseline_statement_needs_a_published_version_and_no_amendments() -> None:
    draft = make_version(published=False)
    with pytest.raises(InvalidInputError, match="not published"):
        baseline_statement(version=draft, profile=make_profile(draft))
    version = make_version()
    with pytest.raises(InvalidInputError, match="baseline_only=True"):
        baseline_statement(version=version, profile=make_profile(version, amended=True))


def test_the_amendment_statement_matches_the_ledger_document() -> None:
    version = make_version()
    bodies = [r.body for r in AMEND_RECORDS]
    stmt = amendment_statement(version=version, amendment=AMENDMENT_RECORD, entries=bodies)
    predicate = stmt["predicate"]
    assert predicate["kind"] == "amendment"
    assert predicate["amendment"] == {**AMENDMENT_RECORD.to_dict(), "entries": bodies}
    assert predicate["baseline_digest"] == version.baseline_digest


def test_an_amendment_statement_refuses_entries_of_another_amendment() -> None:
    with pytest.raises(InvalidInputError, match="added \\['adv-1'\\]"):
        amendment_statement(
            version=make_version(),
            amendment=AMENDMENT_RECORD,
            entries=[r.body for r in BASE_RECORDS],
        )


def test_sign_and_verify_round_trip(
    statement: dict[str, Any], envelope: dict[str, Any], key: Ed25519PrivateKey
) -> None:
    assert envelope["payloadType"] == PAYLOAD_TYPE == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == canonical_bytes(statement)
    assert envelope["signatures"][0]["keyid"] == "k1"
    assert dsse_verify(envelope, key.public_key()) == statement
    # The signature covers PAE(type, payload), checkable without Charter.
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    key.public_key().verify(sig, pae(PAYLOAD_TYPE, canonical_bytes(statement)))
    # The envelope survives a JSON round trip.
    assert dsse_verify(json.loads(json.dumps(envelope)), key.public_key()) == statement


def test_url_safe_unpadded_base64_is_accepted(
    statement: dict[str, Any], envelope: dict[str, Any], key: Ed25519PrivateKey
) -> None:
    def urlsafe(text: str) -> str:
        return base64.urlsafe_b64encode(base64.b64decode(text)).decode().rstrip("=")

    sig = envelope["signatures"][0]
    envelope = {**envelope, "payload": urlsafe(envelope["payload"]),
                "signatures": [{**sig, "sig": urlsafe(sig["sig"])}]}  # fmt: skip
    assert dsse_verify(envelope, key.public_key()) == statement


def test_one_good_signature_among_others_is_enough(
    envelope: dict[str, Any], key: Ed25519PrivateKey
) -> None:
    other = dsse_sign(
        dsse_verify(envelope, key.public_key()), Ed25519PrivateKey.generate(), keyid="k2"
    )
    envelope["signatures"] = other["signatures"] + envelope["signatures"]
    assert dsse_verify(envelope, key.public_key())["_type"] == STATEMENT_TYPE


def test_a_tampered_payload_fails(
    statement: dict[str, Any], envelope: dict[str, Any], key: Ed25519PrivateKey
) -> None:
    statement["predicate"]["baseline_digest"] = "sha256:" + "0" * 64
    envelope["payload"] = _b64(canonical_bytes(statement))
    with pytest.raises(IntegrityError, match="does not verify") as err:
        dsse_verify(envelope, key.public_key())
    assert err.value.details["keyids"] == ["k1"]


def test_a_tampered_signature_fails(envelope: dict[str, Any], key: Ed25519PrivateKey) -> None:
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 0x01
    envelope["signatures"][0]["sig"] = _b64(bytes(sig))
    with pytest.raises(IntegrityError, match="does not verify"):
        dsse_verify(envelope, key.public_key())


def test_another_key_fails(envelope: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError, match="another key"):
        dsse_verify(envelope, Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize("payload_type", ["application/json", "", None])
def test_a_wrong_payload_type_fails(
    envelope: dict[str, Any], key: Ed25519PrivateKey, payload_type: str | None
) -> None:
    envelope["payloadType"] = payload_type
    with pytest.raises(IntegrityError, match="unexpected payloadType"):
        dsse_verify(envelope, key.public_key())


def test_a_signature_over_another_payload_type_fails(
    statement: dict[str, Any], key: Ed25519PrivateKey
) -> None:
    payload = canonical_bytes(statement)
    sig = key.sign(pae("application/json", payload))
    forged = {"payloadType": PAYLOAD_TYPE, "payload": _b64(payload),
              "signatures": [{"keyid": "k1", "sig": _b64(sig)}]}  # fmt: skip
    with pytest.raises(IntegrityError, match="does not verify"):
        dsse_verify(forged, key.public_key())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"payload": "not base64!"}, "payload is not base64"),
        ({"payload": None}, "payload is not base64"),
        ({"signatures": []}, "no signatures"),
        ({"signatures": None}, "no signatures"),
        ({"signatures": ["abc"]}, "must be an object"),
        ({"signatures": [{"keyid": "k1"}]}, "sig is not base64"),
        ({"signatures": [{"keyid": "k1", "sig": "%%%"}]}, "sig is not base64"),
    ],
)
def test_a_malformed_envelope_fails(
    envelope: dict[str, Any], key: Ed25519PrivateKey, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(IntegrityError, match=message):
        dsse_verify({**envelope, **change}, key.public_key())


def test_a_non_object_envelope_fails(key: Ed25519PrivateKey) -> None:
    with pytest.raises(IntegrityError, match="JSON object"):
        dsse_verify([], key.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"\xff not json", "not JSON"), (b'{"_type": "other"}', "not an in-toto statement")],
)
def test_a_signed_payload_that_is_not_a_statement_fails(
    key: Ed25519PrivateKey, payload: bytes, message: str
) -> None:
    signed = {"payloadType": PAYLOAD_TYPE, "payload": _b64(payload),
              "signatures": [{"sig": _b64(key.sign(pae(PAYLOAD_TYPE, payload)))}]}  # fmt: skip
    with pytest.raises(IntegrityError, match=message):
        dsse_verify(signed, key.public_key())


def test_only_statements_are_signed(key: Ed25519PrivateKey) -> None:
    with pytest.raises(InvalidInputError, match="in-toto statements"):
        dsse_sign({"hello": "world"}, key, keyid="k1")


def test_pae_matches_the_dsse_specification_example() -> None:
    # protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected
    # Lengths count bytes, not characters; an empty body is still framed.
    assert pae("t/é", b"") == b"DSSEv1 4 t/\xc3\xa9 0 "
    payload = b'{"a":1}'
    assert pae(PAYLOAD_TYPE, payload) == (b"DSSEv1 28 application/vnd.in-toto+json 7 " + payload)
