"""Ed25519-signed checkpoints: signing, verification, tampering, keys, encodings."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.domain.errors import LedgerError
from charter.ledger.checkpoint import (
    Checkpoint,
    checkpoint_body,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_pem,
    sign_checkpoint,
    utc_timestamp,
    verify_checkpoint,
)

ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
TIMESTAMP = "2026-11-27T12:00:00.123456Z"
# A fixed key (RFC 8032 test 1 secret) so the expected key id is stable.
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


@pytest.fixture
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


@pytest.fixture
def checkpoint(private_key: Ed25519PrivateKey) -> Checkpoint:
    return sign_checkpoint(
        private_key,
        origin="charter.example/registry",
        tree_size=8,
        root_hash=ROOT,
        timestamp=TIMESTAMP,
    )


def test_body_format() -> None:
    body = checkpoint_body(origin="reg-1", tree_size=8, root_hash=ROOT, timestamp=TIMESTAMP)
    root_b64 = base64.b64encode(ROOT).decode()
    assert body == f"reg-1\n8\n{root_b64}\n{TIMESTAMP}\n".encode()


def test_sign_and_verify(private_key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    public_key = private_key.public_key()
    assert verify_checkpoint(checkpoint, public_key)
    assert checkpoint.key_id == key_id(public_key)
    public_key.verify(checkpoint.signature, checkpoint.body())  # plain Ed25519 over the body


def test_key_id_is_truncated_sha256_of_raw_public_key(private_key: Ed25519PrivateKey) -> None:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # RFC 8032 test 1 public key.
    assert raw.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert key_id(private_key.public_key()) == hashlib.sha256(raw).digest()[:8].hex()
    assert len(key_id(private_key.public_key())) == 16


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "someone-else"},
        {"tree_size": 9},
        {"tree_size": 7},
        {"root_hash": bytes(32)},
        {"timestamp": "2026-11-27T12:00:00.123457Z"},
        {"key_id": "0000000000000000"},
        {"signature": bytes(64)},
        {"origin": "bad\norigin"},
        {"root_hash": ROOT[:-1]},
        {"signature": b"short"},
        {"timestamp": "yesterday"},
        {"tree_size": -1},
    ],
)
def test_tampered_field_fails(
    private_key: Ed25519PrivateKey, checkpoint: Checkpoint, change: dict[str, object]
) -> None:
    tampered = dataclasses.replace(checkpoint, **change)  # type: ignore[arg-type]
    assert verify_checkpoint(tampered, private_key.public_key()) is False


def test_flipped_signature_bit_fails(
    private_key: Ed25519PrivateKey, checkpoint: Checkpoint
) -> None:
    for i in range(0, 64 * 8, 37):
        signature = bytearray(checkpoint.signature)
        signature[i // 8] ^= 1 << (i % 8)
        tampered = dataclasses.replace(checkpoint, signature=bytes(signature))
        assert not verify_checkpoint(tampered, private_key.public_key())


def test_wrong_key_fails(checkpoint: Checkpoint) -> None:
    other = generate_private_key().public_key()
    assert not verify_checkpoint(checkpoint, other)
    # Even if the attacker copies the key id, the signature does not verify.
    assert not verify_checkpoint(dataclasses.replace(checkpoint, key_id=key_id(other)), other)


def test_verify_with_a_non_ed25519_key_is_a_caller_error(checkpoint: Checkpoint) -> None:
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(LedgerError):
        verify_checkpoint(checkpoint, ec_public)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"tree_size": -1},
        {"tree_size": True},
        {"root_hash": b"\x00" * 31},
        {"timestamp": "2026-11-27 12:00:00"},
        {"timestamp": "2026-11-27T12:00:00+00:00"},
        {"timestamp": "2026-11-27T12:00:00Z\n"},
        {"timestamp": "2026-13-27T12:00:00Z"},
        {"timestamp": "2026-11-27T12:00:00.1234567Z"},
    ],
)
def test_signing_malformed_fields_raises(
    private_key: Ed25519PrivateKey, fields: dict[str, object]
) -> None:
    args: dict[str, object] = {
        "origin": "reg",
        "tree_size": 1,
        "root_hash": ROOT,
        "timestamp": TIMESTAMP,
    }
    args.update(fields)
    with pytest.raises(LedgerError):
        sign_checkpoint(private_key, **args)  # type: ignore[arg-type]


def test_dict_round_trip_through_json(checkpoint: Checkpoint) -> None:
    data = checkpoint.to_dict()
    assert data["root_hash"] == ROOT.hex()
    assert base64.b64decode(data["signature"]) == checkpoint.signature
    assert Checkpoint.from_dict(json.loads(json.dumps(data))) == checkpoint


@pytest.mark.parametrize(
    "change",
    [
        {"root_hash": "zz"},
        {"root_hash": "00" * 31},
        {"signature": "not base64!"},
        {"signature": base64.b64encode(b"short").decode()},
        {"tree_size": "8"},
        {"origin": 7},
        {"key_id": None},
    ],
)
def test_from_dict_rejects_malformed(checkpoint: Checkpoint, change: dict[str, object]) -> None:
    data = checkpoint.to_dict() | change
    with pytest.raises(LedgerError):
        Checkpoint.from_dict(data)


def test_from_dict_rejects_missing_field(checkpoint: Checkpoint) -> None:
    data = checkpoint.to_dict()
    del data["timestamp"]
    with pytest.raises(LedgerError):
        Checkpoint.from_dict(data)


def test_pem_round_trip(private_key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    private_pem = private_key_to_pem(private_key)
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(private_pem)
    assert private_key_to_pem(loaded) == private_pem

    public_pem = public_key_to_pem(private_key.public_key())
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    public_key = load_public_key(public_pem)
    assert verify_checkpoint(checkpoint, public_key)
    assert key_id(public_key) == checkpoint.key_id


def test_generated_keys_differ_and_sign() -> None:
    a, b = generate_private_key(), generate_private_key()
    assert key_id(a.public_key()) != key_id(b.public_key())
    cp = sign_checkpoint(a, origin="o", tree_size=0, root_hash=ROOT, timestamp=TIMESTAMP)
    assert verify_checkpoint(cp, a.public_key())


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"not a pem at all",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_bad_pem_raises_ledger_error(pem: bytes) -> None:
    with pytest.raises(LedgerError):
        load_private_key(pem)
    with pytest.raises(LedgerError):
        load_public_key(pem)


def test_wrong_key_type_raises_ledger_error(private_key: Ed25519PrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ec_public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(LedgerError, match="Ed25519"):
        load_private_key(ec_private_pem)
    with pytest.raises(LedgerError, match="Ed25519"):
        load_public_key(ec_public_pem)
    # A public key where a private one is expected, and the other way round.
    with pytest.raises(LedgerError):
        load_private_key(public_key_to_pem(private_key.public_key()))
    with pytest.raises(LedgerError):
        load_public_key(private_key_to_pem(private_key))


def test_encrypted_private_key_raises_ledger_error(private_key: Ed25519PrivateKey) -> None:
    encrypted = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(LedgerError):
        load_private_key(encrypted)


def test_utc_timestamp() -> None:
    moment = datetime(2026, 11, 27, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert utc_timestamp(moment) == TIMESTAMP
    now = utc_timestamp()
    checkpoint_body(origin="o", tree_size=0, root_hash=ROOT, timestamp=now)  # accepted
    assert datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) <= datetime.now(UTC)
    with pytest.raises(LedgerError):
        utc_timestamp(datetime(2026, 1, 1))  # naive: zone unknown
