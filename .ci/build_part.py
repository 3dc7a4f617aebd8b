"""Build a few chapters of the book (and the intro) for layout work; see ``make book-part``.

Writes a table of contents with only the named chapters and a copy of ``_config.yml``, then
runs ``jupyter-book build`` into ``OUT/_build/html``, with the notebook cache in
``OUT/_build/.jupyter_cache`` (kept between runs: a chapter is executed again only when its
code changed, not when pgbook did). Not a substitute for ``make book``:
references to chapters left out stay unresolved, and nothing here is checked with ``-W``.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("chapters", nargs="+", help="e.g. 08_ppo 12_unified")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for c in args.chapters:
        if not (ROOT / "book" / f"{c}.ipynb").exists():
            print(f"no chapter book/{c}.ipynb", file=sys.stderr)
            return 2
    toc = ["format: jb-book", "root: book/intro", "parts:", "  - caption: Chapters",
           "    numbered: true", "    chapters:"]
    toc += [f"      - file: book/{c}" for c in args.chapters]
    (out / "_toc.yml").write_text("\n".join(toc) + "\n")
    config = (ROOT / "_config.yml").read_text()
    config = config.replace(": book/_ext", f": {ROOT / 'book' / '_ext'}")  # local extensions
    (out / "_config.yml").write_text(config)
    cmd = [str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", "--keep-going",
           "--config", str(out / "_config.yml"), "--toc", str(out / "_toc.yml"),
           "--path-output", str(out), str(ROOT)]
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
