from __future__ import annotations

import pytest
import semver

from charter.domain.errors import InvalidInputError
from charter.domain.versioning import (
    ChangeKind,
    Fingerprints,
    actual_bump,
    check_bump,
    parse_version,
    required_bump,
    validate_name,
)


@pytest.mark.parametrize("text", ["1.0.0", "2.4.0-rc.1", "1.0.0+build.7", "0.0.1-alpha+x"])
def test_valid_versions_parse(text: str) -> None:
    assert str(parse_version(text)) == text


@pytest.mark.parametrize(
    "text", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "", "1.2.3.4", "latest", "1.0.0-" + "a" * 123]
)
def test_invalid_versions_name_the_rule(text: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_version(text)
    assert "MAJOR.MINOR.PATCH" in err.value.message
    assert err.value.details["field"] == "version"


@pytest.mark.parametrize("name", ["a", "credit-risk", "m2", "x" * 64])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "Credit", "-a", "a-", "a_b", "a/b", "../x", "x" * 65, "a b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_name(name)


def test_required_bump_follows_the_most_significant_change() -> None:
    assert required_bump([]) is ChangeKind.PATCH
    assert required_bump(["config"]) is ChangeKind.PATCH
    assert required_bump(["data", "config"]) is ChangeKind.MINOR
    assert required_bump(["architecture"]) is ChangeKind.MAJOR


def test_actual_bump_reads_the_numbers() -> None:
    v = semver.Version.parse
    assert actual_bump(v("1.2.3"), v("2.0.0")) is ChangeKind.MAJOR
    assert actual_bump(v("1.2.3"), v("1.3.0")) is ChangeKind.MINOR
    assert actual_bump(v("1.2.3"), v("1.2.4")) is ChangeKind.PATCH
    assert actual_bump(v("2.0.0-rc.1"), v("2.0.0")) is ChangeKind.PATCH
    assert actual_bump(v("1.2.3"), v("1.2.3")) is None
    assert actual_bump(v("1.2.3"), v("1.2.2")) is None


def test_check_bump_refuses_a_patch_for_new_data() -> None:
    parent = Fingerprints("arch", "data-1", "cfg")
    child = Fingerprints("arch", "data-2", "cfg")
    check = check_bump(declared=ChangeKind.PATCH, fingerprints=child, parent_fingerprints=parent)
    assert not check.ok
    assert check.required is ChangeKind.MINOR
    assert check.changed == ("data",)
    ok = check_bump(declared=ChangeKind.MINOR, fingerprints=child, parent_fingerprints=parent)
    assert ok.ok


def test_change_kind_parse_rejects_unknown() -> None:
    with pytest.raises(InvalidInputError) as err:
        ChangeKind.parse("huge")
    assert err.value.details["valid"] == ["patch", "minor", "major"]
