"""canonical_bytes' json.dumps fast path writes exactly what RFC 8785 writes.

Every property compares with ``rfc8785.dumps`` itself, so the reference is the
library the registry trusted before the fast path existed.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.canonical import canonical_bytes, canonical_digest
from charter.domain.entities import Event
from charter.domain.errors import InvalidInputError, UncanonicalValueError

SAFE = 2**53 - 1

# All of Unicode, lone surrogates included: they are not UTF-8 and must be
# refused exactly as the reference refuses them.
ANY_TEXT = st.text(
    st.one_of(st.characters(exclude_categories=[]), st.characters(categories=["Cs"])), max_size=12
)
BMP_OR_NOT = st.text(
    st.one_of(
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0x80, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
        st.characters(min_codepoint=0x10000),
        st.sampled_from(["\x00", "\x1f", '"', "\\", "\u2028", "\x7f", "\ue000", "\uffff"]),
    ),
    max_size=8,
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-SAFE, SAFE), BMP_OR_NOT, st.just(SAFE), st.just(-SAFE)
)


def json_like(scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> Any:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=20,
    )


def reference(value: Any) -> bytes | type[ValueError]:
    """rfc8785's bytes, or ValueError when it refuses the value."""
    try:
        return rfc8785.dumps(value)
    except (ValueError, TypeError):  # canonical_bytes turns both into ValueError
        return ValueError


def ours(value: Any) -> bytes | type[ValueError]:
    try:
        return canonical_bytes(value)
    except ValueError:
        return ValueError


@settings(max_examples=600, deadline=None)
@given(json_like(SCALARS, BMP_OR_NOT))
def test_plain_values_match_the_reference(value: Any) -> None:
    assert ours(value) == reference(value)


@settings(max_examples=300, deadline=None)
@given(json_like(st.one_of(SCALARS, ANY_TEXT), ANY_TEXT))
def test_any_unicode_including_surrogates_matches_or_fails_alike(value: Any) -> None:
    assert ours(value) == reference(value)


@settings(max_examples=300, deadline=None)
@given(json_like(st.one_of(SCALARS, st.floats(allow_nan=False, allow_infinity=False)), BMP_OR_NOT))
def test_values_with_floats_take_the_reference_path(value: Any) -> None:
    assert ours(value) == reference(value)


@pytest.mark.parametrize("bad", [2**53, -(2**53), 10**30, {"n": [1, 2**60]}])
def test_integers_beyond_2_53_are_refused_as_before(bad: Any) -> None:
    with pytest.raises(ValueError):
        rfc8785.dumps(bad)
    with pytest.raises(ValueError):
        canonical_bytes(bad)


@pytest.mark.parametrize("bad", [float("nan"), {1: "x"}, {"s": {1, 2}}, b"bytes", object()])
def test_what_json_cannot_carry_is_refused(bad: Any) -> None:
    # A user's bad value (NaN in a profile file) is bad input, not a crash.
    with pytest.raises(UncanonicalValueError, match="canonical JSON") as caught:
        canonical_bytes(bad)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, InvalidInputError)


def test_keys_outside_the_bmp_sort_by_utf16_not_code_points() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) in UTF-16: below U+E000 there, above it
    # as a code point. RFC 8785 orders by UTF-16; json.dumps by code point.
    value = {"\U0001f600": 1, "\ue000": 2}
    utf16_order = '{"\U0001f600":1,"\ue000":2}'.encode()
    assert json.dumps(value, sort_keys=True, ensure_ascii=False).startswith('{"\ue000"')
    assert canonical_bytes(value) == rfc8785.dumps(value) == utf16_order


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_subclasses_of_str_and_int_take_the_reference_path() -> None:
    value: Any = {"c": Colour.RED, "l": Level.HIGH, "t": True}
    assert canonical_bytes(value) == rfc8785.dumps(value) == b'{"c":"red","l":3,"t":true}'


def test_ledger_entries_never_reach_the_reference_serialiser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the fast path: the documents the registry hashes all the time."""

    def refuse(value: Any) -> bytes:
        raise AssertionError(f"slow path taken for {value!r}")

    record: dict[str, Any] = {
        "model": "credit-risk",
        "version": "2.4.0",
        "params": {"lr": "0.1"},
        "datasets": [{"name": "train.csv", "size": 12, "digest": None}],
        "file_count": 3,
        "ünïcode": '名前 \n\t"quoted"',
    }
    entry = Event("version.registered", "version:x@1.0.0", "alice", "t", {"record": record})
    expected = rfc8785.dumps(entry.entry(7))
    monkeypatch.setattr(rfc8785, "dumps", refuse)
    assert canonical_bytes(entry.entry(7)) == expected
    assert canonical_digest({"files": [{"path": "a", "digest": "d", "size": 1}]}).startswith(
        "sha256:"
    )
