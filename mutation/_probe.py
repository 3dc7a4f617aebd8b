"""pytest plugin of the mutation suite, loaded in every run as ``-p mutation._probe``.

Inert unless ``PGBOOK_MUTATION_OUT`` is set (by ``mutation.run``). Then it

* imports pgbook at start-up and records where from; it stops the session (exit code 3) unless
  that is ``PGBOOK_MUTATION_ROOT/pgbook``, the mutated copy's package, so a run can never test the
  editable install by accident (the chapters' kernels are probed by a notebook, see run.py);
* records every failing test, collection error and failing notebook cell, with its message,
  one JSON object a line in ``PGBOOK_MUTATION_OUT``;
* deselects the test ids, and skips the files, listed in ``PGBOOK_MUTATION_DESELECT`` (those
  that already fail on the unmutated tree, when the runner measured a baseline).

:func:`hit` is what ``python -m mutation --reach`` plants before a mutant's statements (in an
unmutated copy) to learn whether a chapter executes them at all.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

OUT = "PGBOOK_MUTATION_OUT"
ROOT = "PGBOOK_MUTATION_ROOT"
DESELECT = "PGBOOK_MUTATION_DESELECT"
PROBE_FAILED = 3


def _write(record: dict) -> None:
    with open(os.environ[OUT], "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _deselected() -> tuple[set[str], set[str]]:
    path = os.environ.get(DESELECT)
    if not path:
        return set(), set()
    data = json.loads(Path(path).read_text())
    return set(data.get("tests", ())), set(data.get("files", ()))


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _message(report) -> str:
    return ANSI.sub("", _raw_message(report))


def _raw_message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        lines = [line.strip() for line in str(crash.message).splitlines() if line.strip()]
        return lines[0][:240] if lines else ""
    # nbval (and collection errors) give a plain text report: its last error line says most
    lines = [line.strip() for line in str(report.longrepr).splitlines() if line.strip()]
    lines = [line for line in lines if not set(line) <= set("-=_^~ ")]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:240]
    return lines[-1][:240] if lines else ""


def pytest_configure(config) -> None:
    if not os.environ.get(OUT):
        return
    import pgbook

    root = os.path.realpath(os.environ[ROOT])
    where = os.path.realpath(pgbook.__file__)
    _write({"kind": "probe", "pgbook": where, "cwd": os.getcwd()})
    if where != os.path.join(root, "pgbook", "__init__.py"):
        pytest.exit(f"mutation probe: pgbook was imported from {where}, not from the mutated "
                    f"copy in {root}", returncode=PROBE_FAILED)


def pytest_ignore_collect(collection_path, config):
    if not os.environ.get(OUT):
        return None
    _, files = _deselected()
    rel = os.path.relpath(str(collection_path), os.environ[ROOT])
    return True if rel in files else None


def pytest_collection_modifyitems(config, items) -> None:
    if not os.environ.get(OUT):
        return
    tests, _ = _deselected()
    if not tests:
        return
    dropped = [item for item in items if item.nodeid in tests]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid not in tests]


def pytest_collectreport(report) -> None:
    if os.environ.get(OUT) and report.failed:
        _write({"kind": "failed", "when": "collect", "nodeid": report.nodeid,
                "message": _message(report)})


def pytest_runtest_logreport(report) -> None:
    if os.environ.get(OUT) and report.failed:
        _write({"kind": "failed", "when": report.when, "nodeid": report.nodeid,
                "message": _message(report)})


_HIT: set[str] = set()


def hit(mutant: str) -> None:
    """Record (once a process) that the statement a mutant edits was executed."""
    if os.environ.get(OUT) and mutant not in _HIT:
        _HIT.add(mutant)
        _write({"kind": "hit", "mutant": mutant})
