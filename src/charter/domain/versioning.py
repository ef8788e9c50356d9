"""Semantic versions, change kinds and the bump rule.

The bump rule: compared with its parent, a version whose architecture changed
needs a ``major`` bump, one whose training data changed needs at least
``minor``, anything else may be a ``patch``. The rule is pure so the service,
the CLI and auditors apply exactly the same judgement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import semver

from charter.domain.errors import InvalidInputError

__all__ = [
    "BumpCheck",
    "ChangeKind",
    "Fingerprints",
    "actual_bump",
    "check_bump",
    "parse_version",
    "required_bump",
    "validate_name",
]

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class ChangeKind(StrEnum):
    """Declared kind of change of a version against its parent."""

    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        """Order of the kinds: patch < minor < major."""
        return {"patch": 0, "minor": 1, "major": 2}[self.value]

    @classmethod
    def parse(cls, value: str) -> ChangeKind:
        """Parse a change kind, raising a clear error on anything else.

        Raises:
            InvalidInputError: when ``value`` is not major, minor or patch.
        """
        try:
            return cls(value)
        except ValueError:
            raise InvalidInputError(
                f"invalid change kind {value!r}: use major, minor or patch",
                field="change",
                value=value,
                valid=[k.value for k in cls],
            ) from None


@dataclass(frozen=True)
class Fingerprints:
    """What a version is made of: architecture, training data and configuration."""

    architecture: str
    data: str
    config: str

    def changed(self, parent: Fingerprints) -> list[str]:
        """Return the names of the fingerprints that differ from ``parent``."""
        return [
            name
            for name in ("architecture", "data", "config")
            if getattr(self, name) != getattr(parent, name)
        ]


@dataclass(frozen=True)
class BumpCheck:
    """Outcome of comparing a declared change kind with the fingerprints."""

    declared: ChangeKind
    required: ChangeKind
    changed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the declared kind covers what changed."""
        return self.declared.rank >= self.required.rank


def validate_name(name: str, *, field: str = "name") -> str:
    """Validate a model name: a lowercase slug of 1-64 characters.

    Raises:
        InvalidInputError: naming the rule when ``name`` breaks it.
    """
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            f"invalid {field} {name!r}: use 1-64 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit",
            field=field,
            value=name,
        )
    return name


MAX_VERSION_CHARS = 128


def parse_version(text: str) -> semver.Version:
    """Parse a semantic version (pre-release and build metadata allowed).

    Raises:
        InvalidInputError: when ``text`` is not a semantic version such as ``1.2.3``.
    """
    try:
        # The store keeps at most 128 characters (both backends must refuse alike).
        if len(text) > MAX_VERSION_CHARS:
            raise ValueError(text)
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"invalid version {text!r}: use semantic versioning MAJOR.MINOR.PATCH, "
            f"e.g. 1.4.0, 2.0.0-rc.1 or 1.0.0+build.7 (at most {MAX_VERSION_CHARS} characters)",
            field="version",
            value=text,
        ) from None


def required_bump(changed: list[str] | tuple[str, ...]) -> ChangeKind:
    """Return the smallest change kind that covers the changed fingerprints."""
    if "architecture" in changed:
        return ChangeKind.MAJOR
    if "data" in changed:
        return ChangeKind.MINOR
    return ChangeKind.PATCH


def actual_bump(parent: semver.Version, child: semver.Version) -> ChangeKind | None:
    """Return which component the version number bumped, or None if it is not above.

    Pre-release steps (``2.0.0-rc.1`` -> ``2.0.0``) count as the component that
    differs between the two release triples, or patch when the triples are equal.
    """
    if child.compare(parent) <= 0:
        return None
    if child.major != parent.major:
        return ChangeKind.MAJOR
    if child.minor != parent.minor:
        return ChangeKind.MINOR
    return ChangeKind.PATCH


def check_bump(
    *,
    declared: ChangeKind,
    fingerprints: Fingerprints,
    parent_fingerprints: Fingerprints,
) -> BumpCheck:
    """Compare a declared change kind with what changed since the parent.

    Returns:
        A :class:`BumpCheck`; ``ok`` is False when the declared kind is smaller than
        the changed fingerprints require.
    """
    changed = tuple(fingerprints.changed(parent_fingerprints))
    return BumpCheck(declared=declared, required=required_bump(changed), changed=changed)
