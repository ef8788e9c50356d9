"""Versions: register from uploaded blobs, publish, tags, files, lineage, verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from charter.api.deps import Approver, Contributor, Viewer, reply
from charter.api.responses import (
    BlameOut,
    DiffOut,
    FileOut,
    LineageOut,
    VerifyOut,
    VersionOut,
    VersionPage,
)
from charter.api.routes import BINARY, ERRORS, TEXT, Segment
from charter.api.schemas import DeprecateIn, RegisterIn, TagsIn
from charter.api.streaming import blob_response
from charter.artifacts import validate_relpath
from charter.domain.entities import DatasetRef, FileRecord
from charter.domain.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["versions"])
V = "/models/{name}/versions/{version}"


@router.get("/models/{name}/versions", response_model=VersionPage)
def list_versions(
    reg: Viewer,
    name: Segment,
    state: Annotated[str | None, Query(pattern="^(draft|published)$")] = None,
    tag: Annotated[str | None, Query(pattern=TEXT, max_length=1200)] = None,
    cursor: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    newest_first: bool = False,
) -> Response:
    """The model's versions in registration order, a page at a time."""
    reg.get_model(name=name)
    page = reg.search_versions(
        model=name, state=state, tag=tag, cursor=cursor, limit=limit, newest_first=newest_first
    )
    return reply(page)


@router.post("/models/{name}/versions", status_code=201, response_model=VersionOut)
def register(reg: Contributor, name: Segment, body: RegisterIn) -> Response:
    """Register a draft from its manifest of uploaded blobs.

    Blobs the server lacks come back as 404 ``not_found`` with
    ``details.missing_blobs``: upload those, then send the same request again.
    Red-team campaigns run where the model is, never in this request: when the
    model declares an automatic one, the answer says so in ``Charter-Red-Team: due``.
    """
    version = reg.register_files(
        model=name, version=body.version,
        files=[FileRecord(f.path, f.digest, f.size) for f in body.files],
        parent=body.parent, change=body.change,
        datasets=[DatasetRef(d.name, d.role, d.uri, d.digest, d.size) for d in body.datasets],
        params=body.params, run_id=body.run_id, commit=body.commit, tags=body.tags,
        architecture=body.architecture, force=body.force, reason=body.reason,
        profile=body.profile, evaluate=False,
    )  # fmt: skip
    response = reply(version, 201)
    target = reg.model_target(model=name)
    if target and target.get("auto"):
        response.headers["Charter-Red-Team"] = "due"
    return response


@router.get(V, response_model=VersionOut)
def get_version(reg: Viewer, name: Segment, version: Segment) -> Response:
    """One version."""
    return reply(reg.get_version(model=name, version=version))


@router.delete(V, status_code=204)
def delete_draft(reg: Contributor, name: Segment, version: Segment) -> Response:
    """Delete a draft (published versions are permanent)."""
    reg.delete_draft(model=name, version=version)
    return Response(status_code=204)


@router.post(V + "/publish", response_model=VersionOut)
def publish(reg: Contributor, name: Segment, version: Segment) -> Response:
    """Freeze a draft and seal its baseline."""
    return reply(reg.publish(model=name, version=version))


@router.patch(V + "/tags", response_model=VersionOut)
def set_tags(reg: Contributor, name: Segment, version: Segment, body: TagsIn) -> Response:
    """Set (a value) or remove (null) tags."""
    return reply(reg.set_tags(model=name, version=version, tags=body.tags))


@router.post(V + "/deprecate", status_code=204)
def deprecate(reg: Approver, name: Segment, version: Segment, body: DeprecateIn) -> Response:
    """Mark a version deprecated or archived: it can never be promoted again."""
    reg.deprecate(model=name, version=version, reason=body.reason, status=body.status)
    return Response(status_code=204)


@router.get(V + "/files", response_model=list[FileOut])
def files(reg: Viewer, name: Segment, version: Segment) -> Response:
    """The version's manifest."""
    return reply(reg.files(model=name, version=version))


_FILE = {"content": {"application/octet-stream": {"schema": BINARY}}}


@router.head(V + "/files/{path:path}", include_in_schema=False)
@router.get(V + "/files/{path:path}", responses={200: _FILE, 206: _FILE, 304: {}, 416: {}})
def file(reg: Viewer, request: Request, name: Segment, version: Segment, path: Segment) -> Response:
    """One file of the version by its path (``Range`` supported; ``ETag`` is its digest)."""
    validate_relpath(path)
    found = [f for f in reg.files(model=name, version=version) if f.path == path]
    if not found:
        raise NotFoundError(f"{name}@{version} has no file {path!r}", path=path)
    return blob_response(request, reg.artifacts, found[0].digest, filename=path)


@router.get(V + "/lineage", response_model=LineageOut)
def lineage(reg: Viewer, name: Segment, version: Segment) -> Response:
    """Ancestors (nearest first) and descendants."""
    return reply(reg.lineage(model=name, version=version))


@router.get(V + "/diff", response_model=DiffOut)
def diff(
    reg: Viewer,
    name: Segment,
    version: Segment,
    against: Annotated[str, Query(pattern=TEXT, max_length=128)],
    against_model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
) -> Response:
    """What changed from this version to ``against`` (of ``against_model``, default: same)."""
    return reply(reg.diff(model=name, a=version, b=against, model_b=against_model))


@router.get(V + "/blame", response_model=BlameOut)
def blame(
    reg: Viewer,
    name: Segment,
    version: Segment,
    metric: Annotated[str, Query(pattern=TEXT, min_length=1, max_length=200)],
    slice_: Annotated[str | None, Query(pattern=TEXT, alias="slice", max_length=500)] = None,
    tolerance: Annotated[float, Query(ge=0, le=1e9)] = 0.0,
) -> Response:
    """The first step along the ancestry where ``metric`` regressed, with its diff."""
    found = reg.blame(
        model=name, version=version, metric=metric, slice_=slice_, tolerance=tolerance
    )
    return reply(found)


@router.get(V + "/verify", response_model=VerifyOut)
def verify_version(reg: Viewer, name: Segment, version: Segment) -> Response:
    """Re-hash the version's stored files."""
    return reply(reg.verify_version(model=name, version=version))


@router.get(V + "/export", response_model=dict[str, Any] | list[dict[str, Any]])
def export(
    reg: Viewer,
    name: Segment,
    version: Segment,
    format: Annotated[str, Query(pattern="^(cyclonedx|in-toto)$")],
    sign: bool = False,
) -> Response:
    """A CycloneDX ML-BOM, or in-toto statements (DSSE-signed with ``sign``)."""
    return reply(reg.export(model=name, version=version, fmt=format, sign=sign))


@router.get("/datasets/{digest}/versions", response_model=list[VersionOut])
def dataset_users(reg: Viewer, digest: Segment) -> Response:
    """Every version that declared a dataset with this digest."""
    return reply(reg.versions_using_dataset(digest=digest))
