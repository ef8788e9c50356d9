"""Store fixtures: an empty database on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def empty_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """URL of a fresh database without any table, on ``backend``.

    On SQLite the file is ``home/registry.db`` under ``tmp_path`` (the folder exists).
    """
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_empty_database"))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return f"sqlite:///{home / 'registry.db'}"
