"""Registered model cards and what makes one stale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.domain.canonical import canonical_digest
from charter.domain.entities import Model, Version

__all__ = ["CardRecord", "metadata_digest"]


def metadata_digest(model: Model, version: Version) -> str:
    """Digest of everything a card shows besides the profile: model, version, tags."""
    return canonical_digest(
        {
            "model": model.state(),
            "version": version.record(),
            "tags": dict(sorted(version.tags.items())),
        }
    )


@dataclass(frozen=True)
class CardRecord:
    """A rendered card: its content digest and the digests it was rendered from."""

    ref: str
    card_id: str
    format: str
    digest: str
    profile_digest: str
    metadata_digest: str
    rendered_by: str
    rendered_at: str
    stale_reasons: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        """True when the profile or metadata changed after rendering."""
        return bool(self.stale_reasons)

    def state(self) -> dict[str, Any]:
        """The canonical document the ledger records (no staleness: that is derived)."""
        return {
            "card_id": self.card_id,
            "format": self.format,
            "digest": self.digest,
            "profile_digest": self.profile_digest,
            "metadata_digest": self.metadata_digest,
            "rendered_by": self.rendered_by,
            "rendered_at": self.rendered_at,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with staleness."""
        return {
            "ref": self.ref,
            **self.state(),
            "stale": self.stale,
            "stale_reasons": list(self.stale_reasons),
        }
