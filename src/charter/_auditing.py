"""Audit use cases of the registry: the ledger, checkpoints, proofs, verification.

Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter._gates import _require
from charter.artifacts import ArtifactStore, GcReport
from charter.audit import Problem, VerifyReport, verify_artifacts, verify_registry
from charter.domain.entities import LedgerRecord, Version
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.stages import Role
from charter.home import interval_of
from charter.journal import (
    InclusionProof,
    checkpoint_from_row,
    inclusion_proof,
    sign_new_checkpoint,
)
from charter.ledger import Checkpoint, public_key_to_pem
from charter.settings import Settings
from charter.store import Store

__all__ = ["AuditUseCases"]


class _Host(Protocol):
    settings: Settings
    store: Store
    artifacts: ArtifactStore
    _key: Ed25519PrivateKey

    def get_version(self, *, model: str, version: str) -> Version: ...

    def checkpoint(self, *, sign: bool = True) -> Checkpoint | None: ...

    @property
    def user(self) -> str: ...


class AuditUseCases:
    """Reading, proving and verifying the audit ledger."""

    def audit_log(self: _Host, *, start: int = 0, limit: int | None = None) -> list[LedgerRecord]:
        """Return ledger entries from ``start`` (at most ``limit``)."""
        with self.store.read() as tx:
            return tx.entries(start, None if limit is None else start + limit)

    def checkpoint(self: _Host, *, sign: bool = True) -> Checkpoint | None:
        """Return the latest signed checkpoint, signing a new one first if the log grew."""
        if sign:
            with self.store.write() as tx:
                if tx.ledger_size() == 0:
                    return None
                return sign_new_checkpoint(tx, key=self._key)
        with self.store.read() as tx:
            row = tx.latest_checkpoint()
            return checkpoint_from_row(row, origin=tx.ledger_origin() or "") if row else None

    def proof(self: _Host, *, seq: int) -> InclusionProof:
        """Prove entry ``seq`` against the latest checkpoint (signed now if needed)."""
        cp = self.checkpoint(sign=True)
        if cp is None:
            raise NotFoundError("the ledger is empty", seq=seq)
        with self.store.read() as tx:
            return inclusion_proof(tx, seq=seq, checkpoint=cp)

    def public_key_pem(self: _Host) -> bytes:
        """The PEM public key that verifies this registry's checkpoints."""
        return public_key_to_pem(self._key.public_key())

    def verify(self: _Host, *, artifacts: bool = False) -> VerifyReport:
        """Recompute the ledger, check checkpoints and cross-check state rows."""
        with self.store.read() as tx:
            stored, origin = tx.checkpoint_every(), tx.ledger_origin()
        declared = interval_of(origin)
        report = verify_registry(
            self.store, public_key=self._key.public_key(), checkpoint_every=declared or stored
        )
        if declared is not None and stored != declared:
            report = report.extend(
                VerifyReport(
                    problems=(
                        Problem(
                            "ledger",
                            "head",
                            f"the head row says a checkpoint every {stored} entries, but the "
                            f"signed log identity says every {declared}",
                        ),
                    )
                )
            )
        if artifacts:
            report = report.extend(verify_artifacts(self.store, self.artifacts))
        return report

    def verify_version(self: _Host, *, model: str, version: str) -> VerifyReport:
        """Re-hash every stored file of ``model@version`` against its manifest."""
        self.get_version(model=model, version=version)
        return verify_artifacts(self.store, self.artifacts, only=(model, version))

    def gc(
        self: _Host, *, older_than_s: float = 3600.0, blobs: bool = False, dry_run: bool = False
    ) -> GcReport:
        """Remove what interrupted uploads left in the artifact store (admin only).

        Args:
            older_than_s: only what is untouched this long goes, so uploads and
                registrations in progress are safe.
            blobs: also delete blobs no manifest or model card references (blobs
                uploaded for a registration that never happened).
            dry_run: only report what would go.

        Raises:
            ForbiddenError: the acting user is not an admin.
            InvalidInputError: a negative age.
        """
        if older_than_s < 0:
            raise InvalidInputError("--older-than must not be negative", field="older_than")
        with self.store.read() as tx:
            if tx.list_users():
                _require(tx, self.user, Role.ADMIN, "collect garbage")
            # Read inside the same transaction as the check: a registration committing
            # after this read re-uses blobs younger than ``older_than_s``, which stay.
            referenced = tx.referenced_digests() if blobs else None
        return self.artifacts.collect_garbage(
            older_than_s=older_than_s, referenced=referenced, dry_run=dry_run
        )
