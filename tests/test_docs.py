"""Docs are tested: every setting and every CLI command is in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from charter.cli import app
from charter.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def _commands(command: object, prefix: str = "") -> list[str]:
    subs = getattr(command, "commands", None)
    if not subs:
        return [prefix.strip()]
    return [name for n, sub in subs.items() for name in _commands(sub, f"{prefix}{n} ")]


def test_readme_starts_with_the_two_commands() -> None:
    block = README.split("```")[1]
    assert "make run" in block and "make test" in block


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"`CHARTER_{field.upper()}`" in README


@pytest.mark.parametrize("command", _commands(typer.main.get_command(app)))
def test_every_command_is_documented(command: str) -> None:
    assert f"`charter {command}" in README
