"""Content-addressed blobs: digest-first upload, streaming in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from charter.api.auth import require
from charter.api.deps import Contributor, Viewer, reply
from charter.api.responses import BlobOut, MissingOut
from charter.api.routes import BINARY, ERRORS, Segment
from charter.api.schemas import DigestsIn
from charter.api.streaming import blob_response, receive_blob
from charter.artifacts import validate_digest
from charter.domain.stages import Role
from charter.service import Registry

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["blobs"])
_BLOB = {"content": {"application/octet-stream": {"schema": BINARY}}}


@router.post("/blobs/missing", response_model=MissingOut)
def missing(reg: Contributor, body: DigestsIn) -> Response:
    """Which of these blobs the server lacks: upload only those."""
    store = reg.artifacts
    wanted = list(dict.fromkeys(validate_digest(d) for d in body.digests))
    return reply({"missing": [d for d in wanted if not store.exists(d)]})


@router.head("/blobs/{digest}", include_in_schema=False)
@router.get("/blobs/{digest}", responses={200: _BLOB, 206: _BLOB, 304: {}, 416: {}})
def get_blob(reg: Viewer, request: Request, digest: Segment) -> Response:
    """A blob's bytes (``Range`` supported; ``ETag`` is its digest)."""
    return blob_response(request, reg.artifacts, validate_digest(digest))


@router.put(
    "/blobs/{digest}",
    status_code=201,
    response_model=BlobOut,
    responses={200: {"model": BlobOut, "description": "Already held (the body was not read)"}},
    openapi_extra={"requestBody": {"required": True, **_BLOB}},
)
async def put_blob(
    request: Request,
    digest: Segment,
    reg: Annotated[Registry, Depends(require(Role.CONTRIBUTOR))],
) -> Response:
    """Upload a blob (``application/octet-stream``); its bytes must hash to ``digest``.

    A blob the server already holds is not read again (200, ``created: false``).
    """
    validate_digest(digest)
    store = reg.artifacts
    if await run_in_threadpool(store.exists, digest):
        size = await run_in_threadpool(store.size, digest)
        return reply({"digest": digest, "size": size, "created": False})
    blob = await receive_blob(request, store, digest)
    return reply({"digest": blob.digest, "size": blob.size, "created": True}, 201)
