"""The book's files agree with each other: one repository URL (``_config.yml``) that every
chapter's install cell names, and the CI comparison of executed with stored outputs
(``.ci/check_outputs.py``) that can fail."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def repository() -> tuple[str, str]:
    config = (ROOT / "_config.yml").read_text()
    block = config[config.index("\nrepository:"):]
    url = re.search(r"^\s+url:\s*(\S+)", block, re.M).group(1)
    branch = re.search(r"^\s+branch:\s*(\S+)", block, re.M).group(1)
    return url, branch


def test_the_repository_url_is_set_once():
    config = (ROOT / "_config.yml").read_text()
    url, _ = repository()
    assert config.count(url) == 1, "the repository URL must appear once in _config.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_install_cell_names_the_repository(chapter):
    """A chapter opened outside the repository (Colab, a download) installs pgbook from the
    book's repository first: from git, never `pip install pgbook` (an unrelated package)."""
    url, branch = repository()
    cells = [c for c in json.loads(chapter.read_text())["cells"] if c["cell_type"] == "code"]
    first = cells[0]
    source = "".join(first["source"])
    assert "remove-cell" in first["metadata"].get("tags", []), "the install cell is not shown"
    assert 'find_spec("pgbook") is None' in source
    # an extra (the appendix's "pgbook[libraries]") must be one that pyproject.toml defines
    install = re.search(r'%pip install --quiet "pgbook(?:\[(\w+)\])? @ git\+(\S+)@(\S+)"', source)
    assert install and install.group(2, 3) == (url, branch), "install from the repository"
    extra = install.group(1)
    assert extra is None or f"\n{extra} = [" in (ROOT / "pyproject.toml").read_text(), extra
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"pip install (--\S+ )*pgbook\b", code)


def _checker():
    path = ROOT / ".ci" / "check_outputs.py"
    spec = importlib.util.spec_from_file_location("check_outputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_outputs_accepts_an_identical_copy_and_rejects_a_changed_output(tmp_path):
    check = _checker()
    chapter = CHAPTERS[0]
    notebook = json.loads(chapter.read_text())
    same = tmp_path / "same.ipynb"
    same.write_text(json.dumps(notebook))
    assert check.compare(chapter, same) == []
    checked = [i for i, c in enumerate(notebook["cells"])
               if check.TAG in c["metadata"].get("tags", []) and c.get("outputs")]
    assert checked, "the chapter has checked cells with outputs"
    changed = copy.deepcopy(notebook)
    output = changed["cells"][checked[0]]["outputs"][0]
    output["text"] = ["✗ something else\n"]
    other = tmp_path / "other.ipynb"
    other.write_text(json.dumps(changed))
    problems = check.compare(chapter, other)
    assert len(problems) == 1 and "output differs" in problems[0]
    failed = copy.deepcopy(notebook)
    failed["cells"][0].setdefault("outputs", []).append(
        {"output_type": "error", "ename": "AssertionError", "evalue": "✗", "traceback": []})
    errored = tmp_path / "errored.ipynb"
    errored.write_text(json.dumps(failed))
    assert any("AssertionError" in p for p in check.compare(chapter, errored))
    assert "not executed" in check.compare(chapter, tmp_path / "missing.ipynb")[0]
