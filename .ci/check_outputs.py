"""Compare the notebooks the book build executed with the outputs checked into the chapters.

CI executes every chapter once, in ``make book``; this script then does what nbval would
have done in a second execution: for every cell tagged ``nbval-check-output`` in
``book/*.ipynb``, the executed copy in ``_build/jupyter_execute/book/`` must have the same
source and the same text outputs (stdout, and the ``text/plain`` of results and displays;
stderr, such as progress bars, is not compared, as under nbval-lax with our cells), and no
executed cell may hold an error. Usage: ``python .ci/check_outputs.py [BUILD_DIR]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "nbval-check-output"


def text_outputs(cell: dict) -> list[str]:
    """The outputs nbval compares for our chapters: stdout and text/plain, in order."""
    texts = []
    for output in cell.get("outputs", []):
        kind = output["output_type"]
        if kind == "stream" and output["name"] == "stdout":
            text = "".join(output["text"])
            if texts and texts[-1].startswith("stdout:"):
                texts[-1] += text        # consecutive stdout chunks are one stream
            else:
                texts.append("stdout:" + text)
        elif kind in ("execute_result", "display_data"):
            plain = output.get("data", {}).get("text/plain")
            if plain is not None and not output.get("data", {}).get("image/png"):
                texts.append("plain:" + "".join(plain))
        elif kind == "error":
            texts.append(f"error:{output['ename']}: {output['evalue']}")
    return texts


def compare(chapter: Path, executed: Path) -> list[str]:
    """Differences between one chapter's checked outputs and its executed copy."""
    if not executed.exists():
        return [f"{chapter.name}: not executed by the build ({executed} missing)"]
    stored = json.loads(chapter.read_text())["cells"]
    built = json.loads(executed.read_text())["cells"]
    problems = []
    if len(stored) != len(built):
        return [f"{chapter.name}: {len(stored)} cells, the executed copy has {len(built)}"]
    for index, (mine, theirs) in enumerate(zip(stored, built, strict=True)):
        where = f"{chapter.name} cell {index} ({mine.get('id', '?')})"
        if "".join(mine["source"]) != "".join(theirs["source"]):
            problems.append(f"{where}: the executed copy has other source")
            continue
        errors = [o for o in theirs.get("outputs", []) if o["output_type"] == "error"]
        if errors:
            problems.append(f"{where}: {errors[0]['ename']}: {errors[0]['evalue']}")
        if TAG in mine.get("metadata", {}).get("tags", []):
            want, got = text_outputs(mine), text_outputs(theirs)
            if want != got:
                problems.append(f"{where}: output differs\n  stored:   {want!r}\n"
                                f"  executed: {got!r}")
    return problems


def main(argv: list[str]) -> int:
    build = Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / "jupyter_execute"
    chapters = sorted((ROOT / "book").glob("*.ipynb"))
    problems, checked = [], 0
    for chapter in chapters:
        problems += compare(chapter, build / "book" / chapter.name)
        cells = json.loads(chapter.read_text())["cells"]
        checked += sum(TAG in c.get("metadata", {}).get("tags", []) for c in cells)
    for problem in problems:
        print("FAIL", problem)
    print(f"{len(chapters)} chapters, {checked} checked cells: "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
