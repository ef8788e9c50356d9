"""Populated registry homes for tamper tests: built once per module and backend,
then copied for each test (the folder, and on PostgreSQL the database by template).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _postgres import Cluster
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings

SettingsFor = Callable[[Path, str | None], Settings]
Populate = Callable[[Registry, Path], None]


@dataclass(frozen=True)
class Template:
    """A populated home: its folder, and its PostgreSQL database (None on SQLite)."""

    home: Path
    database: str | None


class Templates:
    """Builds one populated home per backend on first use; drops them at the end."""

    def __init__(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest,
        *,
        settings_for: SettingsFor,
        populate: Populate,
    ) -> None:
        self.factory, self.request = tmp_path_factory, request
        self.settings_for, self.populate = settings_for, populate
        self.built: dict[str, Template] = {}
        self.cluster: Cluster | None = None

    def __call__(self, backend: str) -> Template:
        if backend not in self.built:
            root = self.factory.mktemp(f"template-{backend}")
            database = url = None
            if backend == "postgresql":
                self.cluster = self.request.getfixturevalue("pg_cluster")
                database = self.cluster.migrated_database()
                url = self.cluster.url(database)
            with init_registry(settings=self.settings_for(root / "home", url)) as reg:
                self.populate(reg, root / "src")
            self.built[backend] = Template(root / "home", database)
        return self.built[backend]

    def close(self) -> None:
        for made in self.built.values():
            if made.database is not None and self.cluster is not None:
                self.cluster.drop_database(made.database)


def copied_settings(
    template: Template,
    dest: Path,
    *,
    settings_for: SettingsFor,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    """Yield settings for a fresh copy of ``template`` (for one test).

    The copy's database URL is in ``CHARTER_DATABASE_URL`` too, for the CLI.
    """
    shutil.copytree(template.home, dest)
    if template.database is None:
        yield settings_for(dest, None)
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    database = cluster.create_database(template=template.database)
    monkeypatch.setenv("CHARTER_DATABASE_URL", cluster.url(database))
    try:
        yield settings_for(dest, cluster.url(database))
    finally:
        cluster.drop_database(database)
