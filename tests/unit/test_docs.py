"""The documents hold together: the README stays a short front door that opens with the two commands
a fresh machine needs, and every relative link of README.md, ARCHITECTURE.md and docs/*.md reaches
a file that exists and, where it names an anchor, a heading of that file (GitHub's anchor rules)."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]

OPENING_COMMANDS = [
    "make demo    # the main job: 24 service logs analysed in parallel by subagents on local workers",
    "make test    # lint, types, unit and integration tests (they start a Redis of their own)",
]
README_MAX_LINES = 170

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks: headings and links there are not the document's."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text lowercased, every character but letters,
    digits, spaces, '-' and '_' dropped, and each space made a '-'."""
    text = INLINE_CODE.sub(lambda found: found.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text)
    text = "".join(char for char in text.lower() if char.isalnum() or char in " -_")
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a Markdown file's headings, a repeated one numbered as GitHub does (-1, -2)."""
    seen: Counter[str] = Counter()
    found = set()
    for line in _prose_lines(path.read_text()):
        heading = HEADING.match(line)
        if not heading:
            continue
        anchor = github_anchor(heading.group(2))
        found.add(anchor if not seen[anchor] else f"{anchor}-{seen[anchor]}")
        seen[anchor] += 1
    return frozenset(found)


def relative_links(path: Path) -> list[str]:
    """Every link and image target in the prose of a document that names no scheme (http:, mailto:)."""
    targets = []
    for line in _prose_lines(path.read_text()):
        for found in LINK.finditer(INLINE_CODE.sub("", line)):
            target = found.group(1)
            if not SCHEME.match(target):
                targets.append(target)
    return targets


def broken(path: Path, target: str) -> str | None:
    """Why a link of the document at `path` leads nowhere, or None if it resolves."""
    file_part, _, anchor = target.partition("#")
    destination = (path.parent / file_part).resolve() if file_part else path
    shown = destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination
    if not destination.exists():
        return f"{target}: no file {shown}"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"{target}: no heading with the anchor #{anchor} in {shown}"
    return None


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("The lifecycle of a delegation", "the-lifecycle-of-a-delegation"),
        (
            "Connected mode: an existing Redis, workers anywhere",
            "connected-mode-an-existing-redis-workers-anywhere",
        ),
        ("A nightly batch, bounded", "a-nightly-batch-bounded"),
        ("`bench.backends`: the shared filesystem", "benchbackends-the-shared-filesystem"),
        ("Fan-out: one model turn, N parallel `task` calls", "fan-out-one-model-turn-n-parallel-task-calls"),
        ("Where a delegation's CPU goes", "where-a-delegations-cpu-goes"),
        ("snake_case [and a link](x.md)", "snake_case-and-a-link"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n## Notes\n\n```bash\n# not a heading\n```\n\n## Notes\n")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('[one](a.md) `[two](b.md)`\n\n```\n[three](c.md)\n```\n![four](d.png "title")\n')
    assert relative_links(page) == ["a.md", "d.png"]


def test_the_readme_opens_with_the_two_commands_of_a_fresh_machine() -> None:
    """The first code block of the README is the whole of getting started: the main job on the
    embedded default, and the tests; nothing else comes before it but the title."""
    lines = README.read_text().splitlines()
    assert lines[0] == "# taskforce"
    start = next(number for number, line in enumerate(lines) if FENCE.match(line))
    assert all(not line.strip() for line in lines[1:start])
    assert lines[start] == "```bash"
    end = next(number for number in range(start + 1, len(lines)) if FENCE.match(lines[number]))
    assert lines[start + 1 : end] == OPENING_COMMANDS


def test_the_readme_is_a_front_door() -> None:
    length = len(README.read_text().splitlines())
    assert length <= README_MAX_LINES, f"README.md has {length} lines; reference material goes to docs/"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    problems = [problem for target in relative_links(document) if (problem := broken(document, target))]
    assert not problems, "\n".join(problems)
