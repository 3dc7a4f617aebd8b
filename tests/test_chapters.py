"""The chapters call the package; they do not copy it. No function or class is defined in two
chapters, or in a chapter and in pgbook (module-level functions and classes, and methods), so a
helper two chapters need has one home (``duplicates`` does not read notebooks; this does)."""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def chapter_definitions(path: Path) -> set[str]:
    """Names of the functions and classes a chapter's code cells define (at any depth)."""
    names = set()
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # an IPython magic (%pip, !ls) becomes `pass`, indentation kept, so blocks stay valid
        source = "\n".join(l[:len(l) - len(l.lstrip())] + "pass"
                           if l.lstrip().startswith(("%", "!")) else l
                           for l in source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
    return names


def package_definitions() -> dict[str, list[str]]:
    """Every function, class and method name defined in pgbook, with where."""
    where = defaultdict(list)
    for path in sorted((ROOT / "pgbook").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not node.name.startswith("__"):
                    where[node.name].append(module)
    return where


def collisions(chapters: dict[str, set[str]], package: dict[str, list[str]]) -> list[str]:
    by_name = defaultdict(list)
    for chapter, names in chapters.items():
        for name in names:
            by_name[name].append(chapter)
    found = []
    for name, where in sorted(by_name.items()):
        if len(where) > 1:
            found.append(f"{name} is defined in the chapters {', '.join(where)}")
        if name in package:
            found.append(f"{name} is defined in {', '.join(where)} and in "
                         f"{', '.join(sorted(set(package[name])))}")
    return found


def test_chapters_were_found():
    assert len(CHAPTERS) >= 12


def test_no_function_is_defined_twice_across_chapters_and_package():
    chapters = {p.stem: chapter_definitions(p) for p in CHAPTERS}
    found = collisions(chapters, package_definitions())
    assert not found, "one home for every helper:\n" + "\n".join(found)


def test_the_check_sees_a_copy():
    chapters = {"04": {"helper", "own"}, "05": {"helper"}, "07": {"ppo_clip"}}
    found = collisions(chapters, {"ppo_clip": ["pgbook.objectives"]})
    assert found == ["helper is defined in the chapters 04, 05",
                     "ppo_clip is defined in 07 and in pgbook.objectives"]
