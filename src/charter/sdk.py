"""Entry points for Python users: ``open_registry`` and ``init_registry``.

``open_registry`` opens a local registry home, or — given an ``http(s)://`` URL
(or ``Settings.url``, i.e. ``CHARTER_URL``) — the registry of a Charter server,
with the same methods and return types (:class:`charter.client.RemoteRegistry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from charter.domain.errors import InvalidInputError
from charter.home import init_home
from charter.service import Registry
from charter.settings import Settings

if TYPE_CHECKING:
    from charter.client import RemoteRegistry

__all__ = ["AnyRegistry", "init_registry", "open_registry"]

AnyRegistry: TypeAlias = "Registry | RemoteRegistry"


def _is_url(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def open_registry(
    home: str | Path | None = None,
    *,
    settings: Settings | None = None,
    token: str | None = None,
) -> AnyRegistry:
    """Open an initialised registry home, or a Charter server's registry.

    Args:
        home: the registry home folder (default: ``CHARTER_HOME`` or ``./.charter``),
            or a server URL such as ``http://127.0.0.1:8000``.
        settings: full settings; ``home`` overrides its ``home`` when both are given.
            With ``settings.url`` set (``CHARTER_URL``) the server is opened.
        token: the bearer token for a server (default: ``settings.token``,
            ``CHARTER_TOKEN``).

    Returns:
        A :class:`~charter.service.Registry`, or a :class:`~charter.client.RemoteRegistry`.

    Raises:
        HomeError: when no registry was initialised there.
    """
    settings = settings or Settings()
    url = str(home) if _is_url(home) else (settings.url if home is None else None)
    if url is not None:
        from charter.client import RemoteRegistry

        secret = token or (settings.token.get_secret_value() if settings.token else None)
        return RemoteRegistry(url, token=secret, settings=settings.model_copy(update={"url": url}))
    if home is not None:
        settings = settings.model_copy(update={"home": Path(home)})
    return Registry(settings)


def init_registry(home: str | Path | None = None, *, settings: Settings | None = None) -> Registry:
    """Create a registry home if needed and open it.

    Raises:
        InvalidInputError: for a server URL (a server's home is initialised on it).
    """
    if _is_url(home):
        raise InvalidInputError(
            "a server's registry is initialised on the server (`charter init` there)",
            field="home",
        )
    settings = settings or Settings()
    if home is not None:
        settings = settings.model_copy(update={"home": Path(home)})
    init_home(settings)
    return Registry(settings)
