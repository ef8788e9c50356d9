"""What every route module shares: role-checked registries and the JSON reply."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import Response

from charter.api.auth import require
from charter.domain.stages import Role
from charter.service import Registry
from charter.wire import encode

__all__ = ["Admin", "Approver", "Contributor", "Viewer", "reply"]

Viewer = Annotated[Registry, Depends(require(Role.VIEWER))]
Contributor = Annotated[Registry, Depends(require(Role.CONTRIBUTOR))]
Approver = Annotated[Registry, Depends(require(Role.APPROVER))]
Admin = Annotated[Registry, Depends(require(Role.ADMIN))]


def reply(value: Any, status: int = 200) -> Response:
    """``value`` in its wire form (:mod:`charter.wire`) as a JSON response.

    Routes return this instead of letting FastAPI serialise: the wire form is
    the contract, and it skips a validation pass per response.
    """
    body = json.dumps(encode(value), ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode(), status_code=status, media_type="application/json")
