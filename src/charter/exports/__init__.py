"""Standard exports of a version's safety facts: CycloneDX ML-BOM, in-toto and DSSE.

Pure functions over domain objects: no I/O, no store. The service gathers the
version, its files and its effective profile, and these functions turn them
into documents other tools understand.
"""

from __future__ import annotations

from charter.exports.cyclonedx import SPEC_VERSION, cyclonedx_bom
from charter.exports.intoto import (
    PAYLOAD_TYPE,
    SAFETY_PROFILE_PREDICATE,
    STATEMENT_TYPE,
    amendment_statement,
    baseline_statement,
    dsse_sign,
    dsse_verify,
    intoto_statement,
    pae,
)

__all__ = [
    "PAYLOAD_TYPE",
    "SAFETY_PROFILE_PREDICATE",
    "SPEC_VERSION",
    "STATEMENT_TYPE",
    "amendment_statement",
    "baseline_statement",
    "cyclonedx_bom",
    "dsse_sign",
    "dsse_verify",
    "intoto_statement",
    "pae",
]
