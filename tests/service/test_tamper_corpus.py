"""Invariant 5, generated over every table: edit, delete, duplicate and reorder rows.

A registry using every feature (profiles and amendments, cards, users, policies,
gates, approvals, stages, deprecations, evaluation runs, red-team targets, API
tokens, monitoring flags, webhooks) is populated once per backend. For every
table of ``charter.store.schema`` the corpus then makes, on a fresh copy:

- one edit per column of the first row (a subtle edit: JSON stays valid JSON,
  times stay well-formed times, moved a day back, so that only a comparison
  with the ledger can tell);
- the deletion of that row;
- a duplicate of it under a fresh key;
- a reorder: the first two rows swap everything but their keys;

and ``Registry.verify(artifacts=True)`` must report at least one problem naming
where. ``test_tamper.py`` holds the precise expectations for the core tables and
the careful ledger attacks; this corpus makes sure no table is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Integer, LargeBinary, Table, UniqueConstraint

from _homes import Templates, copied_settings
from _postgres import RawDatabase, raw_database
from charter._audit_gates import MAX_WRITE_WAIT
from charter.domain.entities import format_time, parse_time
from charter.domain.profile import parse_document
from charter.service import Registry
from charter.settings import Settings
from charter.store import schema

# Operational tables: not claims about the registry, so not in the ledger.
NOT_AUDITED = {
    "webhook_deliveries": "the outbox's delivery log (attempts, status); not registry state",
    "webhook_cursor": "how far the dispatcher has fanned out the ledger; rebuilt from it",
}
# Columns the ledger deliberately does not hold, with the reason.
NOT_AUDITED_COLUMNS = {
    ("webhooks", "secret"): "signing secrets never enter the append-only ledger",
}
# Row times the ledger holds only as its entry's own time, which the writer takes a
# moment after the row's: verify bounds them (no later than the entry, at most
# MAX_WRITE_WAIT before it) instead of comparing. A backdate within that window is
# the one edit left unseen: `test_row_times_the_ledger_only_bounds` pins the limit.
# Exact once set_policy and set_model_target stamp these rows with their entry's time.
BOUNDED_TIMES = {
    ("policies", "created_at"): "set_policy stamps the row before its policy.set entry",
    ("policy_assignments", "set_at"): "set_policy stamps the row before its policy.set entry",
    ("model_targets", "set_at"): "set_model_target stamps the row before its entry",
}
# Tables with a single row: nothing to reorder.
SINGLE_ROW = {"ledger_head"}
# Tables whose deletion targets the newest row instead of the first, with the reason.
DELETE_NEWEST = {
    "ledger_checkpoints": (
        "deleting an older checkpoint loses no evidence, by design: every later checkpoint "
        "signs the whole tree (test_tamper.py::test_deleting_an_older_checkpoint_loses_no_"
        "evidence); deleting the newest leaves more unsigned entries than checkpoint_every allows"
    ),
}

PROFILE = """
evaluations:
  - {name: accuracy, value: 0.91}
  - {name: accuracy, value: 0.84, slice: "sex=female"}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: f, value: 0.42, size: 40}, {group: m, value: 0.45, size: 60}]
constraints: {max_output_chars: 400, blocked_patterns: ["(?i)secret"]}
"""
POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  staging:
    metrics: [{metric: accuracy, min: 0.85}]
  production:
    metrics: [{metric: accuracy, slice: "sex=female", min: 0.8}]
    approvals: {min: 1}
"""
BETA_POLICY = POLICY.replace("min: 0.85", "min: 0.5")
TARGET = {"kind": "callable", "function": "json:dumps"}


def _settings(home: Path, database_url: str | None = None) -> Settings:
    return Settings(home=home, user="alice", checkpoint_every=4, database_url=database_url)


