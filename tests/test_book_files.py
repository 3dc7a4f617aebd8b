"""The book's files agree with each other: one repository URL (``_config.yml``) that every
chapter's install cell names, the CI comparison of executed with stored outputs
(``.ci/check_outputs.py``) that can fail, and ``make book``'s parallel execution
(``.ci/execute_book.py``), which must execute every chapter and report a failing one."""

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


def _ci_module(name: str):
    path = ROOT / ".ci" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_outputs_accepts_an_identical_copy_and_rejects_a_changed_output(tmp_path):
    check = _ci_module("check_outputs")
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


def test_make_book_executes_every_chapter_and_reads_them_from_the_cache():
    execute_book = _ci_module("execute_book")
    assert execute_book.chapters() == CHAPTERS  # the toc's notebooks, each numbered chapter
    config = (ROOT / "_config.yml").read_text()
    assert re.search(r"^\s+execute_notebooks:\s*cache\b", config, re.M)
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nbook:"):].split("\n\n")[0]
    # the cache is emptied (by execute_book.py) and filled before the build reads it
    assert recipe.index(".ci/execute_book.py") < recipe.index("jupyter-book build")


def test_execute_book_reports_a_failing_notebook(tmp_path):
    import nbformat

    execute_book = _ci_module("execute_book")
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for source, fails in (("x = 1 + 1", False), ("assert 1 == 2, 'boom'", True)):
        notebook = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
        notebook.cells = [nbformat.v4.new_code_cell(source)]
        path = tmp_path / "notebook.ipynb"
        nbformat.write(notebook, path)
        _, executed, seconds, traceback = execute_book.execute(path, 60)
        assert seconds > 0
        if fails:
            assert traceback is not None and "boom" in traceback
        else:
            assert traceback is None and executed.cells[0].execution_count == 1


def test_the_build_refuses_a_cache_filled_with_another_pgbook(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from sphinx.errors import ExtensionError

    guard = _ci_module("execute_book")._cache_guard()  # book/_ext/pgbook_cache.py
    assert guard.ROOT == ROOT and "pgbook" in guard.INPUTS
    assert guard.digest() == guard.digest()
    # a scratch repository: one package file, the book's cache and its stamp
    (tmp_path / "pgbook").mkdir()
    module = tmp_path / "pgbook" / "objectives.py"
    module.write_text("EPS = 0.2\n")
    cache = tmp_path / "_build" / ".jupyter_cache"
    cache.mkdir(parents=True)
    monkeypatch.setattr(guard, "ROOT", tmp_path)
    monkeypatch.setattr(guard, "INPUTS", ("pgbook",))
    monkeypatch.setattr(guard, "CACHE", cache)
    monkeypatch.setattr(guard, "STAMP", cache / "pgbook.sha256")

    def config(mode="cache", path=str(cache)):
        return SimpleNamespace(nb_execution_mode=mode, nb_execution_cache_path=path)

    with pytest.raises(ExtensionError, match="make book"):  # no stamp
        guard._check_cache(None, config())
    guard.STAMP.write_text(guard.digest() + "\n")
    guard._check_cache(None, config())  # the stamp of this package: accepted
    module.write_text("EPS = 0.3\n")  # pgbook edited after the chapters ran
    with pytest.raises(ExtensionError, match="make book"):
        guard._check_cache(None, config())
    guard._check_cache(None, config(mode="force"))  # executes afresh: nothing to guard
    guard._check_cache(None, config(path=str(tmp_path / "part")))  # make book-part's cache
