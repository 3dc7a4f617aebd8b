"""Execute chapter notebooks in place and keep only the outputs nbval compares.

Usage: python .ci/execute_notebook.py book/01_policies.ipynb [more.ipynb ...]
       python .ci/execute_notebook.py --strip-only book/*.ipynb

Runs every cell with the current environment's python3 kernel (cwd = the notebook's folder),
fails on the first error, then removes the outputs of every cell that is NOT tagged
``nbval-check-output`` (so diffs stay reviewable). The outputs of tagged cells are what
``pytest --nbval-lax`` compares on the next run.
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
    """Drop the outputs nbval does not compare; number the code cells 1, 2, ... in order.

    nbval refuses a reference cell that has outputs but no execution count, so checked cells
    keep a count; numbering by position (not by run) keeps the file identical across runs.
    """
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        cell.metadata.pop("execution", None)
        if CHECK_TAG in cell.metadata.get("tags", []):
            cell.execution_count = number
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = number
        else:
            cell.execution_count = None
            cell.outputs = []
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