def _populate(reg: Registry, src: Path) -> None:
    (src / "alpha").mkdir(parents=True)
    (src / "alpha" / "weights.bin").write_bytes(b"\x00weights" * 40)
    (src / "alpha" / "config.json").write_text('{"layers": 2}')
    (src / "beta.bin").write_bytes(b"beta weights")
    for name in ("train", "eval"):
        (src / f"{name}.csv").write_text(f"x\n{name}\n")
    data = [("train", str(src / "train.csv")), ("eval", str(src / "eval.csv"))]
    for name, role in (("bob", "approver"), ("carol", "approver"), ("dave", "contributor")):
        reg.add_user(name=name, role=role)
    reg.set_policy(text=POLICY)
    reg.create_model(name="alpha", risk_tier="low", owner="risk", description="scores")
    reg.create_model(name="beta")
    reg.set_policy(text=BETA_POLICY, model="beta")
    profile = parse_document(PROFILE)
    reg.register(model="alpha", path=src / "alpha", version="1.0.0", datasets=data,
                 params={"C": "0.5"}, run_id="run-1", commit="abc123",
                 tags={"team": "risk", "stage": "dev"}, profile=profile)  # fmt: skip
    reg.register(model="alpha", path=src / "alpha", version="1.0.1", parent="1.0.0",
                 datasets=data, profile=profile, tags={"note": "hotfix"})  # fmt: skip
    reg.register(model="beta", path=src / "beta.bin", version="0.1.0", profile=profile)
    reg.register(model="beta", path=src / "beta.bin", version="0.2.0", parent="0.1.0")
    for model, version in (("alpha", "1.0.0"), ("alpha", "1.0.1"), ("beta", "0.1.0"),
                           ("beta", "0.2.0")):  # fmt: skip
        reg.publish(model=model, version=version)
    for model in ("alpha", "beta"):
        reg.set_model_target(model=model, target=TARGET, packs=["charter-default"])
    reg.redteam(model="alpha", version="1.0.0", max_probes=3, reason="first campaign")
    reg.redteam(model="beta", version="0.1.0", max_probes=3, reason="first campaign")
    amend = "evaluations: [{name: roc_auc, value: 0.93}]"
    reg.amend_profile(model="alpha", version="1.0.0", document=parse_document(amend),
                      reason="late metric")  # fmt: skip
    reg.render_card(model="alpha", version="1.0.0", fmt="md")
    reg.render_card(model="beta", version="0.1.0", fmt="html")
    for approver in ("bob", "carol"):
        reg.as_user(approver).approve(model="alpha", version="1.0.0", stage="production",
                                      comment=f"{approver} read the audit")  # fmt: skip
    reg.promote(model="alpha", version="1.0.0", stage="staging")
    reg.promote(model="alpha", version="1.0.0", stage="production")
    reg.promote(model="beta", version="0.1.0", stage="staging")
    reg.deprecate(model="alpha", version="1.0.1", reason="superseded")
    reg.deprecate(model="beta", version="0.2.0", reason="bad data", status="archived")
    _, token = reg.create_token(user="bob", label="laptop")
    reg.create_token(user="dave", expires="30d")
    reg.revoke_token(token_id=token.token_id)
    slice_ = 'evaluations: [{name: accuracy, value: %s, slice: "sex=female"}]'
    for value in ("0.6", "0.9"):  # raised, then cleared
        reg.observe(model="alpha", version="1.0.0", document=parse_document(slice_ % value),
                    reason="weekly monitor")  # fmt: skip
    hook, _ = reg.add_webhook(url="https://hooks.example/a", events=["gate.decided"])
    reg.add_webhook(url="https://hooks.example/b?key=s3cret", events=["version.published"])
    reg.remove_webhook(webhook_id=hook.id)
    report = reg.verify(artifacts=True)
    assert report.ok, report.problems


@pytest.fixture(scope="module")
def templates(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Templates]:
    made = Templates(tmp_path_factory, request, settings_for=_settings, populate=_populate)
    yield made
    made.close()


