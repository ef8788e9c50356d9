"""The routers of ``/api/v1``, one module per area of the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

__all__ = ["BINARY", "ERRORS", "ERROR_SCHEMA", "ROW_ID_MAX", "TEXT", "Segment"]

BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
ROW_ID_MAX = 2**31 - 1  # integer row ids are 32-bit in every backend
ERROR_SCHEMA = "Error"
TEXT = r"^[^\x00]*$"
"""What a text parameter may hold: anything but NUL, which PostgreSQL text cannot store
(a NUL reached the database as a 503 there, and as a silent miss in SQLite)."""
Segment = Annotated[str, Path(pattern=TEXT)]
"""A text path parameter."""

_ERROR: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
}
#: Error statuses any route may answer with (see :mod:`charter.api.errors`). A plain
#: reference, not a model: a model per status and route would cost every server
#: start about 600 pydantic adapters. ``create_app`` adds the schema it refers to.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: _ERROR for code in (400, 401, 403, 404, 409, 413, 415, 422, 503)
}
