"""Listing and search: filters, keyset pages, and query plans that stay index scans."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from _api import Team
from charter.service import Registry
from charter.store.search import _FILTER_KEYS, _version_page


@pytest.fixture
def catalogue(registry: Registry, artifact: Path) -> Registry:
    """Two models (low, high), eight versions, tags, a published one in production."""
    registry.create_model(name="alpha", risk_tier="low")
    registry.create_model(name="beta", risk_tier="high")
    for i in range(5):
        registry.register(model="alpha", path=artifact, version=f"1.{i}.0",
                          tags={"team": "a" if i % 2 else "b", "n": str(i)})  # fmt: skip
    for i in range(3):
        registry.register(model="beta", path=artifact, version=f"2.{i}.0", tags={"team": "a"})
    registry.publish(model="alpha", version="1.3.0")
    registry.promote(model="alpha", version="1.3.0", stage="production", force=True,
                     reason="test fixture")  # fmt: skip
    return registry


def _refs(registry: Registry, **filters: object) -> list[str]:
    page = registry.search_versions(**filters)  # type: ignore[arg-type]
    return [v.ref for v in page.items]


def test_filters_combine(catalogue: Registry) -> None:
    assert _refs(catalogue, model="beta") == ["beta@2.0.0", "beta@2.1.0", "beta@2.2.0"]
    assert _refs(catalogue, risk_tier="high") == _refs(catalogue, model="beta")
    assert _refs(catalogue, state="published") == ["alpha@1.3.0"]
    assert _refs(catalogue, stage="production") == ["alpha@1.3.0"]
    assert _refs(catalogue, tag="team=a") == [
        "alpha@1.1.0", "alpha@1.3.0", "beta@2.0.0", "beta@2.1.0", "beta@2.2.0"]  # fmt: skip
    assert _refs(catalogue, tag="team=a", model="alpha", state="draft") == ["alpha@1.1.0"]
    assert _refs(catalogue, tag="n") == [f"alpha@1.{i}.0" for i in range(5)]
    assert _refs(catalogue, tag="team=zzz") == []
    assert _refs(catalogue, newest_first=True, limit=2) == ["beta@2.2.0", "beta@2.1.0"]


def test_pages_cover_everything_once(catalogue: Registry) -> None:
    for newest_first in (False, True):
        seen, cursor = [], None
        while True:
            page = catalogue.search_versions(cursor=cursor, limit=3, newest_first=newest_first)
            seen += [v.ref for v in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == 8
    tagged = catalogue.search_versions(tag="team=a", limit=2)
    rest = catalogue.search_versions(tag="team=a", limit=10, cursor=tagged.next_cursor)
    assert len(tagged.items) + len(rest.items) == 5 and rest.next_cursor is None


def test_the_rest_endpoints_page_and_filter(
    client: TestClient, team: Team, catalogue: Registry
) -> None:
    h = team.headers("viewer")
    first = client.get("/versions", params={"model": "alpha", "limit": 2}, headers=h).json()
    assert [v["ref"] for v in first["items"]] == ["alpha@1.0.0", "alpha@1.1.0"]
    after = client.get(
        "/versions", params={"model": "alpha", "cursor": first["next_cursor"]}, headers=h
    ).json()
    assert [v["version"] for v in after["items"]] == ["1.2.0", "1.3.0", "1.4.0"]
    assert after["next_cursor"] is None
    listed = client.get("/models/beta/versions", params={"tag": "team=a"}, headers=h).json()
    assert len(listed["items"]) == 3
    models = client.get("/models", params={"risk_tier": "low"}, headers=h).json()
    assert [m["name"] for m in models["items"]] == ["alpha"]
    assert client.get("/models", params={"prefix": "be"}, headers=h).json()["items"][0][
        "name"] == "beta"  # fmt: skip
    assert client.get("/models/nope/versions", headers=h).status_code == 404


# SQLite statements carry named parameters (``:name``; see charter.store.engine).
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def test_every_filter_combination_is_an_index_search(registry: Registry) -> None:
    """No full scan of versions and no sort of all rows, whatever the filters (SQLite plans)."""
    if registry.store.engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    keys = [k for k in _FILTER_KEYS if k != "tag_value"]
    pairs = [["tag_key", "tag_value"], ["model", "state"], ["model", "tag_key", "tag_value"],
             ["stage", "risk_tier"]]  # fmt: skip
    # With a cursor: the plan of every page after the first (the first one adds a LIMIT
    # to an ordered scan, which stops as soon as the page is full).
    combos = [frozenset([*c, "cursor"]) for c in ([], *[[k] for k in keys], *pairs)]
    with registry.store.engine.connect() as conn:
        for combo in combos:
            for descending in (False, True):
                sql = _version_page(combo, descending)._form(conn.dialect).sql
                plan = " | ".join(
                    row[3]
                    for row in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + sql, dict.fromkeys(_PARAM.findall(sql))
                    )
                )
                assert "SCAN versions" not in plan, (combo, plan)
                assert "TEMP B-TREE" not in plan, (combo, plan)
