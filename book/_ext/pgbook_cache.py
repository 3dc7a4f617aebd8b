"""Refuse to build the book from a notebook cache that a different pgbook filled.

``make book`` empties ``_build/.jupyter_cache``, executes every chapter into it
(``.ci/execute_book.py``) and then builds with ``execute_notebooks: cache``. A cache is
keyed on the notebooks' code only; the chapters' outputs also depend on the pgbook
package and on the stored results the chapters read. So ``execute_book.py`` writes
:func:`digest` of those files next to the cache (:data:`STAMP`), and this extension
stops the build when the stamp is missing or no longer matches: after an edit to pgbook,
a bare ``jupyter-book build`` or ``make pdf`` would otherwise show the outputs of the
old package. Only the book's own cache (``<repository>/_build/.jupyter_cache``) is
guarded; ``make book-part`` keeps a cache of its own for layout work.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sphinx.errors import ExtensionError

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "_build" / ".jupyter_cache"
STAMP = CACHE / "pgbook.sha256"
#: what the chapters' outputs depend on besides their own code
INPUTS = ("pgbook", "benchmarks/results")


def digest() -> str:
    """SHA-256 of the path and bytes of every file under :data:`INPUTS`."""
    h = hashlib.sha256()
    for top in INPUTS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                name = str(path.relative_to(ROOT)).encode()
                h.update(name + b"\0" + path.read_bytes())
    return h.hexdigest()


def _check_cache(app, config) -> None:
    if config.nb_execution_mode != "cache":
        return
    cache = Path(config.nb_execution_cache_path or CACHE).resolve()
    if cache != CACHE:
        return
    if not STAMP.exists() or STAMP.read_text().strip() != digest():
        raise ExtensionError(
            f"{cache} was not filled by .ci/execute_book.py with the pgbook and stored "
            "results of this checkout; run `make book` (it executes every chapter)"
        )


def setup(app):
    app.connect("config-inited", _check_cache)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
