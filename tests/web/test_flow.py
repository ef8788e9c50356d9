"""The approver's path in a real browser: log in, open a version, approve it, promote it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from web._support import Server, login, screenshot


def test_approver_approves_promotes_and_sees_the_stage_move(page: Page, server: Server) -> None:
    login(page, server, server.tokens.approver_token)
    expect(page.get_by_test_id("flash")).to_contain_text("Logged in as bob (approver)")
    expect(page.locator("tr[data-model='credit-risk']")).to_contain_text("high risk")
    screenshot(page, "models")
    page.click("text=Awaiting sign-off")
    expect(page.locator("main table")).to_contain_text("credit-risk@1.0.0")
    page.click("a:text-is('Models')")

    page.click("a:text-is('credit-risk')")
    page.click("table[data-testid=versions] a:text-is('1.0.0')")
    assert page.url.endswith("/ui/models/credit-risk/versions/1.0.0")
    staging = page.locator("#signoff tr[data-stage=staging]")
    expect(staging).to_contain_text("0 of 1 required approvals")
    expect(page.get_by_test_id("timeline-empty")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 2200})  # overview, profile, bias charts
    screenshot(page, "version")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Approve: an htmx POST (CSRF token in its header) that swaps the sign-off panel.
    page.fill("#signoff-comment", "Reviewed the bias audits and both red-team campaigns.")
    page.click("#signoff button.approve")
    expect(page.get_by_test_id("signoff-flash")).to_contain_text(
        "You approved credit-risk@1.0.0 for staging"
    )
    expect(staging.get_by_test_id("approval")).to_contain_text("bob approved")
    [approval] = server.registry.approvals(model="credit-risk")
    assert (approval.user, approval.stage, approval.decision) == ("bob", "staging", "approve")

    # Promote: a plain form POST; the gate now passes and the stage moves.
    page.select_option("#promote-stage", "staging")
    page.click("#promote button[value=promote]")
    expect(page.get_by_test_id("flash")).to_contain_text(
        "staging of credit-risk now points at 1.0.0"
    )
    expect(page.get_by_test_id("holds")).to_have_text("staging")
    move = page.locator("#stages li.move").first
    expect(move).to_contain_text("promote")
    expect(move).to_contain_text("by bob")
    page.locator("#signoff").scroll_into_view_if_needed()
    screenshot(page.locator("#gates"), "version-gates")

    page.click("text=Whole stage history of credit-risk")
    latest = page.get_by_test_id("timeline").locator("li").first
    expect(latest).to_have_attribute("data-stage", "staging")
    expect(latest).to_have_attribute("data-version", "1.0.0")
    expect(latest).to_contain_text("sign-offs #1")
    screenshot(page, "stage-history")

    page.click("text=Awaiting sign-off")
    expect(page.locator("main")).to_contain_text("Nothing is waiting for sign-off.")

    [pointer] = server.registry.stages(model="credit-risk")
    assert (pointer["stage"], pointer["version"], pointer["assigned_by"]) == (
        "staging", "1.0.0", "bob",
    )  # fmt: skip
    entries = server.registry.audit_log(start=0)
    assert [e.actor for e in entries if e.type == "approval.recorded"] == ["bob"]
    assert [e.actor for e in entries if e.type == "stage.assigned"][-1] == "bob"


def test_a_refused_promotion_says_why_and_moves_nothing(page: Page, server: Server) -> None:
    login(page, server, server.tokens.approver_token, start="/ui/models/credit-risk/versions/1.0.0")
    page.select_option("#promote-stage", "staging")
    page.click("#promote button[value=promote]")
    expect(page.get_by_test_id("flash")).to_contain_text("Not promoted.")
    expect(page.get_by_test_id("flash")).to_contain_text("0 of 1 required approvals")
    assert server.registry.stages(model="credit-risk") == []
