"""HTML cards: escaped user input, visible amendment badges, inline charts with unique ids."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from charter.cards import CardInput, render_html

VOID = {"meta", "br", "hr", "img", "input", "link", "path", "use", "rect", "line", "circle"}


class _Balance(HTMLParser):
    """Checks that every non-void element closes in order (catches template slips)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def _balanced(page: str) -> None:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []


def _row(page: str, entry_id: str) -> str:
    match = re.search(rf'<tr class="(\w+)" data-entry="{entry_id}">(.*?)</tr>', page, re.DOTALL)
    assert match, entry_id
    return match.group(0)


def test_page_is_well_formed_and_complete(card: CardInput) -> None:
    page = render_html(card)
    assert page.startswith("<!DOCTYPE html>")
    _balanced(page)
    for section in ("overview", "uses", "training-data", "lineage", "evaluations",
                    "bias-audits", "red-team", "guardrails", "amendments",
                    "gate-decisions", "approvals", "files"):  # fmt: skip
        assert f'<section id="{section}">' in page
    assert f"profile digest <code>{card.profile.digest}</code>" in page
    assert "4.8 MiB" in page and "cccccccccccc" in page


def test_amendment_rows_carry_a_badge(card: CardInput) -> None:
    page = render_html(card)
    baseline, amended = _row(page, "eval-1"), _row(page, "eval-5")
    assert 'class="baseline"' in baseline and "badge baseline" in baseline
    assert 'class="amended"' in amended and "✎ amendment am-1" in amended
    assert "badge amended" not in baseline
    assert 'data-entry="eval-4"' not in page  # retracted
    assert 'data-amendment="am-2"' in page and "eval-4 (latency_p95 = 35 ms)" in page


def test_user_input_is_escaped(make_card: Callable[..., CardInput]) -> None:
    bias = """
bias_audits:
  - sensitive_feature: "<img src=x onerror=alert(1)>"
    metric: selection_rate
    groups:
      - {group: "<script>alert(2)</script>", value: 0.2, size: 5}
      - {group: b, value: 0.5, size: 5}
"""
    card = make_card(description="<script>alert(1)</script>", baseline_text=bias, amend=False,
                     approvals=[{"comment": "<b>bold</b>"}])  # fmt: skip
    page = render_html(card)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # in the table and the chart
    _balanced(page)


def test_four_fifths_badges(card: CardInput) -> None:
    page = render_html(card)
    sex, age = page.split('data-entry="bias-1"')[1], page.split('data-entry="bias-2"')[1]
    assert "fails the four-fifths rule" in sex.split("</article>")[0]
    assert "passes the four-fifths rule" in age.split("</article>")[0]
    assert "fails" not in age.split("</article>")[0]


def test_inline_charts_have_unique_ids(card: CardInput) -> None:
    page = render_html(card)
    assert page.count("<svg ") == 2 + 1  # two bias audits, one trend metric
    assert 'aria-label="selection_rate by sex per group"' in page
    ids = Counter(re.findall(r'\bid="([^"]+)"', page))
    assert [i for i, n in ids.items() if n > 1] == []
    for ref in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page):
        assert (ref[0] or ref[1]) in ids
    assert "<?xml" not in page and "<metadata>" not in page
    assert 'id="charts-note"' not in page


def test_charts_can_be_turned_off(card: CardInput) -> None:
    page = render_html(card, with_charts=False)
    assert "<svg" not in page
    assert "Charts are turned off for this card." in page


def test_placeholders_and_empty_profile(make_card: Callable[..., CardInput]) -> None:
    page = render_html(make_card(baseline_text="", amend=False, files=[]))
    for text in ("No gate decisions recorded yet.", "No approvals recorded yet.",
                 "No evaluations in the profile.", "No bias audits in the profile.",
                 "No files in the manifest."):  # fmt: skip
        assert text in page
    assert "<svg" not in page and 'id="charts-note"' not in page
    _balanced(page)


def test_without_matplotlib_the_card_renders_with_a_note(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import conftest
        from charter.cards import ChartsUnavailableError, bias_chart, charts_available
        from charter.cards import render_html
        assert not charts_available()
        page = render_html(conftest.build_card())
        assert "<svg" not in page and "install matplotlib" in page, page
        try:
            bias_chart({{"groups": [{{"group": "a", "value": 1, "size": 1}}]}})
        except ChartsUnavailableError as exc:
            assert exc.code == "charts_unavailable"
        else:
            raise AssertionError("expected ChartsUnavailableError")
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_four_fifths_edge_matches_the_gate(make_card: Callable[..., CardInput]) -> None:
    # 0.36 / 0.45 is 0.7999999999999999 in floats: the gate passes it, so must the card.
    bias = """
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: f, value: 0.36, size: 50}, {group: m, value: 0.45, size: 50}]
"""
    page = render_html(make_card(baseline_text=bias, amend=False))
    audit = page.split('data-entry="bias-1"')[1].split("</article>")[0]
    assert "passes the four-fifths rule" in audit and "fails" not in audit
