"""Every link a newcomer follows in the README and the docs leads somewhere (the walk of
2026-12-06, wip/newcomer48): the README linked the design brief and the house style as
``../shared/...``, outside the repository, so a clone showed two dead links; a page sent its
reader to a section of bench/README.md that had moved to bench/HISTORY.md.

Checked: each Markdown link with a relative target resolves to a file inside the repository, and
its ``#anchor``, when the target is a Markdown page, to one of its headings (GitHub's slugs); each
page named in the text (``docs/api.md``) exists; each section named after a page in the docs'
own way (``docs/api.md, "Cached pages"``) is a heading, a bold lead or a paragraph's opening
words on that page."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("bench/*.md")])

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
NAMED_PAGE = re.compile(r"(?<![\w/.-])((?:docs|bench)/[\w.-]+\.md)\b")
NAMED_SECTION = re.compile(r"(?<![\w/.-])((?:docs|bench)/[\w.-]+\.md|README\.md)\)?,\s*\"([^\"]+)\"")


def _prose(path: Path) -> str:
    """The page without its fenced code blocks (a link inside a code sample is an example)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text())


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without Markdown, lower-cased, punctuation
    other than ``-`` and ``_`` dropped, each space a ``-``."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*_]{2}([^*_]+)[*_]{2}", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", _prose(path), re.M):
        slug = github_slug(match.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    out |= set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text()))
    return frozenset(out)


@cache
def sections(path: Path) -> str:
    """Where a named section can start: headings, bold leads and paragraphs' first lines, one per
    line, whitespace folded."""
    text = _prose(path)
    starts = re.findall(r"^#{1,6}\s+(.*)$", text, re.M)
    starts += [re.sub(r"\s+", " ", b) for b in re.findall(r"\*\*(.+?)\*\*", text, re.S)]
    starts += [p.strip().splitlines()[0] for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n".join(s.lower() for s in starts)


def _label(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_label)
def test_every_relative_link_resolves_inside_the_repository(page):
    text = _prose(page)
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            continue  # http:, https:, mailto: ...: not ours to check offline
        where = f"{_label(page)}:{_line(text, match.start())}: ({target})"
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{where} leaves the repository")
        elif not resolved.exists():
            broken.append(f"{where} names no file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{where}: {_label(resolved)} has no heading with the anchor #{anchor}")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_label)
def test_every_page_named_in_the_text_exists(page):
    text = _prose(page)
    missing = [
        f"{_label(page)}:{_line(text, m.start())}: {m.group(1)}"
        for m in NAMED_PAGE.finditer(text)
        if not (ROOT / m.group(1)).exists()
    ]
    assert not missing, "pages named that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("page", PAGES, ids=_label)
def test_every_section_named_after_a_page_is_on_that_page(page):
    text = page.read_text()
    missing = []
    for match in NAMED_SECTION.finditer(text):
        target = ROOT / match.group(1)
        title = re.sub(r"\s+", " ", match.group(2)).strip().lower()
        if target.exists() and title not in sections(target):
            missing.append(f'{_label(page)}:{_line(text, match.start())}: {match.group(1)}, "{match.group(2)}"')
    assert not missing, "sections named that the page does not have:\n" + "\n".join(missing)


def test_the_slugs_are_githubs():
    assert github_slug("Embedded pipeline replay (`bench/pipeline_replay.py`, issue 12)") == (
        "embedded-pipeline-replay-benchpipeline_replaypy-issue-12"
    )
    assert github_slug("Which books were seen") == "which-books-were-seen"
