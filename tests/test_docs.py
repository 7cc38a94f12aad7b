"""The documentation's references hold: what the code cites exists, and the pages' links land.

Docstrings say where the rule they implement is written ("docs/contract.md", "see
docs/sip-stack.md"); a page that is renamed or a heading that is reworded would leave those
pointers dangling without any test noticing, as happened to the contract file itself. These
tests read files only: no socket, no reactor.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: `docs/<page>.md`, optionally with `#anchor`, as code and tests cite it.
CODE_REFERENCE = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)(#[\w-]+)?")
#: a Markdown link `[text](target)` or `[text](target#anchor)` / `[text](#anchor)`.
LINK = re.compile(r"\]\(([^)\s#]*)(#[^)\s]*)?\)")
#: `contract.md` not preceded by `docs/` or a link's `(`: a citation no reader can follow.
BARE_CONTRACT = re.compile(r"(?<![/(\w])contract\.md")
SOURCE_SUFFIXES = (".py", ".js", ".html", ".css")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped (word
    characters, hyphens and spaces kept), spaces as hyphens, "-1", "-2" ... for repeats."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6} (.*)", line)
        if fenced or heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def sources() -> list[Path]:
    files = [p for folder in ("wcsgw", "tests", "plugins") for p in (ROOT / folder).rglob("*")
             if p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts]
    return sorted(files)


class CodeReferences(SynchronousTestCase):
    def test_cited_pages_exist(self) -> None:
        missing = []
        for path in sources():
            text = path.read_text(encoding="utf-8")
            for match in CODE_REFERENCE.finditer(text):
                page = DOCS / match.group(1)
                if not page.is_file():
                    missing.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
                elif match.group(2) and match.group(2)[1:] not in anchors(page):
                    missing.append(f"{path.relative_to(ROOT)}: {match.group(0)} (no such heading)")
        self.assertEqual(missing, [])

    def test_contract_is_cited_by_its_path(self) -> None:
        bare = [f"{path.relative_to(ROOT)}:{n}"
                for path in sources() if path.parts[len(ROOT.parts)] == "wcsgw"
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if BARE_CONTRACT.search(line)]
        self.assertEqual(bare, [])

    def test_the_contract_page_exists(self) -> None:
        self.assertTrue((DOCS / "contract.md").is_file())


class PageLinks(SynchronousTestCase):
    def test_links_land(self) -> None:
        broken = []
        for page in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
            for match in LINK.finditer(page.read_text(encoding="utf-8")):
                target, anchor = match.group(1), match.group(2)
                if re.match(r"[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto: ...: not ours to check offline
                resolved = page if not target else (page.parent / target)
                where = f"{page.relative_to(ROOT)}: ({target}{anchor or ''})"
                if not resolved.exists():
                    broken.append(where)
                elif anchor and resolved.suffix == ".md" and anchor[1:] not in anchors(resolved):
                    broken.append(f"{where} (no such heading)")
        self.assertEqual(broken, [])


#: a dotted trial name as the pages cite tests (`tests.test_x.Class.test_y`).
TEST_NAME = re.compile(r"(?<![\w/])tests\.test_\w+(?:\.\w+)*")


class CitedTestsTests(SynchronousTestCase):
    """docs/security.md names, for every attack, the test that makes it fail; a renamed or
    deleted test would leave a defence that the page says is tested and is not."""

    def test_cited_tests_exist(self) -> None:
        missing = []
        for page in sorted(DOCS.glob("*.md")):
            for name in sorted(set(TEST_NAME.findall(page.read_text(encoding="utf-8")))):
                parts = name.split(".")
                target: object = importlib.import_module(".".join(parts[:2]))
                for part in parts[2:]:
                    if not hasattr(target, part):
                        missing.append(f"{page.name}: {name}")
                        break
                    target = getattr(target, part)
        self.assertEqual(missing, [])
