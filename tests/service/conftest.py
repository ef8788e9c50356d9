"""The service suite runs against a local registry *and* a remote one.

Every test here that uses ``registry`` runs twice: on the in-process
:class:`~charter.service.Registry` (``local``) and on a
:class:`~charter.client.RemoteRegistry` talking to a real uvicorn server on
loopback (``remote``), which serves the same home with a token for ``alice``
(admin). Both are built on the root ``registry`` fixture, so the store
backends parametrized there (SQLite, PostgreSQL) multiply with these two.

Tests that reach below the service — raw SQL against the home's database,
``registry.store`` / ``registry.artifacts`` / ``registry._key``, or
``registry.as_user`` (a remote registry acts as its token's user; open another
with that user's token) — run locally only: they are listed in
:data:`LOCAL_ONLY` with the reason, or carry ``@pytest.mark.local_only``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _api import serving
from charter.client import RemoteRegistry
from charter.service import Registry
from charter.settings import Settings

_TAMPER = "tampers with the home's database below the service (raw SQL, store handles)"
LOCAL_ONLY: dict[str, str] = {
    "test_tamper.py": _TAMPER,
    "test_gate_tamper.py": _TAMPER,
    "test_profile_tamper.py": _TAMPER,
    "test_concurrency.py": "several processes on one home: no server involved",
    "test_register.py::test_identical_files_are_stored_once": "counts blobs in registry.artifacts",
    "test_register.py::test_bad_input_changes_nothing": (
        "counts blobs in registry.artifacts (tests/api covers bad input over HTTP)"
    ),
    "test_cards.py::test_in_toto_statements_cover_baseline_and_amendments": (
        "verifies signatures with registry._key (the server's private key)"
    ),
    "test_access.py::test_revoked_and_expired_tokens_are_refused": "edits token rows via store",
    "test_access.py::test_bad_expiry_is_refused_and_creates_nothing": (
        "expects no tokens at all, and the remote fixture holds one"
    ),
    "test_access.py::test_only_admins_create_or_revoke_tokens_for_others": "uses as_user",
    "test_access.py::test_as_user_records_the_acting_user_in_the_ledger": "uses as_user",
    "test_access.py::test_audit_catches_a_token_row_slipped_in_or_edited": _TAMPER,
    "test_access.py::test_audit_catches_a_token_inserted_without_a_ledger_entry": _TAMPER,
    "test_monitoring.py::test_sign_off_findings_never_flag_a_version": "uses as_user",
    "test_monitoring.py::test_audit_catches_an_erased_flag": _TAMPER,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_only(reason): run a service test on the local registry only"
    )


def _local_only(definition: pytest.Function) -> bool:
    module = Path(str(definition.path)).name
    name = definition.originalname
    if module in LOCAL_ONLY or f"{module}::{name}" in LOCAL_ONLY:
        return True
    return definition.get_closest_marker("local_only") is not None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registry_kind" in metafunc.fixturenames:
        kinds = ["local"] if _local_only(metafunc.definition) else ["local", "remote"]
        metafunc.parametrize("registry_kind", kinds)


@pytest.fixture
def registry_kind() -> str:
    """``local`` or ``remote`` (parametrized per test by ``pytest_generate_tests``)."""
    return "local"


@pytest.fixture
def registry(
    registry: Registry, registry_kind: str, settings: Settings
) -> Iterator[Registry | RemoteRegistry]:
    """The root ``registry`` itself, or a server serving it and a client of that server."""
    if registry_kind == "local":
        yield registry
        return
    token, _ = registry.create_token(user="alice", label="service suite")
    with (
        serving(settings, registry) as url,
        RemoteRegistry(url, token=token, settings=settings) as remote,
    ):
        yield remote
