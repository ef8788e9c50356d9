"""The ledger browser: entries (paginated), verification status, and a proof per entry.

Proofs are checked here as an auditor would check them offline: the entry's
leaf hash is recomputed from its canonical bytes, the inclusion proof is
folded up to the root of the latest signed checkpoint, and the checkpoint's
signature is checked with the registry's public key. The page shows each
verdict, and the proof as JSON to check independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response

from charter.domain.canonical import loads
from charter.domain.errors import NotFoundError
from charter.journal import InclusionProof, inclusion_proof
from charter.ledger import (
    Checkpoint,
    load_public_key,
    verify_checkpoint,
    verify_inclusion,
)
from charter.ledger.merkle import hash_from_hex, leaf_hash
from charter.web._deps import Actor, Viewer, WebContext, WebRoute, page, redirect
from charter.web._render import PREFIX, Pager, urls

__all__ = ["router"]

router = APIRouter(route_class=WebRoute)
PER_PAGE = 50
Seq = Annotated[int, Path(ge=0, lt=2**62)]


@dataclass(frozen=True)
class ProofCheck:
    """An inclusion proof and the three checks made on it."""

    proof: InclusionProof
    leaf_ok: bool
    inclusion_ok: bool
    signature_ok: bool

    @property
    def ok(self) -> bool:
        """All three hold: the entry is in the log the registry signed."""
        return self.leaf_ok and self.inclusion_ok and self.signature_ok


def _size(ctx: WebContext) -> int:
    with ctx.registry.store.read() as tx:
        return tx.ledger_size()


def _check(
    ctx: WebContext, seq: int
) -> tuple[dict[str, Any], ProofCheck | None, Checkpoint | None]:
    """The entry ``seq``, its checked proof (None when no checkpoint covers it yet)."""
    records = ctx.registry.audit_log(start=seq, limit=1)
    if seq < 0 or not records:
        raise NotFoundError(f"no ledger entry {seq}", seq=seq)
    record = records[0]
    entry = {**loads(record.body), "leaf_hash": record.leaf_hash.hex()}
    checkpoint = ctx.registry.checkpoint(sign=False)
    if checkpoint is None or seq >= checkpoint.tree_size:
        return entry, None, checkpoint
    with ctx.registry.store.read() as tx:
        proof = inclusion_proof(tx, seq=seq, checkpoint=checkpoint)
    recomputed = leaf_hash(record.body)
    check = ProofCheck(
        proof=proof,
        leaf_ok=recomputed == record.leaf_hash,
        inclusion_ok=verify_inclusion(
            leaf_hash=recomputed,
            index=seq,
            tree_size=checkpoint.tree_size,
            proof=[hash_from_hex(h) for h in proof.proof],
            root=checkpoint.root_hash,
        ),
        signature_ok=verify_checkpoint(checkpoint, load_public_key(ctx.registry.public_key_pem())),
    )
    return entry, check, checkpoint


@router.get(f"{PREFIX}/ledger")
def ledger(ctx: Viewer, page_: int = Query(1, ge=1, alias="page")) -> Response:
    """Ledger entries, newest first; verification status loads after the page."""
    size = _size(ctx)
    stop = max(0, size - (page_ - 1) * PER_PAGE)
    start = max(0, stop - PER_PAGE)
    records = ctx.registry.audit_log(start=start, limit=stop - start) if stop else []
    return page(
        ctx,
        "ledger.html",
        records=list(reversed(records)),
        size=size,
        checkpoint=ctx.registry.checkpoint(sign=False),
        pager=Pager(page_, PER_PAGE, size, urls.ledger()),
    )


@router.get(f"{PREFIX}/ledger/verify")
def verify(ctx: Viewer) -> Response:
    """Verify the whole ledger and the state against it (an htmx fragment)."""
    return page(ctx, "_verify.html", report=ctx.registry.verify())


@router.get(f"{PREFIX}/ledger/{{seq}}")
def entry(ctx: Viewer, seq: Seq) -> Response:
    """One entry, its canonical body, and its inclusion proof checked against a checkpoint."""
    found, check, checkpoint = _check(ctx, seq)
    return page(
        ctx,
        "entry.html",
        entry=found,
        check=check,
        checkpoint=checkpoint,
        link=urls.subject(str(found.get("subject", ""))),
    )


@router.get(f"{PREFIX}/ledger/{{seq}}/proof")
def proof(ctx: Viewer, seq: Seq) -> Response:
    """The proof verdict of one entry (an htmx fragment for the ledger table)."""
    _, check, checkpoint = _check(ctx, seq)
    return page(ctx, "_proof.html", seq=seq, check=check, checkpoint=checkpoint)


@router.get(f"{PREFIX}/ledger/{{seq}}/proof.json")
def proof_json(ctx: Viewer, seq: Seq) -> Response:
    """The inclusion proof as JSON, with the public key, to verify offline."""
    _, check, _ = _check(ctx, seq)
    if check is None:
        raise NotFoundError(f"no checkpoint covers entry {seq} yet: sign one first", seq=seq)
    body = {**check.proof.to_dict(), "public_key": ctx.registry.public_key_pem().decode()}
    filename = f"charter-proof-{seq}.json"
    return JSONResponse(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post(f"{PREFIX}/ledger/checkpoint")
def checkpoint(ctx: Actor, seq: int = Query(0, ge=0, lt=2**62)) -> Response:
    """Sign a checkpoint covering the whole log now, so every entry has a proof."""
    signed = ctx.registry.checkpoint(sign=True)
    if signed is None:
        return redirect(ctx, urls.ledger(), flash=("error", "The ledger is empty."))
    flash = ("ok", f"Signed a checkpoint of {signed.tree_size} entries.")
    return redirect(ctx, urls.entry(seq), flash=flash)
