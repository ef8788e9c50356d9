"""Shared fixtures: nouns for the things tests use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh registry home in a temporary folder."""
    return Settings(home=tmp_path / "home", user="alice")


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
