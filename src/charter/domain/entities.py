"""Entities of the registry: models, versions, files, datasets, ledger events.

Entities are frozen: a change is a new value, written by the service together
with the ledger event that records it. Each entity knows its *state document*,
the canonical dict whose digest the ledger carries, so ``audit verify`` can
check that stored rows are what the ledger says they should be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from charter.domain.canonical import canonical_digest
from charter.domain.errors import InvalidInputError

__all__ = [
    "DatasetRef",
    "Event",
    "FileRecord",
    "LedgerRecord",
    "Model",
    "RiskTier",
    "Version",
    "VersionState",
    "canonical_time",
    "format_time",
    "parse_time",
]


class RiskTier(StrEnum):
    """How much harm a model can do; policies demand more evidence for higher tiers."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @classmethod
    def parse(cls, value: str) -> RiskTier:
        """Parse a risk tier.

        Raises:
            InvalidInputError: when ``value`` is not low, medium or high.
        """
        try:
            return cls(value)
        except ValueError:
            raise InvalidInputError(
                f"invalid risk tier {value!r}: use low, medium or high",
                field="risk_tier",
                value=value,
                valid=[t.value for t in cls],
            ) from None


class VersionState(StrEnum):
    """Lifecycle of a version: drafts are editable, published versions are frozen."""

    DRAFT = "draft"
    PUBLISHED = "published"


def format_time(moment: datetime) -> str:
    """Render a UTC timestamp as ISO-8601 with microseconds and a ``Z`` suffix.

    Always the same width (four-digit years too), so that recorded times
    compare as strings in time order.
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive means UTC).

    Raises:
        InvalidInputError: when ``text`` is not an ISO-8601 timestamp.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"invalid time {text!r}: use ISO-8601, e.g. 2026-03-03T12:00:00Z",
            field="time",
            value=text,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def canonical_time(text: str) -> str:
    """A user's ISO-8601 time as Charter records times (UTC, microseconds, ``Z``).

    Recorded times are compared as strings, so a time to compare them with must
    be in the same form first: ``2026-03-03``, ``2026-03-03T13:00:00+01:00`` and
    ``2026-03-03T12:00:00Z`` each name one instant.

    Raises:
        InvalidInputError: when ``text`` is not an ISO-8601 time (or names an
            instant that cannot be written in UTC).
    """
    try:
        return format_time(parse_time(text))
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise InvalidInputError(
            f"invalid time {text!r}: out of range", field="time", value=text
        ) from None


@dataclass(frozen=True)
class Model:
    """A named line of versions."""

    name: str
    description: str
    owner: str
    risk_tier: RiskTier
    created_by: str
    created_at: str

    def state(self) -> dict[str, Any]:
        """Return the canonical state document the ledger digests."""
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "risk_tier": self.risk_tier.value,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class FileRecord:
    """One file of a version's manifest."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a version was trained or evaluated on."""

    name: str
    role: str
    uri: str
    digest: str | None = None
    size: int | None = None

    def state(self) -> dict[str, Any]:
        """Return the canonical state document of this reference."""
        return {
            "name": self.name,
            "role": self.role,
            "uri": self.uri,
            "digest": self.digest,
            "size": self.size,
        }


@dataclass(frozen=True)
class Version:
    """One semantic version of a model, with its lineage facts and manifest digest."""

    model: str
    version: str
    state: VersionState
    parent: str | None
    change_kind: str | None
    fp_architecture: str
    fp_data: str
    fp_config: str
    architecture_method: str
    manifest_digest: str
    file_count: int
    total_size: int
    run_id: str | None
    commit: str | None
    params: dict[str, str]
    datasets: tuple[DatasetRef, ...]
    created_by: str
    created_at: str
    published_by: str | None = None
    published_at: str | None = None
    baseline_digest: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name@version``, the way users write a version."""
        return f"{self.model}@{self.version}"

    def record(self) -> dict[str, Any]:
        """Return the canonical state document of the version (tags excluded).

        Tags are mutable labels with events of their own, so they are digested
        separately and never disturb the frozen record.
        """
        record: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "state": self.state.value,
            "parent": self.parent,
            "change_kind": self.change_kind,
            "fingerprints": {
                "architecture": self.fp_architecture,
                "data": self.fp_data,
                "config": self.fp_config,
                "architecture_method": self.architecture_method,
            },
            "manifest_digest": self.manifest_digest,
            "file_count": self.file_count,
            "total_size": self.total_size,
            "run_id": self.run_id,
            "commit": self.commit,
            "params": dict(sorted(self.params.items())),
            "datasets": [d.state() for d in self.datasets],
            "created_by": self.created_by,
            "created_at": self.created_at,
            "published_by": self.published_by,
            "published_at": self.published_at,
        }
        # Sealed at publish; absent (not null) before, so records written by
        # registries that predate profiles keep their digests.
        if self.baseline_digest is not None:
            record["baseline_digest"] = self.baseline_digest
        return record

    def record_digest(self) -> str:
        """Digest of :meth:`record`."""
        return canonical_digest(self.record())


@dataclass(frozen=True)
class Event:
    """A typed state change, before it is given a sequence number in the ledger.

    ``type`` is a stable dotted name (``model.created``, ``version.registered``…);
    ``subject`` names what changed (``model:credit-risk``,
    ``version:credit-risk@2.4.0``); ``data`` carries the digests of the produced
    state and whatever an auditor needs to understand the change.
    """

    type: str
    subject: str
    actor: str
    time: str
    data: dict[str, Any]

    def entry(self, seq: int) -> dict[str, Any]:
        """Return the ledger entry document for position ``seq``."""
        return {
            "seq": seq,
            "type": self.type,
            "subject": self.subject,
            "actor": self.actor,
            "time": self.time,
            "data": self.data,
        }


@dataclass(frozen=True)
class LedgerRecord:
    """A stored ledger entry: its canonical bytes and leaf hash."""

    seq: int
    type: str
    subject: str
    actor: str
    time: str
    body: bytes
    leaf_hash: bytes
