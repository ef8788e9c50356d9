"""The other pages in a real browser: lineage graph, stage history, ledger, risk flags."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from web._support import Server, login, screenshot


def test_lineage_graph_is_drawn_by_graphviz_and_its_nodes_link(page: Page, server: Server) -> None:
    login(page, server, server.tokens.viewer_token, start="/ui/models/credit-risk/lineage")
    graph = page.get_by_test_id("lineage")
    for number in ("1.0.0", "1.1.0", "2.0.0"):
        expect(graph.locator(f"g[id='node-{number}']")).to_be_visible()
    expect(graph.locator("svg")).to_contain_text("train-2026q1.csv")  # a dataset node
    expect(graph.locator("svg")).to_contain_text("minor")  # an edge label
    screenshot(page, "lineage")
    graph.locator("g[id='node-1.1.0'] a").click()
    page.wait_for_url(re.compile(r"/ui/models/credit-risk/versions/1\.1\.0$"))
    expect(page.locator("h1")).to_contain_text("credit-risk@1.1.0")


def test_stage_history_is_a_timeline_with_rollbacks(page: Page, server: Server) -> None:
    login(page, server, server.tokens.viewer_token, start="/ui/models/demand-forecast/history")
    moves = page.get_by_test_id("timeline").locator("li")
    expect(moves).to_have_count(5)
    newest = moves.first
    expect(newest).to_have_attribute("data-stage", "production")
    expect(newest).to_have_attribute("data-version", "0.1.0")
    expect(newest).to_contain_text("rollback")
    expect(newest).to_contain_text("Forecast error doubled")
    screenshot(page, "stage-history")


def test_ledger_is_verified_and_every_entry_has_a_checked_proof(page: Page, server: Server) -> None:
    login(page, server, server.tokens.viewer_token, start="/ui/ledger")
    expect(page.get_by_test_id("verified")).to_have_text("✔ Verified")  # loaded by htmx
    rows = page.get_by_test_id("ledger").locator("tbody tr")
    for row in range(3, 6):  # a few entries covered by the seeded checkpoint
        rows.nth(row).locator("button:text-is('check')").click()
        expect(rows.nth(row).get_by_test_id("proof-ok")).to_contain_text("included")
    screenshot(page, "ledger")

    rows.nth(3).locator("td").first.locator("a").click()
    expect(page.get_by_test_id("proof")).to_contain_text(
        "This entry is in the log the registry signed"
    )
    with page.expect_download() as download:
        page.click("text=Download proof")
    assert download.value.suggested_filename.startswith("charter-proof-")


def test_an_entry_newer_than_the_checkpoint_can_get_one(page: Page, server: Server) -> None:
    server.registry.set_tags(model="credit-risk", version="1.1.0", tags={"team": "risk"})
    newest = server.registry.audit_log(start=0)[-1].seq
    login(page, server, server.tokens.viewer_token, start=f"/ui/ledger/{newest}")
    expect(page.get_by_test_id("proof")).to_contain_text("No signed checkpoint covers this entry")
    page.click("text=Sign a checkpoint now")
    expect(page.get_by_test_id("proof")).to_contain_text(
        "This entry is in the log the registry signed"
    )


def test_versions_flagged_by_monitoring_carry_a_badge(page: Page, server: Server) -> None:
    login(page, server, server.tokens.viewer_token)
    row = page.locator("tr[data-model='support-bot']")
    expect(row.get_by_test_id("at-risk").first).to_be_visible()
    expect(page.locator("tr[data-model='credit-risk']").get_by_test_id("at-risk")).to_have_count(0)
    row.locator("a:text-is('1.0.0')").first.click()
    expect(page.get_by_test_id("risk-detail")).to_contain_text("At risk since")
    expect(page.get_by_test_id("risk-detail")).to_contain_text("attack success rate")


def test_the_version_page_marks_baseline_and_amended_entries(page: Page, server: Server) -> None:
    login(page, server, server.tokens.viewer_token, start="/ui/models/credit-risk/versions/1.0.0")
    profile = page.get_by_test_id("profile")
    expect(profile.locator("[data-entry='adv-1'] .badge.baseline")).to_have_text("baseline")
    expect(profile.locator("[data-entry='adv-2'] .badge.amended")).to_have_text("am-1")
    expect(profile.get_by_test_id("bias-audit")).to_have_count(2)
    expect(profile.get_by_test_id("bias-audit").first.locator("svg")).to_be_visible()  # chart
    by_category = profile.locator("[data-entry='adv-2'] table.bars tr:has(td)")
    expect(by_category).to_have_count(2)
    expect(by_category.first).to_contain_text("prompt-injection")
    # Viewers see no sign-off or promotion buttons.
    expect(page.locator("#signoff button.approve")).to_have_count(0)
    expect(page.locator("#signoff")).to_contain_text("needs the approver role")
    expect(page.locator("#promote button")).to_have_count(0)
    frame = page.frame_locator("iframe.modelcard")
    page.locator("iframe.modelcard").scroll_into_view_if_needed()
    expect(frame.locator("h1")).to_contain_text("credit-risk")
