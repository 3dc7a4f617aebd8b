"""The package's shape, kept by tests: imports go down one stack, no cycles, no private names
across modules, no trainer imports another, importing a trainer loads no SymPy, and no module or
function grows past what a reader takes in at one sitting."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pgbook"

#: The stack, bottom up: a module may import only modules of a strictly lower rank (and, inside a
#: subpackage such as pgbook.table, its siblings, as long as there is no cycle). ``_validate``
#: is the package's shared argument checking, private to the package as a whole.
RANKS = {
    "_validate": 0, "__init__": 0,
    "symbolic": 1,
    "piecewise": 2,  # the region-by-region prover, on top of symbolic's checker
    "mdp_exact": 2,  # exact rationals and the SymPy twins TabularMDP inherits
    "mdp": 3,
    "checks": 4, "returns": 4,
    "objectives": 5, "kl_estimators": 5,
    "grpo_objectives": 6,
    "answer_model": 7,  # exact expectations of the grpo_objectives' steps
    "kl_table": 6,  # the SymPy proof of the KL-estimator table, on kl_estimators and symbolic
    "nets": 7, "rollout": 7, "tasks": 7, "trust_region": 7, "history": 7,
    "conformance": 7,  # readers' implementations against returns, objectives, grpo_objectives
    "replay": 8,  # stores rollout batches
    "kl_sequences": 8,  # the sequence KL against per-token penalties, on tasks.TinyLM
    "stored_runs": 8,  # reads and writes Histories
    "plot": 9,  # learning curves read a History
    "algos.run": 10,
    "algos": 11,  # every trainer, pgbook.algos.<name>
    "table": 12,  # the gradient table, every module of pgbook.table
    "libraries": 12,  # SB3, sb3-contrib and TRL called on the book's inputs (the appendix)
    "chapter": 13,  # the first call of every chapter
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def rank(name: str) -> int:
    if name in RANKS:
        return RANKS[name]
    head = name.split(".")[0]
    if head in RANKS:
        return RANKS[head]
    raise AssertionError(f"pgbook.{name} has no place in the stack: add it to RANKS")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> list[tuple[str, list[str], int]]:
    """(imported pgbook module, names imported from it, line) for every import in ``name``."""
    path = MODULES[name]
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("pgbook"):
                target = node.module[len("pgbook."):] if node.module != "pgbook" else ""
            else:
                continue
            names = [a.name for a in node.names]
            # "from . import symbolic" imports a module, "from .mdp import X" a name
            for n in names:
                sub = f"{target}.{n}" if target else n
                if sub in MODULES:
                    out.append((sub, [], node.lineno))
                    names = [m for m in names if m != n]
            if names:
                out.append((target or "__init__", names, node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("pgbook."):
                    out.append((a.name[len("pgbook."):], [], node.lineno))
    return out


def test_every_module_has_a_rank():
    for name in MODULES:
        rank(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_stack(name):
    for target, names, line in imports_of(name):
        same_package = target.split(".")[0] == name.split(".")[0] and name != target
        if same_package and rank(name) == rank(target) and not target.startswith("algos"):
            continue  # siblings inside a subpackage (acyclic: next test)
        assert rank(target) < rank(name), (
            f"pgbook.{name} (rank {rank(name)}) imports pgbook.{target} (rank {rank(target)}) "
            f"at line {line}: imports must go down the stack")
        private = [n for n in names if n.startswith("_")]
        assert not private, f"pgbook.{name} imports private {private} from pgbook.{target}"


def test_no_import_cycles():
    graph = {name: {t for t, _, _ in imports_of(name) if t in MODULES} for name in MODULES}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_trainer_imports_another_trainer():
    trainers = {n for n in MODULES if n.startswith("algos.") and n != "algos.run"}
    for name in trainers:
        others = {t for t, _, _ in imports_of(name)} & (trainers - {name})
        assert not others, f"pgbook.{name} imports the trainers {sorted(others)}"


def test_importing_a_trainer_loads_no_sympy_or_matplotlib():
    code = ("import sys, pgbook.algos.ppo, pgbook.algos.sac, pgbook.algos.grpo; "
            "print(sorted(m for m in ('sympy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"importing a trainer loads {out}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_short(name):
    source = MODULES[name].read_text()
    lines = source.count("\n")
    assert lines <= MAX_MODULE_LINES, f"pgbook.{name} has {lines} lines (> {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, (
                f"pgbook.{name}.{node.name} has {length} lines (> {MAX_FUNCTION_LINES})")


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The rank test must be able to fail: a module of rank 1 importing one of rank 4."""
    fake = tmp_path / "pgbook"
    fake.mkdir()
    (fake / "symbolic.py").write_text("from .objectives import ppo_clip\n")
    (fake / "objectives.py").write_text("from . import _validate as V\n")
    (fake / "_validate.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "MODULES",
                        {module_name(p): p for p in sorted(fake.rglob("*.py"))})
    with pytest.raises(AssertionError, match="must go down the stack"):
        test_imports_go_down_the_stack("symbolic")
    (fake / "objectives.py").write_text("from .symbolic import x\n")
    monkeypatch.setattr(sys.modules[__name__], "MODULES",
                        {module_name(p): p for p in sorted(fake.rglob("*.py"))})
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycles()
