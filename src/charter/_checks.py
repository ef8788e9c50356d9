"""Checks run before a version is registered: text, tags, datasets, the bump.

Pure validation plus dataset digesting; used by :mod:`charter.service`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import semver

from charter.artifacts.fingerprint import dataset_digest
from charter.domain.entities import DatasetRef, Version
from charter.domain.errors import BumpRefusedError, InvalidInputError
from charter.domain.versioning import ChangeKind, Fingerprints, actual_bump, check_bump

__all__ = ["check_declared_bump", "check_tags", "check_text", "dataset_ref"]

_MAX_TAG_KEY = 128
_MAX_TEXT = 10_000


def check_text(value: str, *, field: str, limit: int = _MAX_TEXT) -> str:
    if len(value) > limit or "\x00" in value:
        raise InvalidInputError(
            f"{field} must be at most {limit} characters without NUL bytes", field=field
        )
    return value


def check_tags(tags: Mapping[str, str | None]) -> dict[str, str | None]:
    for key, value in tags.items():
        if (
            not key
            or len(key) > _MAX_TAG_KEY
            or not key.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise InvalidInputError(
                f"invalid tag key {key!r}: use 1-{_MAX_TAG_KEY} letters, digits, '-', '_' or '.'",
                field="tag",
                value=key,
            )
        if value is not None:
            check_text(value, field=f"tag {key}", limit=1000)
    return dict(tags)


def check_declared_bump(
    *,
    parent: Version,
    number: semver.Version,
    declared: ChangeKind | None,
    fingerprints: Fingerprints,
    force: bool,
    reason: str | None,
) -> tuple[ChangeKind, dict[str, Any] | None]:
    actual = actual_bump(semver.Version.parse(parent.version), number)
    if actual is None:
        raise InvalidInputError(
            f"version {number} must be greater than its parent {parent.version}",
            field="version",
            version=str(number),
            parent=parent.version,
        )
    if declared is not None and declared != actual:
        raise InvalidInputError(
            f"{parent.version} -> {number} is a {actual.value} bump, but --change "
            f"{declared.value} was declared: make the number and the change kind agree",
            field="change",
            declared=declared.value,
            actual=actual.value,
        )
    parent_fp = Fingerprints(parent.fp_architecture, parent.fp_data, parent.fp_config)
    check = check_bump(declared=actual, fingerprints=fingerprints, parent_fingerprints=parent_fp)
    if check.ok:
        return actual, None
    changed = ", ".join(check.changed)
    if not force:
        raise BumpRefusedError(
            f"a {actual.value} bump is too small: the {changed} fingerprint changed since "
            f"{parent.version}, so the bump must be at least {check.required.value} "
            "(or pass --force --reason TEXT to override, which is recorded)",
            declared=actual.value,
            required=check.required.value,
            changed=list(check.changed),
        )
    return actual, {
        "declared": actual.value,
        "required": check.required.value,
        "changed": list(check.changed),
        "reason": reason,
    }


def dataset_ref(role: str, target: str) -> DatasetRef:
    role = role.strip()
    if not role or not role.replace("-", "").replace("_", "").isalnum() or len(role) > 32:
        raise InvalidInputError(
            f"invalid dataset role {role!r}: use a word such as train, eval or test",
            field="dataset",
        )
    if "://" in target and not target.startswith("file://"):
        return DatasetRef(
            name=target.rstrip("/").rsplit("/", 1)[-1] or target, role=role, uri=target
        )
    local = Path(target.removeprefix("file://")).expanduser()
    digest, size = dataset_digest(local)
    return DatasetRef(
        name=local.name, role=role, uri=local.resolve().as_uri(), digest=digest, size=size
    )
