"""Does a chapter execute the code a mutant changes? ``python -m mutation --reach``.

For a mutant that survives a chapter there are two very different stories: the chapter never
runs the mutated statement (its ``chapters`` entry claims too much, or the chapter reaches the
idea by other code), or it runs it and no check notices. To tell them apart, the *unmutated*
copy gets a tripwire, a call of :func:`mutation._probe.hit`, right before each statement that
contains an edit's snippet (the innermost statement that can take a statement before it), and
the chapter runs under nbval as usual; the tripwire's record says whether it fired.

"Never runs it" is the literal truth about that statement: for a mutant of a failure branch
(``checker-assert-identical-noop`` replaces the ``raise``) it means that no check of the chapter
ever fails, i.e. the chapter has no negative control for that checker.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from .mutants import Mutant, StaleMutant


def wire(mutant: str) -> str:
    """The tripwire: an expression statement that records the execution of the next one."""
    return f"__import__('mutation._probe', fromlist=['hit']).hit({mutant!r})"


def _statements_covering(tree: ast.AST, line: int) -> list[ast.stmt]:
    found = [node for node in ast.walk(tree) if isinstance(node, ast.stmt)
             and node.lineno <= line <= (node.end_lineno or node.lineno)]
    return sorted(found, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)  # innermost first


def tripwired_sources(mutant: Mutant, read: Callable[[str], str]) -> dict[str, str]:
    """The files ``mutant`` edits, unmutated, with a tripwire before each edited statement."""
    texts: dict[str, str] = {}
    for edit in mutant.edits:
        texts.setdefault(edit.file, read(edit.file))
    for rel in texts:
        original = texts[rel]
        lines = sorted({original.count("\n", 0, original.index(e.snippet)) + 1
                        for e in mutant.edits if e.file == rel and e.snippet in original},
                       reverse=True)  # bottom up, so earlier line numbers stay valid
        if not lines:
            raise StaleMutant(f"{mutant.name}: no snippet found in {rel}")
        text = original
        for line in lines:
            for stmt in _statements_covering(ast.parse(text), line):
                rows = text.splitlines(keepends=True)
                indent = rows[stmt.lineno - 1][: stmt.col_offset]
                if indent.strip():  # the statement shares its line with its parent's header
                    continue
                line_of_wire = f"{indent}{wire(mutant.name)}\n"
                candidate = "".join([*rows[: stmt.lineno - 1], line_of_wire,
                                     *rows[stmt.lineno - 1:]])
                try:
                    compile(candidate, rel, "exec")
                except SyntaxError:
                    continue
                text = candidate
                break
            else:
                raise StaleMutant(f"{mutant.name}: no statement of {rel} line {line} takes a "
                                  f"tripwire")
        texts[rel] = text
    return texts
