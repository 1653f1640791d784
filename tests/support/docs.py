"""The tested code blocks of ``docs/`` (``<!-- test... -->`` markers; the rules are in
``tests/docs/test_examples.py``), for the docs tests."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROOT = DOCS.parent

_MARKER = re.compile(r"^\s*<!--\s*test(?::\s*(?P<flags>[\w\- ]+))?\s*-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    flags: frozenset[str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path, docs: Path = DOCS) -> list[Block]:
    """The fenced blocks of the page ``path``, named relative to ``docs``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: frozenset[str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        if marker:
            pending = frozenset((marker.group("flags") or "").split())
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            indent, ticks = fence.group("indent"), fence.group("fence")
            body: list[str] = []
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != ticks:
                body.append(lines[i][len(indent) :] if lines[i].strip() else "")
                i += 1
            flags = pending if pending is not None else frozenset({"<unmarked>"})
            blocks.append(
                Block(
                    str(path.relative_to(docs)),
                    start,
                    fence.group("lang"),
                    textwrap.dedent("\n".join(body)),
                    flags,
                )
            )
            pending = None
        elif line.strip():
            pending = None if not line.lstrip().startswith("===") else pending
        i += 1
    return blocks


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


ALL_BLOCKS = [block for page in doc_pages() for block in blocks_of(page)]
