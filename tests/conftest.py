"""Shared fixtures: nouns for the things tests use.

The registry suites (``MULTI_BACKEND``) run every test that uses ``settings`` (or
``registry``) once per metadata store backend: SQLite and a throwaway
PostgreSQL (see ``_postgres.py``; ``CHARTER_TEST_BACKENDS=sqlite`` runs one).
Everywhere else ``backend`` is ``sqlite``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings

pytest_plugins = ["_postgres"]

# Test folders whose registry tests run on every backend.
MULTI_BACKEND = ("store", "service", "ledger", "api")
_TESTS = Path(__file__).parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    from _postgres import selected_backends  # registered above: imported once, rewritten

    folder = Path(metafunc.definition.path).relative_to(_TESTS).parts[0]
    if folder in MULTI_BACKEND:
        metafunc.parametrize("backend", selected_backends())


@pytest.fixture
def backend() -> str:
    """The metadata store backend: ``sqlite``, or each backend in ``MULTI_BACKEND`` folders."""
    return "sqlite"


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The database URL for ``backend`` (None: the SQLite file inside the home)."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_database"))
    return None


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a fresh registry home in a temporary folder, on ``backend``.

    With a database URL, ``CHARTER_DATABASE_URL`` holds it too, as it would for a
    user of that registry: the CLI and ``Settings()`` built in the test find it.
    """
    if database_url is not None:
        monkeypatch.setenv("CHARTER_DATABASE_URL", database_url)
    return Settings(home=tmp_path / "home", user="alice", database_url=database_url)


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    """An initialised, empty registry acting as user ``alice``."""
    reg = init_registry(settings=settings)
    yield reg
    reg.close()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """A small model folder with a weights file and a config file."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00\x01weights" * 100)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A small training data file."""
    path = tmp_path / "train.csv"
    path.write_text("x,y\n1,0\n2,1\n")
    return path
