"""A ledger whose head row is gone is damaged, not new: it opens for `audit verify`,
which says so, and `charter init` refuses to start a second ledger over its entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from _postgres import RawDatabase, raw_database
from charter.domain.errors import HomeError
from charter.home import init_home
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings

HeadAttack = Callable[[RawDatabase], None]
ATTACKS: dict[str, HeadAttack] = {
    "deleted": lambda db: db.execute("DELETE FROM ledger_head"),
    "id-edited": lambda db: db.execute("UPDATE ledger_head SET id = 7"),
}


@pytest.fixture
def populated(settings: Settings, artifact: Path) -> int:
    """A home with a few entries; returns how many."""
    with init_registry(settings=settings) as reg:
        reg.create_model(name="m")
        reg.register(model="m", path=artifact, version="1.0.0")
        reg.publish(model="m", version="1.0.0")
        assert reg.verify().ok
        return len(reg.audit_log())


def _entries_and_heads(settings: Settings) -> tuple[int, list[tuple[object, ...]]]:
    with raw_database(settings.resolved_database_url, commit=False) as db:
        (entries,) = db.execute("SELECT count(*) FROM ledger_entries").fetchone()
        heads = db.execute("SELECT id, size, origin FROM ledger_head").fetchall()
    return int(entries), [tuple(h) for h in heads]


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_verify_reports_a_missing_head_instead_of_refusing_to_open(
    settings: Settings, populated: int, attack: str
) -> None:
    with raw_database(settings.resolved_database_url) as db:
        ATTACKS[attack](db)
    with Registry(settings) as reg:  # not "not initialised: run `charter init`"
        report = reg.verify()
    heads = [p for p in report.problems if (p.kind, p.where) == ("ledger", "head")]
    assert heads, report.problems
    if attack == "deleted":
        assert any(
            f"missing or corrupt while {populated} entries exist" in p.message for p in heads
        )
    else:
        assert any("expected one ledger head row with id 1, found: 7" in p.message for p in heads)


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_init_refuses_to_start_a_new_ledger_over_existing_entries(
    settings: Settings, populated: int, attack: str
) -> None:
    with raw_database(settings.resolved_database_url) as db:
        ATTACKS[attack](db)
    before = _entries_and_heads(settings)
    with pytest.raises(HomeError, match=f"head is missing or corrupt \\({populated} entries"):
        init_home(settings)
    assert _entries_and_heads(settings) == before  # nothing written


def test_a_database_without_any_ledger_is_still_not_initialised(settings: Settings) -> None:
    with init_registry(settings=settings):
        pass
    with raw_database(settings.resolved_database_url) as db:
        for table in (
            "users",
            "ledger_nodes",
            "ledger_checkpoints",
            "ledger_entries",
            "ledger_head",
        ):
            db.execute(f"DELETE FROM {table}")
    with pytest.raises(HomeError, match="not initialised: run `charter init`"):
        Registry(settings)
    assert init_home(settings)  # an empty database is initialised as before
    with Registry(settings) as reg:
        assert reg.verify().ok
