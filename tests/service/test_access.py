"""API tokens: creation, authentication, expiry, revocation, and their audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update

from charter.domain.access import hash_secret
from charter.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from charter.domain.stages import Role
from charter.service import Registry
from charter.store import schema as t


def test_a_token_authenticates_as_its_user_with_their_current_role(registry: Registry) -> None:
    registry.add_user(name="bob", role="viewer")
    token, info = registry.create_token(user="bob", label="ci")
    assert token.startswith(f"chr_{info.token_id}_") and info.created_by == "alice"
    principal = registry.authenticate(token=token)
    assert (principal.user, principal.role, principal.token_id) == (
        "bob",
        Role.VIEWER,
        info.token_id,
    )
    registry.add_user(name="bob", role="approver")
    assert registry.authenticate(token=token).role is Role.APPROVER
    listed = registry.list_tokens(user="bob")
    assert [x.token_id for x in listed] == [info.token_id]
    assert token not in repr(listed) and "secret" not in listed[0].state()


@pytest.mark.parametrize(
    "presented",
    ["", "Bearer x", "chr_", "chr_zzzz_abc", "chr_0123456789abcdef_" + "x" * 43, "token"],
)
def test_bad_tokens_are_unauthorized(registry: Registry, presented: str) -> None:
    with pytest.raises(UnauthorizedError):
        registry.authenticate(token=presented)


def test_a_guessed_secret_for_a_real_id_is_refused(registry: Registry) -> None:
    token, info = registry.create_token(user="alice")
    forged = f"chr_{info.token_id}_" + "A" * 43
    with pytest.raises(UnauthorizedError, match="unknown token"):
        registry.authenticate(token=forged)
    assert registry.authenticate(token=token).user == "alice"


def test_revoked_and_expired_tokens_are_refused(registry: Registry) -> None:
    token, info = registry.create_token(user="alice", expires="1h")
    assert info.expires_at is not None
    revoked = registry.revoke_token(token_id=info.token_id)
    assert revoked.revoked_by == "alice"
    with pytest.raises(UnauthorizedError, match="revoked"):
        registry.authenticate(token=token)
    with pytest.raises(InvalidInputError, match="already revoked"):
        registry.revoke_token(token_id=info.token_id)
    # An expiry in the past can only come from the database (the API refuses it).
    token2, info2 = registry.create_token(user="alice", expires="2099-01-01T00:00:00Z")
    with registry.store.write() as tx:
        tx.conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.token_id == info2.token_id)
            .values(expires_at="2000-01-01T00:00:00.000000Z")
        )
    with pytest.raises(UnauthorizedError, match="expired"):
        registry.authenticate(token=token2)


@pytest.mark.parametrize("expires", ["yesterday", "0d", "2000-01-01T00:00:00Z", "5y"])
def test_bad_expiry_is_refused_and_creates_nothing(registry: Registry, expires: str) -> None:
    size = registry.audit_log()[-1].seq
    with pytest.raises(InvalidInputError, match="expir"):
        registry.create_token(user="alice", expires=expires)
    assert registry.list_tokens() == [] and registry.audit_log()[-1].seq == size


def test_only_admins_create_or_revoke_tokens_for_others(registry: Registry) -> None:
    registry.add_user(name="bob", role="contributor")
    registry.add_user(name="carol", role="viewer")
    bob = registry.as_user("bob")
    own, info = bob.create_token(user="bob")
    assert registry.authenticate(token=own).user == "bob"
    with pytest.raises(ForbiddenError, match="admin"):
        bob.create_token(user="carol")
    _, alice_token = registry.create_token(user="alice")
    with pytest.raises(ForbiddenError):
        bob.revoke_token(token_id=alice_token.token_id)
    bob.revoke_token(token_id=info.token_id)
    with pytest.raises(NotFoundError, match="unknown user"):
        registry.create_token(user="mallory")


def test_as_user_records_the_acting_user_in_the_ledger(registry: Registry) -> None:
    registry.add_user(name="bob", role="admin")
    registry.as_user("bob").create_model(name="credit")
    assert registry.audit_log()[-1].actor == "bob"
    assert registry.user == "alice"


def test_audit_catches_a_token_row_slipped_in_or_edited(registry: Registry) -> None:
    _, info = registry.create_token(user="alice")
    assert registry.verify().ok
    with registry.store.write() as tx:
        tx.conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.token_id == info.token_id)
            .values(secret_hash=hash_secret("attacker-chosen-secret-xxxxxxxxxxxx"))
        )
    report = registry.verify()
    assert not report.ok and any("API token" in p.where for p in report.problems)


def test_audit_catches_a_token_inserted_without_a_ledger_entry(registry: Registry) -> None:
    with registry.store.write() as tx:
        tx.conn.execute(
            insert(t.api_tokens).values(
                token_id="0123456789abcdef",
                user="alice",
                secret_hash=hash_secret("s" * 43),
                label="",
                created_by="alice",
                created_at="2026-01-01T00:00:00.000000Z",
            )
        )
    report = registry.verify()
    assert not report.ok
    assert any("without a ledger entry" in p.message for p in report.problems)
