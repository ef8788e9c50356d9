"""The registry home: a folder holding the database, artifacts and signing key.

``init_home`` creates one; ``open_home`` checks one is there and usable. The
private key is written with mode 0600 before any byte of it exists on disk.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.domain.entities import Event
from charter.domain.errors import HomeError
from charter.domain.stages import Role, User
from charter.journal import append_event, now
from charter.ledger import generate_private_key, load_private_key, private_key_to_pem
from charter.settings import Settings
from charter.store import Store, WriteTx

__all__ = ["init_home", "interval_of", "load_signing_key", "open_store", "signed_origin"]


def init_home(settings: Settings) -> bool:
    """Create the registry home described by ``settings`` (idempotent).

    Returns:
        True when something was created, False when the home already existed.

    Raises:
        HomeError: when the folder cannot be created or written, or when the
            database holds ledger entries without a ledger head (a damaged ledger
            is never started over).
    """
    created = False
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        key_path = settings.key_path
        if not key_path.exists():
            key_path.parent.mkdir(mode=0o700, exist_ok=True)
            pem = private_key_to_pem(generate_private_key())
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            created = True
    except OSError as exc:
        raise HomeError(
            f"cannot create the registry home {settings.home}: {exc.strerror}",
            home=str(settings.home),
        ) from None
    store = Store(settings.resolved_database_url, synchronous=settings.sqlite_synchronous)
    try:
        store.migrate()
        with store.write() as tx:
            if tx.ledger_origin() is None:
                _refuse_over_a_ledger(tx, settings)
                tx.init_ledger(
                    signed_origin(settings.checkpoint_every),
                    checkpoint_every=settings.checkpoint_every,
                )
                created = True
            if not tx.list_users():
                # Whoever creates the home administers it; they grant roles to others.
                _bootstrap_admin(tx, settings)
    finally:
        store.close()
    return created


def _refuse_over_a_ledger(tx: WriteTx, settings: Settings) -> None:
    """Refuse to initialise a ledger whose head is gone but whose entries are not.

    A new head would start counting at 0 under a new origin over the old entries:
    the next append would collide with entry 0, every old checkpoint would stop
    verifying, and the damage (or the tampering) that removed the head would be
    buried under a fresh start.

    Raises:
        HomeError: when ledger entries or a head row under another id exist.
    """
    entries, heads = tx.ledger_entry_count(), tx.ledger_heads()
    if entries or heads:
        raise HomeError(
            f"the registry database at {settings.home} has a ledger whose head is missing or "
            f"corrupt ({entries} entries, head rows: "
            f"{', '.join(str(h[0]) for h in heads) or 'none'}): refusing to start a new ledger "
            "over it. Run `charter audit verify` and restore the database from a backup",
            home=str(settings.home),
            entries=entries,
        )


def _bootstrap_admin(tx: WriteTx, settings: Settings) -> None:
    at = now()
    admin = User(settings.user, Role.ADMIN, settings.user, at)
    tx.put_user(admin)
    event = Event("user.set", f"user:{admin.name}", settings.user, at, {"user": admin.state()})
    append_event(tx, event, key=load_signing_key(settings))


def signed_origin(checkpoint_every: int) -> str:
    """A new log identity that carries the checkpoint interval.

    Every checkpoint signs its origin, so the interval cannot be raised later (to
    hide deleted checkpoints) without breaking every signature; ``audit verify``
    compares it with the head row.
    """
    return f"charter/{uuid.uuid4()}/checkpoint-every-{checkpoint_every}"


def interval_of(origin: str | None) -> int | None:
    """The checkpoint interval a log identity declares, if it declares one."""
    _, found, number = (origin or "").rpartition("/checkpoint-every-")
    return int(number) if found and number.isdigit() else None


def open_store(settings: Settings) -> Store:
    """Open the metadata store of an initialised home.

    Raises:
        HomeError: when the home is missing or was never initialised.
        StorageError: when the database is unreadable or corrupted.
    """
    home = settings.home
    if settings.database_url is None and not (home / "registry.db").is_file():
        raise HomeError(
            f"no registry at {home}: run `charter init` (or pass --home / set CHARTER_HOME)",
            home=str(home),
        )
    store = Store(
        settings.resolved_database_url,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_s=settings.busy_timeout_s,
    )
    # Opening never writes: a database from an older Charter is upgraded only by
    # `charter init`, and a stray SQLite file is never given Charter's tables.
    if not store.schema_current():
        store.close()
        raise HomeError(
            f"the registry at {home} uses an older schema (or is not a Charter registry): "
            "run `charter init` to upgrade it",
            home=str(home),
        )
    with store.read() as tx:
        # Uninitialised means no ledger at all. Entries without their head are a
        # damaged (or tampered) ledger: it opens, so `audit verify` can say so,
        # and `charter init` refuses to start over it.
        uninitialised = (
            tx.ledger_origin() is None and not tx.ledger_heads() and not tx.ledger_entry_count()
        )
    if uninitialised:
        store.close()
        raise HomeError(
            f"the registry database at {home} is not initialised: run `charter init`",
            home=str(home),
        )
    return store


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """Read the home's Ed25519 checkpoint signing key.

    Raises:
        HomeError: when the key file is missing or unreadable.
    """
    path: Path = settings.key_path
    try:
        return load_private_key(path.read_bytes())
    except OSError as exc:
        raise HomeError(
            f"cannot read the ledger signing key {path}: {exc.strerror}", path=str(path)
        ) from None
