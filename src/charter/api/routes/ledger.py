"""The audit ledger: entries, inclusion proofs, checkpoints, verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from charter.api.deps import Contributor, Viewer, reply
from charter.api.responses import CheckpointOut, EntryOut, ProofOut, VerifyOut
from charter.api.routes import ERRORS
from charter.api.schemas import VerifyIn

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["ledger"], prefix="/ledger")
Obj = dict[str, Any]


@router.get("/entries", response_model=list[EntryOut])
def entries(
    reg: Viewer,
    start: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Ledger entries from ``start`` (each with its leaf hash)."""
    return reply(reg.audit_log(start=start, limit=limit))


@router.get("/entries/{seq}/proof", response_model=ProofOut)
def proof(reg: Viewer, seq: Annotated[int, Path(ge=0, le=2**53)]) -> Response:
    """Inclusion proof of entry ``seq`` against the latest checkpoint (signed if needed)."""
    return reply(reg.proof(seq=seq))


@router.post("/checkpoints", response_model=CheckpointOut | None)
def sign_checkpoint(reg: Contributor) -> Response:
    """Sign a checkpoint if the log grew; the latest (null: the log is empty)."""
    return reply(reg.checkpoint(sign=True))


@router.get("/checkpoints/latest", response_model=CheckpointOut | None)
def latest_checkpoint(reg: Viewer) -> Response:
    """The latest signed checkpoint (null: none yet)."""
    return reply(reg.checkpoint(sign=False))


@router.get(
    "/public-key",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}},
)
def public_key(reg: Viewer) -> Response:
    """The PEM public key that verifies checkpoints."""
    return Response(reg.public_key_pem(), media_type="application/x-pem-file")


@router.post("/verify", response_model=VerifyOut)
def verify(reg: Viewer, body: VerifyIn) -> Response:
    """Recompute the ledger and check every state row (and every blob with ``artifacts``)."""
    return reply(reg.verify(artifacts=body.artifacts))
