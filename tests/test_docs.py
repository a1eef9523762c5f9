"""The README and ``docs/`` stay true: links resolve, commands name modules and files that exist.

Every ``python -m MODULE`` of our packages must be runnable (a module, or a package with a
``__main__``), every script path and ``make`` target must exist, every relative link must reach
a file (and its ``#anchor`` a heading there). The slow test runs ``--help`` of each module.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OURS = ("fsve", "energy", "export", "apps")
MAX_README_LINES = 250  # a front page (issue 14)


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings in code
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    """Relative link targets of ``[text](target)``; web links left out."""
    found = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    return [t for t in found if not re.match(r"[a-z]+:", t)]


def modules(text: str) -> set[str]:
    """Our modules run as ``python -m MODULE`` (or ``torchrun ... -m MODULE``)."""
    return {m for m in re.findall(r"-m ([A-Za-z_][\w.]*)", text) if m.split(".")[0] in OURS}


def runnable(module: str) -> bool:
    """A module file, or a package with a ``__main__`` (no module code is run)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return True
    return importlib.util.find_spec(f"{module}.__main__") is not None


def all_text() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= MAX_README_LINES
    for page in ("data", "models", "training", "energy", "export", "loihi", "reproducing",
                 "benchmarks"):  # fmt: skip
        assert f"(docs/{page}.md)" in "\n".join(lines), page


def test_slug_and_scanners():
    """The helpers find what they should (so an empty scan cannot pass the tests below)."""
    assert slug("The paper's tables: `make reports`") == "the-papers-tables-make-reports"
    assert slug("Retrieval (Table 5): the captions") == "retrieval-table-5-the-captions"
    assert modules("torchrun -m fsve.train x; python -m torch.utils; python -m apps.demo") == {
        "fsve.train",
        "apps.demo",
    }
    assert links(ROOT / "README.md") and "docs/data.md" in links(ROOT / "README.md")
    assert not runnable("fsve.no_such_module") and not runnable("fsve.models")
    assert runnable("apps.demo") and runnable("apps.reports")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page: Path):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert broken == []


def test_commands_name_modules_that_run():
    found = modules(all_text())
    assert {"apps.demo", "apps.reports", "energy.profile", "export.nir", "fsve.train"} <= found
    assert sorted(m for m in found if not runnable(m)) == []


def test_scripts_and_make_targets_exist():
    text = all_text()
    scripts = set(re.findall(r"\b((?:examples|benchmarks)/\w+\.py)\b", text))
    assert scripts and sorted(s for s in scripts if not (ROOT / s).is_file()) == []
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    named = set(re.findall(r"(?:`|^)make ([\w-]+)", text, flags=re.M))
    assert {"demo", "test", "reports"} <= named
    assert sorted(named - targets) == []


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(modules(all_text())))
def test_module_help_runs(module: str):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
