"""Cards cannot silently go stale; exports carry the profile in standard formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.cli import main
from charter.domain.errors import InvalidInputError
from charter.domain.profile import parse_document
from charter.exports import dsse_verify
from charter.service import Registry

PROFILE = """
evaluations:
  - {name: accuracy, value: 0.9}
  - {name: accuracy, value: 0.7, slice: "sex=female", samples: 98}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: female, value: 0.30, size: 98}, {group: male, value: 0.50, size: 205}]
constraints: {max_output_chars: 800, intended_uses: [triage support]}
"""


@pytest.fixture
def published(registry: Registry, artifact: Path) -> Registry:
    registry.create_model(name="dx", risk_tier="high", description="Diagnostic <b>assistant</b>")
    registry.register(model="dx", path=artifact, version="1.0.0", profile=parse_document(PROFILE))
    registry.publish(model="dx", version="1.0.0")
    return registry


def test_a_rendered_card_is_registered_and_current(published: Registry) -> None:
    record, text = published.render_card(model="dx", version="1.0.0")
    assert record.card_id == "card-1" and record.format == "md"
    assert text.startswith("---")
    assert published.card_text(record=record) == text
    status = published.card_status()
    assert [(c.ref, c.stale) for c in status] == [("dx@1.0.0", False)]
    assert published.audit_log()[-1].type == "card.rendered"


def test_amending_or_retagging_makes_the_card_stale(published: Registry) -> None:
    published.render_card(model="dx", version="1.0.0")
    published.render_card(model="dx", version="1.0.0", fmt="html")
    doc = parse_document("evaluations: [{name: accuracy, value: 0.6, slice: 'sex=female'}]")
    published.amend_profile(model="dx", version="1.0.0", document=doc, reason="monitoring")
    stale = published.card_status(model="dx", version="1.0.0")
    assert len(stale) == 2
    assert all(c.stale for c in stale)
    assert "profile changed" in stale[0].stale_reasons[0]
    fresh = published.render_stale()
    assert {c.format for c in fresh} == {"md", "html"}
    assert not any(c.stale for c in published.card_status())
    published.set_tags(model="dx", version="1.0.0", tags={"owner": "ops"})
    assert [r for c in published.card_status() for r in c.stale_reasons] == [
        "the version's metadata or tags changed after rendering"
    ] * 2


def test_card_cli_check_exits_1_when_stale(
    published: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = ["--home", str(published.settings.home)]
    out_file = tmp_path / "card.html"
    assert main([*home, "card", "dx@1.0.0", "--format", "html", "-o", str(out_file)]) == 0
    assert "&lt;b&gt;assistant&lt;/b&gt;" in out_file.read_text()
    assert main([*home, "card", "check"]) == 0
    doc = tmp_path / "amend.yaml"
    doc.write_text("retracts: [eval-2]\n")
    assert main([*home, "profile", "amend", "dx@1.0.0", str(doc), "--reason", "bad slice"]) == 0
    capsys.readouterr()
    assert main([*home, "card", "check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert main([*home, "card", "render", "--all-stale"]) == 0
    assert main([*home, "card", "check", "dx@1.0.0"]) == 0
    assert main([*home, "card", "render"]) == 2


def test_cyclonedx_export_validates(published: Registry) -> None:
    validation = pytest.importorskip("cyclonedx.validation.json")
    schema = pytest.importorskip("cyclonedx.schema")
    bom = published.export(model="dx", version="1.0.0", fmt="cyclonedx")
    validator = validation.JsonStrictValidator(schema.SchemaVersion.V1_6)
    assert validator.validate_str(json.dumps(bom)) is None
    with pytest.raises(InvalidInputError):
        published.export(model="dx", version="1.0.0", fmt="spdx")


def test_in_toto_statements_cover_baseline_and_amendments(published: Registry) -> None:
    doc = parse_document("evaluations: [{name: accuracy, value: 0.8, supersedes: eval-1}]")
    published.amend_profile(model="dx", version="1.0.0", document=doc, reason="re-run")
    envelopes = published.export(model="dx", version="1.0.0", fmt="in-toto", sign=True)
    assert isinstance(envelopes, list) and len(envelopes) == 2
    public = published._key.public_key()
    baseline, amendment = (dsse_verify(e, public) for e in envelopes)
    manifest = published.get_version(model="dx", version="1.0.0").manifest_digest
    assert baseline["subject"][0]["digest"]["sha256"] == manifest.removeprefix("sha256:")
    assert baseline["predicate"]["kind"] == "baseline"
    assert amendment["predicate"]["kind"] == "amendment"
