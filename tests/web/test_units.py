"""The web UI's pure parts, without a browser: session cookies, DOT escaping, ordering."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from dataclasses import replace

import pytest
import semver

from _builders import version
from charter.domain.entities import DatasetRef
from charter.web._deps import safe_next
from charter.web._graph import _quote, lineage_dot
from charter.web._reads import semver_key
from charter.web._session import Session, SessionCodec


def test_a_session_round_trips_and_anything_else_is_no_session() -> None:
    codec = SessionCodec(b"secret")
    session = Session.fresh(token="chr_0123456789abcdef_" + "s" * 43).with_flash("ok", "hi")
    value = codec.dumps(session)
    assert codec.loads(value) == session
    assert "s" * 43 not in value  # encrypted, not just signed
    assert SessionCodec(b"another secret").loads(value) is None
    tampered = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    for bad in (tampered, "", None, "not base64 !", value[:-4]):
        assert codec.loads(bad) is None


def test_sessions_expire() -> None:
    value = SessionCodec(b"secret").dumps(Session.fresh())
    assert SessionCodec(b"secret", max_age_s=-1).loads(value) is None


def test_csrf_tokens_compare_exactly() -> None:
    session = Session.fresh()
    assert session.csrf_matches(session.csrf)
    for wrong in (None, "", session.csrf[:-1], session.csrf + "x", Session.fresh().csrf):
        assert not session.csrf_matches(wrong)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/models/x", "/ui/models/x"),
        ("/ui/ledger?page=2", "/ui/ledger?page=2"),
        ("//evil.example/ui/", "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("/ui/\\\\evil.example", "/ui/"),
        ("/api/v1/models", "/ui/"),
        ("", "/ui/"),
    ],
)
def test_login_redirects_only_to_ui_paths(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_dot_strings_cannot_break_out() -> None:
    assert _quote('a"b') == '"a\\"b"'
    assert _quote("a\\Nb") == '"a\\\\Nb"'  # no \N (node name) or \G escapes reach Graphviz
    assert _quote("a\nb];x") == '"a b];x"'


def test_hostile_names_lay_out_as_text() -> None:
    if shutil.which("dot") is None:
        pytest.fail("the web UI needs Graphviz: apt-get install -y graphviz")
    evil = '"]; x [URL="javascript:alert(1)"]; y [label="'
    hostile = DatasetRef(name=evil, role="train", uri="file:///data.csv", digest=None)
    v = replace(version("m", "1.0.0"), datasets=(hostile,))
    dot = lineage_dot("m", [v], stages={}, at_risk=set())
    done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=True)
    svg = done.stdout.decode()
    assert re.findall(r'href="([^"]*)"', svg) == ["/ui/models/m/versions/1.0.0"]  # only the version
    assert "x [URL=&quot;javascript:alert(1)&quot;]" in svg  # shown as text


def test_semver_key_orders_as_semver_does() -> None:
    versions = ["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "2.0.0", "1.10.0", "1.2.0",
                "0.9.9+build.5", "1.0.0-1", "1.0.0-a1"]  # fmt: skip
    rng = random.Random(6)
    for _ in range(50):
        rng.shuffle(versions)
        assert sorted(versions, key=semver_key) == sorted(versions, key=semver.Version.parse)
