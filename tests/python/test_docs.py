"""The repository documents itself: no tracked file points outside the checkout (the docs
live in docs/), and every relative markdown link resolves to a tracked file (and, with a
#fragment, to a heading of that file)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# References to places outside the repository: the workspace's shared folder (where the
# project's private notes live) and absolute paths of a developer's machine.
OUTSIDE = re.compile(
    r"\.\./shared\b|\bshared/(?:spec|hooks|STYLE\.md)|ALGORITHMS\.md|(?<![\w.])/work/"
)

_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    """The file's text, or None for a binary (or missing: deleted, not yet staged) file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _markdown_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += [p for p in _tracked() if p.suffix == ".md"]
    return sorted({p for p in files if p.exists()})


def _outside_code(text: str):
    """(line number, line) of a markdown text, without fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is None:
            yield number, line


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for _, line in _outside_code(path.read_text()):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_no_tracked_file_refers_outside_the_repository():
    this = Path(__file__).resolve()
    hits = []
    for path in _tracked():
        if path.resolve() == this:
            continue
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "references outside the repository (link docs/ instead):\n" + "\n".join(hits)


def test_the_outside_pattern_catches_what_it_should():
    for bad in (
        "see ../shared/spec/ALGORITHMS.md",
        "See shared/spec/ALGORITHMS.md sections 2-4.",
        "[spec](../shared/spec/ALGORITHMS.md)",
        "open /work/main/README.md",
    ):
        assert OUTSIDE.search(bad), bad
    for fine in ("shared memory per block", "shared atomics", "docs/algorithms.md", "rework/"):
        assert not OUTSIDE.search(fine), fine


def test_relative_markdown_links_resolve():
    assert (ROOT / "docs" / "algorithms.md").exists()
    broken = []
    for md in _markdown_files():
        for number, line in _outside_code(md.read_text()):
            for target in _LINK.findall(line):
                if _SCHEME.match(target):
                    continue  # https:, mailto: ...
                where = f"{md.relative_to(ROOT)}:{number}: {target}"
                file_part, _, fragment = target.partition("#")
                dest = (md.parent / file_part).resolve() if file_part else md.resolve()
                if not dest.is_relative_to(ROOT):
                    broken.append(f"{where} (outside the repository)")
                elif not dest.exists():
                    broken.append(f"{where} (no such file)")
                elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
                    broken.append(f"{where} (no heading #{fragment})")
    assert not broken, "broken markdown links:\n" + "\n".join(broken)


def test_readme_links_the_algorithms_page():
    assert "](docs/algorithms.md)" in (ROOT / "README.md").read_text()
