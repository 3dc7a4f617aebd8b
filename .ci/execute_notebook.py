"""Execute chapter notebooks in place and keep only the outputs nbval compares.

Usage: python .ci/execute_notebook.py book/01_policies.ipynb [more.ipynb ...]
       python .ci/execute_notebook.py --strip-only book/*.ipynb

Runs every cell with the current environment's python3 kernel (cwd = the notebook's folder),
fails on the first error, then removes the outputs of every cell that is NOT tagged
``nbval-check-output`` (so diffs stay reviewable) and all execution counts. The outputs of
tagged cells are what ``pytest --nbval-lax`` compares on the next run.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

CHECK_TAG = "nbval-check-output"


def strip(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        tags = cell.metadata.get("tags", [])
        if CHECK_TAG not in tags:
            cell.outputs = []
        else:
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--strip-only", action="store_true")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if not args.strip_only:
            start = time.perf_counter()
            NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            print(f"{path}: executed in {time.perf_counter() - start:.1f} s")
        strip(nb)
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
