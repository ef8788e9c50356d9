"""Text normalisation shared by detectors and guards: folding, decoding, matching.

Models leak secrets in disguise when asked to (spaced out, upper-cased, in
leetspeak, base64, hex, reversed, ROT13), and toxic text hides behind masking
(``f*ck``) and stretching (``fuuuck``). These helpers turn such text into forms
that plain substring matching can judge.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterator

__all__ = [
    "alnum",
    "decoded_views",
    "fold",
    "term_pattern",
    "truncate",
]

# Leetspeak and look-alike characters mapped to the letters they stand for.
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
    }
)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"', "—": "-", "–": "-"})
# ``1`` reads as ``i`` in "b1tch" but as ``l`` in "7lf": when comparing secrets, fold both.
_CONFUSABLE = str.maketrans({"l": "i"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_HEX_RUN = re.compile(r"(?:(?:0x|\\x)?[0-9A-Fa-f]{2}[\s:,-]?){8,}")


def fold(text: str, *, leet: bool = True) -> str:
    """Return ``text`` NFKC-normalised, lower-cased, quotes straightened, leetspeak undone.

    Args:
        text: any text.
        leet: also map digits and symbols to the letters they imitate (``sh1t`` -> ``shlt``
            -> ``shit``; both sides of a comparison must be folded the same way).

    Returns:
        The folded text (same length or shorter).
    """
    text = unicodedata.normalize("NFKC", text).lower().translate(_QUOTES)
    return text.translate(_LEET) if leet else text


def alnum(text: str) -> str:
    """Return the ASCII letters and digits of ``fold(text)`` (``l`` read as ``i``).

    Spacing and punctuation go, so ``5 c-2.E`` and ``5c2e`` compare equal.
    """
    return _NON_ALNUM.sub("", fold(text).translate(_CONFUSABLE))


def _b64_decodings(text: str) -> Iterator[str]:
    tokens = _B64_TOKEN.findall(text)
    # Line-wrapped base64 splits one payload into several tokens: try them joined too.
    candidates = [*tokens, "".join(tokens)] if len(tokens) > 1 else tokens
    for token in candidates:
        raw = token.rstrip("=")
        padded = raw + "=" * (-len(raw) % 4)
        for decoder in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                data = decoder(padded)
            except (binascii.Error, ValueError):
                continue
            decoded = data.decode("utf-8", errors="ignore")
            if decoded:
                yield decoded


def _hex_decodings(text: str) -> Iterator[str]:
    for match in _HEX_RUN.finditer(text):
        digits = re.sub(r"0x|\\x|[\s:,-]", "", match.group(0))
        if len(digits) % 2:
            digits = digits[:-1]
        try:
            yield bytes.fromhex(digits).decode("utf-8", errors="ignore")
        except ValueError:
            continue


def decoded_views(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(how, view)`` pairs: the text itself and what it decodes to.

    Views: ``plain``, ``reversed``, ``rot13``, ``base64`` (each base64-looking token,
    and all of them joined), ``hex`` (runs of hex byte pairs, ``0x``/``\\x`` prefixes
    and separators allowed).
    """
    yield "plain", text
    yield "reversed", text[::-1]
    yield "rot13", codecs.encode(text, "rot13")
    for decoded in _b64_decodings(text):
        yield "base64", decoded
    for decoded in _hex_decodings(text):
        yield "hex", decoded


def term_pattern(term: str) -> re.Pattern[str]:
    """Compile a case-insensitive pattern matching ``term`` as a whole word or phrase."""
    escaped = re.escape(term.strip())
    left = r"(?<!\w)" if term[:1].isalnum() or term[:1] == "_" else ""
    right = r"(?!\w)" if term[-1:].isalnum() or term[-1:] == "_" else ""
    return re.compile(f"{left}{escaped}{right}", re.IGNORECASE)


def truncate(text: str, limit: int, marker: str = " …[truncated]") -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker
