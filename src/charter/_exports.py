"""Export use cases: CycloneDX ML-BOM and in-toto statements (optionally DSSE-signed).

Mixed into :class:`charter.service.Registry`; the documents themselves are
built by :mod:`charter.exports` from domain objects.
"""

from __future__ import annotations

from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.domain.entities import FileRecord, Model, Version
from charter.domain.errors import InvalidInputError
from charter.domain.folding import EffectiveProfile, ProfileRecord
from charter.exports import amendment_statement, baseline_statement, cyclonedx_bom, dsse_sign
from charter.ledger import key_id

__all__ = ["ExportUseCases"]


class _Host(Protocol):
    _key: Ed25519PrivateKey

    def get_model(self, *, name: str) -> Model: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def files(self, *, model: str, version: str) -> list[FileRecord]: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def profile_records(self, *, model: str, version: str) -> list[ProfileRecord]: ...


class ExportUseCases:
    """Standard exports of a version's safety facts."""

    def export(
        self: _Host, *, model: str, version: str, fmt: str, sign: bool = False
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Export ``model@version`` as ``cyclonedx`` or ``in-toto``.

        Args:
            fmt: ``cyclonedx`` (a CycloneDX 1.6 BOM) or ``in-toto`` (one Statement for
                the baseline and one per amendment; DSSE envelopes when ``sign``).
            sign: sign in-toto statements with the registry's Ed25519 key.

        Raises:
            InvalidInputError: unknown format, signing a BOM, or in-toto of a draft.
        """
        v = self.get_version(model=model, version=version)
        if fmt == "cyclonedx":
            if sign:
                raise InvalidInputError("--sign applies to in-toto statements", field="sign")
            return cyclonedx_bom(
                model=self.get_model(name=model),
                version=v,
                files=self.files(model=model, version=version),
                profile=self.profile(model=model, version=version),
            )
        if fmt != "in-toto":
            raise InvalidInputError(
                f"unknown export format {fmt!r}: use cyclonedx or in-toto", field="format"
            )
        current = self.profile(model=model, version=version)
        statements = [
            baseline_statement(
                version=v, profile=self.profile(model=model, version=version, baseline=True)
            )
        ]
        # An amendment's entries may since be superseded: take them from all records.
        bodies = {r.entry_id: r.body for r in self.profile_records(model=model, version=version)}
        for amendment in current.amendments:
            entries = [bodies[i] for i in amendment.entry_ids]
            statements.append(amendment_statement(version=v, amendment=amendment, entries=entries))
        if not sign:
            return statements
        kid = key_id(self._key.public_key())
        return [dsse_sign(s, self._key, keyid=kid) for s in statements]
