"""Request bodies (validated by FastAPI) and the error body (for the OpenAPI schema).

Every body is checked whole, free-form parts included (a run's ``config``, a
target, tags), for what the registry could not store and would otherwise fail on
deep inside a write, as a server error: text with NUL (PostgreSQL text cannot hold
it) or unpaired surrogates (not UTF-8), integers beyond +-(2**53 - 1) and
non-finite numbers (the ledger's canonical JSON, RFC 8785, has neither). Such a
body is refused with 422, naming the field.

The other response shapes are in :mod:`charter.api.responses`; the ones listed
here are re-exported from there.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from charter.api.responses import (
    FileOut,
    ModelOut,
    ModelPage,
    MoveOut,
    TokenOut,
    UserOut,
    VersionOut,
    VersionPage,
)
from charter.domain.errors import InvalidInputError
from charter.domain.profile import ProfileDocument

__all__ = [
    "AmendIn", "ApprovalIn", "CardIn", "DeprecateIn", "DigestsIn", "DocumentIn", "ErrorOut",
    "FileOut", "ModelIn", "ModelOut", "ModelPage", "MoveOut", "PolicyIn", "PolicyTextIn",
    "PromoteIn", "RegisterIn", "RollbackIn", "RunIn", "StageIn", "TagsIn", "TargetIn", "TokenIn",
    "TokenOut", "UserIn", "UserOut", "VerifyIn", "VersionOut", "VersionPage", "WebhookIn",
    "check_storable",
]  # fmt: skip

Name = Field(min_length=1, max_length=200)


SAFE_INTEGER = 2**53 - 1
"""The largest integer a body may hold (RFC 8785 / I-JSON: exact in every JSON reader)."""


def _where(path: str, key: object) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise InvalidInputError(f"{where}: text may not contain NUL characters", field=where)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                f"{where}: text may not contain unpaired surrogates", field=where
            ) from None


def check_storable(value: Any, where: str = "") -> None:
    """Refuse what no store or ledger entry can hold (see the module docstring).

    Raises:
        InvalidInputError: naming the first offending field (``field`` in details).
    """
    # Iterative: a deeply nested body must not exhaust the stack.
    pending = [(value, where)]
    while pending:
        item, at = pending.pop()
        if isinstance(item, str):
            _check_text(item, at or "(request)")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > SAFE_INTEGER:
                raise InvalidInputError(
                    f"{at}: integers must lie within +-{SAFE_INTEGER}", field=at
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInputError(f"{at}: numbers must be finite", field=at)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_text(str(key), _where(at, key))
                pending.append((inner, _where(at, key)))
        elif isinstance(item, list | tuple):
            pending.extend((inner, _where(at, i)) for i, inner in enumerate(item))


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Body(_In):
    """A whole request body (its parts are plain ``_In``: the body is checked once)."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        check_storable(data)
        return data


class ModelIn(_Body):
    """A new model line."""

    name: str = Field(min_length=1, max_length=64)
    risk_tier: Literal["low", "medium", "high"] = "low"
    owner: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=10_000)


class TargetIn(_Body):
    """A model's red-team target declaration (never secrets)."""

    target: dict[str, Any]
    packs: list[str] | None = None
    auto: bool = True
    system_prompt: str | None = Field(default=None, max_length=100_000)


class FileIn(_In):
    """One manifest row of a registration (its blob is uploaded separately)."""

    path: str = Field(min_length=1, max_length=1024)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    size: int = Field(ge=0)


class DatasetIn(_In):
    """A dataset reference, digested by the client that has the data."""

    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=32)
    uri: str = Field(min_length=1, max_length=2000)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=0)


class RegisterIn(_Body):
    """A draft version from uploaded blobs: its manifest and metadata."""

    version: str = Field(min_length=1, max_length=128)
    files: list[FileIn] = Field(min_length=1, max_length=100_000)
    parent: str | None = Field(default=None, max_length=128)
    change: Literal["major", "minor", "patch"] | None = None
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=1000)
    params: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, max_length=200)
    commit: str | None = Field(default=None, max_length=200)
    tags: dict[str, str] = Field(default_factory=dict)
    architecture: str | None = Field(default=None, max_length=200)
    force: bool = False
    reason: str | None = Field(default=None, max_length=10_000)
    profile: ProfileDocument | None = None


class TagsIn(_Body):
    """Tags to set (a value) or remove (null)."""

    tags: dict[str, str | None]


class DocumentIn(_Body):
    """Profile entries for a draft."""

    document: ProfileDocument


class AmendIn(_Body):
    """An amendment (or production observations) with the reason for it."""

    document: ProfileDocument
    reason: str = Field(max_length=500)


class DeprecateIn(_Body):
    """Why a version may never be promoted again."""

    reason: str = Field(max_length=10_000)
    status: Literal["deprecated", "archived"] = "deprecated"


class RunIn(_Body):
    """An evaluation run executed elsewhere (CI, a worker), with its results."""

    run: dict[str, Any]
    document: ProfileDocument
    reason: str | None = Field(default=None, max_length=500)


class CardIn(_Body):
    """Which card format to render."""

    format: Literal["md", "html"] = "md"


class UserIn(_Body):
    """A user's role."""

    role: Literal["viewer", "contributor", "approver", "admin"]


class TokenIn(_Body):
    """A new API token."""

    user: str = Name
    expires: str | None = Field(default=None, max_length=64)
    label: str = Field(default="", max_length=200)


class PolicyIn(_Body):
    """A policy document (YAML or JSON text), for the registry or one model."""

    text: str = Field(max_length=1_000_000)
    model: str | None = Field(default=None, max_length=64)


class PolicyTextIn(_Body):
    """A policy document to validate without storing it."""

    text: str = Field(max_length=1_000_000)


class StageIn(_Body):
    """A stage to gate for."""

    stage: str = Field(min_length=1, max_length=64)


class ApprovalIn(_Body):
    """A sign-off or rejection of the version's current evidence."""

    stage: str = Field(min_length=1, max_length=64)
    comment: str = Field(max_length=10_000)
    decision: Literal["approve", "reject"] = "approve"


class PromoteIn(_Body):
    """A promotion; ``force`` (admins, with a reason) overrides a failed gate."""

    stage: str = Field(min_length=1, max_length=64)
    force: bool = False
    reason: str | None = Field(default=None, max_length=10_000)


class RollbackIn(_Body):
    """A rollback, by default to the stage's previous holder."""

    reason: str = Field(max_length=10_000)
    to: str | None = Field(default=None, max_length=128)
    force: bool = False


class VerifyIn(_Body):
    """Whether to re-hash every blob too."""

    artifacts: bool = False


class WebhookIn(_Body):
    """A subscription: where to POST which ledger events (secret generated if omitted)."""

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=100)
    secret: str | None = Field(default=None, max_length=500)


class DigestsIn(_Body):
    """Blob digests a client is about to upload."""

    digests: list[str] = Field(max_length=100_000)


# -- responses (descriptive) ------------------------------------------------
class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1)
    message: str = Field(min_length=1)
    details: dict[str, Any]


class ErrorOut(BaseModel):
    """Every error: a stable code, one sentence, structured details (and nothing else)."""

    model_config = ConfigDict(extra="forbid")

    error: _ErrorBody
