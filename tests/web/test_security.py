"""Sessions, CSRF, revocation, roles and escaping, checked through a real browser."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from charter.domain.access import split_token
from charter.web._session import COOKIE
from web._support import Server, login

SIGNOFF = "/ui/models/credit-risk/versions/1.0.0/signoff"
FORM = {"stage": "staging", "decision": "approve", "comment": "looks fine"}


def _csrf(page: Page) -> str:
    value = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert value
    return value


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    page: Page, server: Server
) -> None:
    login(page, server, server.tokens.approver_token, start="/ui/models/credit-risk/versions/1.0.0")
    good = _csrf(page)
    url = server.url + SIGNOFF
    missing = page.request.post(url, form=FORM, max_redirects=0)
    wrong = page.request.post(url, form={**FORM, "csrf_token": "x" * 43}, max_redirects=0)
    elsewhere = page.request.post(
        url, form={**FORM, "csrf_token": good}, headers={"Origin": "https://evil.example"},
        max_redirects=0,
    )  # fmt: skip
    for response in (missing, wrong, elsewhere):
        assert response.status == 403, response.text()
        assert "Request refused" in response.text()
    huge = page.request.post(url, form={**FORM, "comment": "x" * 100_000, "csrf_token": good})
    assert huge.status == 400
    assert server.registry.approvals(model="credit-risk") == []
    # With the session's token (a form field, or htmx's header) the same request goes through.
    accepted = page.request.post(url, form={**FORM, "csrf_token": good}, max_redirects=0)
    assert accepted.status == 303
    by_header = page.request.post(
        url, form={**FORM, "stage": "production"}, headers={"X-CSRF-Token": good}, max_redirects=0
    )
    assert by_header.status == 303
    signed = [(a.user, a.stage) for a in server.registry.approvals(model="credit-risk")]
    assert signed == [("bob", "staging"), ("bob", "production")]


def test_the_login_form_is_csrf_protected_too(page: Page, server: Server) -> None:
    page.goto(server.url + "/ui/login")
    response = page.request.post(
        server.url + "/ui/login", form={"token": server.tokens.approver_token}, max_redirects=0
    )
    assert response.status == 403
    page.goto(server.url + "/ui/")
    assert "/ui/login" in page.url


def test_a_revoked_token_logs_the_user_out_on_the_next_page(page: Page, server: Server) -> None:
    login(page, server, server.tokens.approver_token)
    expect(page.get_by_test_id("user")).to_have_text("bob")
    server.registry.revoke_token(token_id=server.tokens.approver_token_id)
    page.reload()
    assert "/ui/login" in page.url
    expect(page.get_by_test_id("flash")).to_contain_text("You were logged out")
    page.fill("#token", server.tokens.approver_token)
    page.click("form[action='/ui/login'] button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("not valid")
    assert "/ui/login" in page.url


def test_logging_out_ends_the_session(page: Page, server: Server) -> None:
    login(page, server, server.tokens.viewer_token)
    page.click("text=Log out")
    expect(page.get_by_test_id("flash")).to_have_text("Logged out.")
    page.goto(server.url + "/ui/ledger")
    assert "/ui/login" in page.url


def test_the_session_cookie_is_httponly_samesite_and_encrypted(page: Page, server: Server) -> None:
    login(page, server, server.tokens.approver_token)
    [cookie] = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    _, secret = split_token(server.tokens.approver_token)  # may itself hold "_"
    assert secret not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts
    page.context.add_cookies([{**cookie, "value": cookie["value"][:-6] + "AAAAAA"}])
    page.goto(server.url + "/ui/")
    assert "/ui/login" in page.url  # an altered cookie is no session


def test_login_only_redirects_within_the_ui(page: Page, server: Server) -> None:
    page.goto(server.url + "/ui/login?next=//evil.example/ui/")
    page.fill("#token", server.tokens.viewer_token)
    page.click("form[action='/ui/login'] button[type=submit]")
    page.wait_for_url(server.url + "/ui/")


def test_roles_and_separation_of_duties_are_enforced_by_the_service(
    page: Page, server: Server
) -> None:
    # A viewer's forged sign-off (with a valid CSRF token) is refused by the service.
    login(page, server, server.tokens.viewer_token, start="/ui/models/credit-risk/versions/1.0.0")
    response = page.request.post(server.url + SIGNOFF, form={**FORM, "csrf_token": _csrf(page)})
    assert "carol may not approve versions" in response.text()
    # The registrant (alice, an admin) may not approve her own version.
    page.context.clear_cookies()
    login(page, server, server.tokens.admin_token, start="/ui/models/credit-risk/versions/1.0.0")
    page.fill("#signoff-comment", "mine")
    page.click("#signoff button.approve")
    expect(page.get_by_test_id("signoff-flash")).to_contain_text("separation of duties")
    assert server.registry.approvals(model="credit-risk") == []


def test_user_text_is_escaped_everywhere(page: Page, server: Server, tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    reg = server.registry
    reg.create_model(name="evil", risk_tier="low", description=evil, owner='ow"ner<b>')
    data = tmp_path / '"><svg onload=alert(3)>.csv'
    data.write_text("x\n1\n")
    folder = tmp_path / "evil-model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    (folder / "<b>odd name<i>.txt").write_text("x")
    reg.register(model="evil", path=folder, version="1.0.0", run_id=evil,
                 datasets=[("train", str(data))], tags={"note": evil})  # fmt: skip
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, server, server.tokens.viewer_token)
    expect(page.locator("tr[data-model='evil']")).to_contain_text(evil)
    for path in ("/ui/models/evil", "/ui/models/evil/versions/1.0.0", "/ui/models/evil/lineage",
                 "/ui/ledger"):  # fmt: skip
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("img[src=x]").count() == 0
        assert page.locator("svg[onload]").count() == 0
        assert page.locator("script:not([src])").count() == 0
    page.goto(server.url + "/ui/models/evil/lineage")
    expect(page.get_by_test_id("lineage").locator("svg")).to_contain_text("<svg onload=alert(3)>")
    page.goto(server.url + "/ui/models/evil/versions/1.0.0")
    expect(page.get_by_test_id("files")).to_contain_text("<b>odd name<i>.txt")
    assert dialogs == []
