"""The README and docs/ pages link to files that exist and to headings that exist (GitHub's anchor rule)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's heading id: lower case, every character but letters, digits, spaces, '-' and '_' dropped, spaces to
    '-' (markdown emphasis and code marks go with the punctuation)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())   # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not re.match(r"#{1,6} ", line):
            continue
        slug = github_anchor(line.lstrip("#"))
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")   # a repeated heading gets -1, -2, ...
        seen[slug] = n + 1
    return out


def test_github_anchor_matches_known_headings():
    assert github_anchor("The validity test (Eq. 7): its null, calibration and power") == \
        "the-validity-test-eq-7-its-null-calibration-and-power"
    assert github_anchor("Can the curve's penalty be chosen from observables? (2026-12-03)") == \
        "can-the-curves-penalty-be-chosen-from-observables-2026-12-03"
    assert github_anchor("`causal:` keys") == "causal-keys"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page: Path):
    broken = []
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)   # code blocks hold no links
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):   # http(s), mailto: not checked here
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.relative_to(REPO)}")
    assert not broken, "\n".join(broken)
