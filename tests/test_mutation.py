"""The mutation suite's list stays applicable: every mutant's snippets occur exactly once in the
tree as it is now, so an edit of pgbook that stales a mutant fails here, fast, and not an hour
into ``make mutants``. (The suite itself runs with ``make mutants``; .ci/run runs a subset.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _package():
    """The repository's mutation/ package (not on sys.path when pytest runs from .venv/bin)."""
    if "mutation" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "mutation", ROOT / "mutation" / "__init__.py",
            submodule_search_locations=[str(ROOT / "mutation")])
        sys.modules["mutation"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["mutation"])
    return importlib.import_module("mutation.mutants"), importlib.import_module("mutation.reach")


M, REACH = _package()


@pytest.mark.parametrize("mutant", M.MUTANTS, ids=lambda m: m.name)
def test_mutant_applies_exactly_once_and_compiles(mutant):
    texts = M.mutated_sources(mutant, lambda f: (ROOT / f).read_text())
    for rel, text in texts.items():
        compile(text, rel, "exec")
    for chapter in mutant.chapters:
        assert (ROOT / chapter).is_file(), f"{mutant.name}: no chapter {chapter}"
    # --reach can plant its tripwire before every edited statement
    for rel, text in REACH.tripwired_sources(mutant, lambda f: (ROOT / f).read_text()).items():
        compile(text, rel, "exec")
        assert REACH.wire(mutant.name) in text


def test_the_tripwire_runs():
    eval(REACH.wire("any-mutant"))  # records nothing outside a run of the suite, raises nothing


def test_enough_mutants_and_controls():
    real = [m for m in M.MUTANTS if not m.control]
    assert len(real) >= 30
    assert any(m.control for m in M.MUTANTS)
    assert set(M.CI_SUBSET) <= set(M.BY_NAME)
    assert any(M.BY_NAME[n].control for n in M.CI_SUBSET)
    assert any(not M.BY_NAME[n].control for n in M.CI_SUBSET)


def test_a_stale_snippet_is_reported():
    edit = M.Edit("pgbook/returns.py", "this text is not in returns.py", "x")
    stale = M.Mutant("stale", "a snippet that does not occur", (edit,))
    with pytest.raises(M.StaleMutant, match="occurs 0 times"):
        M.mutated_sources(stale, lambda f: (ROOT / f).read_text())
    twice = M.Mutant("twice", "a snippet that occurs twice", (M.Edit("f", "a", "b"),))
    with pytest.raises(M.StaleMutant, match="occurs 2 times"):
        M.mutated_sources(twice, lambda f: "a a")