@pytest.fixture
def settings(
    templates: Templates,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    yield from copied_settings(
        templates(backend), tmp_path / "home", settings_for=_settings,
        request=request, monkeypatch=monkeypatch,
    )  # fmt: skip


# -- mutations ---------------------------------------------------------------------------

Mutation = Callable[[RawDatabase, Table], None]


def _rows(
    db: RawDatabase, table: Table, limit: int, *, newest: bool = False
) -> list[dict[str, Any]]:
    order = " DESC" if newest else ""
    keys = ", ".join(f'"{c.name}"{order}' for c in table.primary_key.columns)
    cursor = db.execute(f'SELECT * FROM "{table.name}" ORDER BY {keys} LIMIT {limit}')
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert rows, f"the populated registry has no {table.name} rows: populate more"
    return rows


def _where(table: Table, row: dict[str, Any]) -> tuple[str, list[Any]]:
    keys = [c.name for c in table.primary_key.columns]
    return " AND ".join(f'"{k}" = ?' for k in keys), [row[k] for k in keys]


def _subtle(value: Any) -> Any:
    """A small change that keeps JSON valid: the first scalar leaf is altered."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [_subtle(value[0]), *value[1:]] if value else ["x"]
    if isinstance(value, dict):
        if not value:
            return {"x": 1}
        first = next(iter(value))
        return {**value, first: _subtle(value[first])}
    return "x"


def _edited(column: Any, value: Any) -> Any:
    if isinstance(column.type, Boolean):
        return not value
    if isinstance(column.type, LargeBinary):
        data = bytearray(value)
        data[0] ^= 1
        return bytes(data)
    if isinstance(column.type, Integer):
        return (value or 0) + (100_000 if column.primary_key else 1)
    if value is None:
        return "2030-01-01T00:00:00.000000Z" if column.name.endswith("_at") else "x"
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.dumps(_subtle(json.loads(value)))
        except ValueError:
            pass
    if isinstance(value, str) and _TIME.fullmatch(value):
        # Backdated but well-formed: a format check alone must not be what catches it.
        return format_time(parse_time(value) - timedelta(days=1))
    return f"{value}x"


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _edit(column: str) -> Mutation:
    def mutate(db: RawDatabase, table: Table) -> None:
        (row,) = _rows(db, table, 1)
        where, params = _where(table, row)
        value = _edited(table.c[column], row[column])
        db.execute(f'UPDATE "{table.name}" SET "{column}" = ? WHERE {where}', [value, *params])

    return mutate


def _delete(db: RawDatabase, table: Table) -> None:
    (row,) = _rows(db, table, 1, newest=table.name in DELETE_NEWEST)
    where, params = _where(table, row)
    assert db.execute(f'DELETE FROM "{table.name}" WHERE {where}', params).rowcount == 1


def _unique_sets(table: Table) -> list[list[Column[Any]]]:
    """The column sets of every UNIQUE constraint but the primary key."""
    sets = [[c] for c in table.columns if c.unique]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            sets.append(list(constraint.columns))
    return sets


def _freed(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """Values that free ``row``'s unique keys: one column of each constraint edited.

    The column edited is the last one not referencing another table (the version
    string of (model_id, version)), so the row stays attached where it was.
    """
    changes: dict[str, Any] = {}
    for columns in _unique_sets(table):
        if any(c.name in changes for c in columns):
            continue
        own = [c for c in columns if not c.foreign_keys] or columns
        changes[own[-1].name] = _edited(own[-1], row[own[-1].name])
    return changes


def _duplicate(db: RawDatabase, table: Table) -> None:
    (row,) = _rows(db, table, 1)
    copy = dict(row)
    for column in table.primary_key.columns:  # a fresh key, everything else the same
        copy[column.name] = _edited(column, row[column.name])
    copy.update(_freed(table, row))  # ...but other unique keys must be fresh too
    names = ", ".join(f'"{k}"' for k in copy)
    marks = ", ".join("?" for _ in copy)
    db.execute(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', list(copy.values()))


def _reorder(db: RawDatabase, table: Table) -> None:
    first, second = _rows(db, table, 2)
    keys = {c.name for c in table.primary_key.columns}
    values = [c for c in first if c not in keys and first[c] != second[c]]
    assert values, f"the first two {table.name} rows are equal but for their keys"

    def set_row(row: dict[str, Any], changes: dict[str, Any]) -> None:
        where, params = _where(table, row)
        sets = ", ".join(f'"{c}" = ?' for c in changes)
        db.execute(f'UPDATE "{table.name}" SET {sets} WHERE {where}',
                   [*changes.values(), *params])  # fmt: skip

    # Swap through a temporary value: unique keys (models.name, a version string)
    # are checked per statement, and would collide halfway through a plain swap.
    if freed := _freed(table, first):
        set_row(first, freed)
    set_row(second, {c: first[c] for c in values})
    set_row(first, {c: second[c] for c in values})


def _corpus() -> Iterator[Any]:
    for table in schema.metadata.sorted_tables:
        if table.name in NOT_AUDITED:
            continue
        for column in table.columns:
            if (table.name, column.name) not in NOT_AUDITED_COLUMNS:
                yield pytest.param(
                    table.name, _edit(column.name), id=f"edit-{table.name}.{column.name}"
                )
        yield pytest.param(table.name, _delete, id=f"delete-{table.name}")
        yield pytest.param(table.name, _duplicate, id=f"duplicate-{table.name}")
        if table.name not in SINGLE_ROW:
            yield pytest.param(table.name, _reorder, id=f"reorder-{table.name}")


@pytest.mark.parametrize(("table", "mutate"), list(_corpus()))
def test_verify_detects_every_generated_mutation(
    settings: Settings, table: str, mutate: Mutation
) -> None:
    with raw_database(settings.resolved_database_url) as db:
        mutate(db, schema.metadata.tables[table])
    with Registry(settings) as reg:
        report = reg.verify(artifacts=True)
    assert not report.ok, f"{table}: mutation went unnoticed"
    assert all(p.where and p.message for p in report.problems)


def test_every_table_is_in_the_corpus_or_excused() -> None:
    tables = set(schema.metadata.tables)
    assert set(NOT_AUDITED) <= tables
    covered = {t.name for t in schema.metadata.sorted_tables} - set(NOT_AUDITED)
    assert covered | set(NOT_AUDITED) == tables


def _shifted(column: str, delta: timedelta) -> Mutation:
    def mutate(db: RawDatabase, table: Table) -> None:
        (row,) = _rows(db, table, 1)
        where, params = _where(table, row)
        moved = format_time(parse_time(row[column]) + delta)
        db.execute(f'UPDATE "{table.name}" SET "{column}" = ? WHERE {where}', [moved, *params])

    return mutate


@pytest.mark.parametrize(
    ("table", "column"), list(BOUNDED_TIMES), ids=[f"{t}.{c}" for t, c in BOUNDED_TIMES]
)
def test_row_times_the_ledger_only_bounds(settings: Settings, table: str, column: str) -> None:
    """Later than the entry, or further back than MAX_WRITE_WAIT: caught. Within: not."""
    tables = schema.metadata.tables
    outcomes = []
    for delta in (
        timedelta(seconds=1),
        -MAX_WRITE_WAIT - timedelta(seconds=1),
        -timedelta(minutes=1),
    ):
        with raw_database(settings.resolved_database_url) as db:
            _shifted(column, delta)(db, tables[table])
        with Registry(settings) as reg:
            outcomes.append(reg.verify().ok)
        with raw_database(settings.resolved_database_url) as db:  # put it back
            _shifted(column, -delta)(db, tables[table])
    with Registry(settings) as reg:
        assert reg.verify().ok
    assert outcomes == [False, False, True], "the documented window changed: update BOUNDED_TIMES"
