"""Execute every chapter of the book afresh, two at a time, into the notebook cache that
``make book`` then builds the HTML from (``execute_notebooks: cache`` in ``_config.yml``).

The cache is emptied first, so every ``make book`` still executes every chapter from scratch:
results depend on pgbook too, which a cache keyed on the notebooks' code would not notice.
Each chapter runs on one torch thread (``pgbook.chapter.setup``), so two of them at a time on
two cores take about half the time of one after the other, and give the same outputs. The
chapters start in the table of contents' order, each as soon as a worker is free. Each
chapter's time is stored with it, for the book's *Execution status* page. A chapter that
fails is not cached: the script prints its traceback and exits 1 (the build would execute it
again and fail on the same cell). When every chapter succeeded, the script stamps the cache
with the digest of pgbook and the stored results it was filled with
(``book/_ext/pgbook_cache.py``, which refuses to build from a cache whose stamp is missing or
out of date).

    .venv/bin/python .ci/execute_book.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _cache_guard():
    """The Sphinx extension that checks the cache's stamp (its digest and paths)."""
    path = ROOT / "book" / "_ext" / "pgbook_cache.py"
    spec = importlib.util.spec_from_file_location("pgbook_cache", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapters() -> list[pathlib.Path]:
    """The notebooks of ``_toc.yml``, in its order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", []):
        for entry in part.get("chapters", []):
            path = ROOT / f"{entry['file']}.ipynb"
            if path.exists():
                files.append(path)
    return files


def execute(path: pathlib.Path, timeout: int) -> tuple[pathlib.Path, object, float, str | None]:
    """Execute one notebook in its own folder; (path, executed notebook, seconds, traceback)."""
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(path.parent), timeout=timeout,
                                 allow_errors=False)
    return path, notebook, result.time, result.exc_string if result.err else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at a time")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    if config["execute_notebooks"] != "cache":
        print("_config.yml must set execute_notebooks: cache", file=sys.stderr)
        return 2
    guard = _cache_guard()
    shutil.rmtree(guard.CACHE, ignore_errors=True)
    cache = get_cache(str(guard.CACHE))
    stamp = guard.digest()  # before executing: what the chapters run with
    failed = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(execute, path, config["timeout"]) for path in chapters()]
        for future in as_completed(futures):
            path, notebook, seconds, traceback = future.result()
            name = path.relative_to(ROOT)
            if traceback is not None:
                failed.append(name)
                print(f"{name}: FAILED after {seconds:.1f} s\n{traceback}", flush=True)
                continue
            record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, record.uri, data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            print(f"{name}: executed in {seconds:.1f} s", flush=True)
    print(f"{len(futures) - len(failed)} of {len(futures)} chapters executed, {args.jobs} at a "
          f"time, in {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        return 1
    if guard.digest() != stamp:
        print("pgbook or the stored results changed while the chapters ran", file=sys.stderr)
        return 1
    guard.STAMP.write_text(stamp + "\n")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
