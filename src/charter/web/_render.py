"""Templates and the helpers they use: one Jinja2 environment, autoescaping everything.

URLs of pages are built here (and only here) from model and version names,
percent-encoded, so templates never concatenate user input into a path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2

from charter.cards._format import digest_prefix, human_size, number

__all__ = ["PREFIX", "Pager", "environment", "render", "urls"]

PREFIX = "/ui"
_TEMPLATES = Path(__file__).parent / "templates"


def _q(text: str) -> str:
    return quote(text, safe="")


class urls:  # a namespace of functions, used as ``urls.version(...)``
    """Paths of the web pages."""

    @staticmethod
    def home() -> str:
        """The models list."""
        return f"{PREFIX}/"

    @staticmethod
    def model(name: str) -> str:
        """A model's page."""
        return f"{PREFIX}/models/{_q(name)}"

    @staticmethod
    def lineage(name: str, focus: str | None = None) -> str:
        """A model's lineage graph (``focus``: a version to highlight)."""
        tail = f"?{urlencode({'focus': focus})}" if focus else ""
        return f"{PREFIX}/models/{_q(name)}/lineage{tail}"

    @staticmethod
    def history(name: str) -> str:
        """A model's stage history timeline."""
        return f"{PREFIX}/models/{_q(name)}/history"

    @staticmethod
    def version(name: str, version: str) -> str:
        """A version's page."""
        return f"{PREFIX}/models/{_q(name)}/versions/{_q(version)}"

    @staticmethod
    def ref(ref: str) -> str:
        """A version's page from ``name@version``."""
        name, _, number_ = ref.partition("@")
        return urls.version(name, number_)

    @staticmethod
    def ledger(page: int = 1) -> str:
        """The ledger browser."""
        return f"{PREFIX}/ledger" + (f"?page={page}" if page > 1 else "")

    @staticmethod
    def entry(seq: int) -> str:
        """One ledger entry with its proof."""
        return f"{PREFIX}/ledger/{int(seq)}"

    @staticmethod
    def subject(subject: str) -> str | None:
        """The page of a ledger entry's subject (``version:m@v``, ``model:m``…), if any."""
        kind, _, name = subject.partition(":")
        if kind == "version" and "@" in name:
            return urls.ref(name)
        if kind == "model":
            return urls.model(name)
        if kind == "stage" and "/" in name:
            return urls.history(name.partition("/")[0])
        return None


@dataclass(frozen=True)
class Pager:
    """Where a paginated list is: page ``page`` of ``per_page`` rows out of ``total``."""

    page: int
    per_page: int
    total: int
    base: str
    param: str = "page"

    @property
    def pages(self) -> int:
        """The number of pages (at least one)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """1-based position of the page's first row (0 when empty)."""
        return min(self.total, (self.page - 1) * self.per_page + 1)

    @property
    def last(self) -> int:
        """1-based position of the page's last row."""
        return min(self.total, self.page * self.per_page)

    def url(self, page: int) -> str:
        """The URL of another page of the same list."""
        sep = "&" if "?" in self.base else "?"
        return f"{self.base}{sep}{urlencode({self.param: page})}" if page > 1 else self.base


def _short(digest: object, length: int = 12) -> str:
    return digest_prefix(str(digest), length) if digest else ""


def _when(text: object) -> str:
    """``2026-03-03T12:00:00.123456Z`` -> ``2026-03-03 12:00:00Z`` (full value in a title)."""
    value = str(text or "")
    return value[:19].replace("T", " ") + ("Z" if value.endswith("Z") else "") if value else ""


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@cache
def environment() -> jinja2.Environment:
    """The page templates' environment (autoescape on for every template)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["urls"] = urls
    env.globals["static"] = lambda name: f"{PREFIX}/static/{_q(name)}"
    env.filters["short"] = _short
    env.filters["when"] = _when
    env.filters["size"] = human_size
    env.filters["num"] = number
    env.filters["pretty"] = _pretty
    return env


def render(template: str, values: dict[str, Any]) -> str:
    """Render ``template`` with ``values``."""
    return environment().get_template(template).render(**values)
