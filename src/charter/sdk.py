"""Entry points for Python users: ``open_registry`` and ``init_registry``."""

from __future__ import annotations

from pathlib import Path

from charter.home import init_home
from charter.service import Registry
from charter.settings import Settings

__all__ = ["init_registry", "open_registry"]


def open_registry(home: str | Path | None = None, *, settings: Settings | None = None) -> Registry:
    """Open an initialised registry home.

    Args:
        home: the registry home folder (default: ``CHARTER_HOME`` or ``./.charter``).
        settings: full settings; ``home`` overrides its ``home`` when both are given.

    Raises:
        HomeError: when no registry was initialised there.
    """
    settings = settings or Settings()
    if home is not None:
        settings = settings.model_copy(update={"home": Path(home)})
    return Registry(settings)


def init_registry(home: str | Path | None = None, *, settings: Settings | None = None) -> Registry:
    """Create a registry home if needed and open it."""
    settings = settings or Settings()
    if home is not None:
        settings = settings.model_copy(update={"home": Path(home)})
    init_home(settings)
    return Registry(settings)
