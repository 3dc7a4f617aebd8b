"""Apply each mutant to a copy of the tree; run the unit tests and, separately, its chapters.

``python -m mutation --help`` lists the options; ``make mutants`` runs every mutant and writes
``mutation/REPORT.md`` and the table in README.md; ``.ci/run`` runs ``--ci`` (CI_SUBSET, unit
tests only).

One run of the suite:

1. **Snapshot.** The working tree's files (``git ls-files -co --exclude-standard``: tracked, and
   untracked but not ignored) are copied once into a temporary directory, so edits made to the
   tree while the suite runs do not leak into it. Every mutant gets its own copy of the snapshot.
2. **Apply.** Each edit's snippet must occur exactly once in its file (else the mutant is
   *stale*, a failure of the suite) and the mutated file must still compile.
3. **Unit tests.** ``pytest tests -m "not slow" -x`` in the copy; if the mutant survives, the
   slow tests of every test file that imports a mutated module, directly or through the package
   (a static import graph), ``-m slow -x``.
4. **Chapters.** Each chapter in the mutant's ``chapters``, one pytest run each, under nbval
   (``-x --nbval-lax --nbval-current-env``), after a probe notebook.

Every run has ``cwd`` = the copy and ``PYTHONPATH`` = the copy, and proves it: the plugin
``mutation._probe`` checks ``pgbook.__file__`` inside pytest, the probe notebook checks it inside
the nbval kernel, and the runner stops with an error if either is missing or points elsewhere.
Control mutants run first and must survive everything; if one dies the suite is broken and the
remaining mutants are skipped. With ``--baseline`` the unmutated snapshot is checked first and
tests or chapters that already fail there are left out of every mutant's runs (and reported).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from . import report as R
from .mutants import BY_NAME, CI_SUBSET, MUTANTS, Mutant, StaleMutant, mutated_sources
from .reach import tripwired_sources

ROOT = Path(__file__).resolve().parents[1]
PROBE_NOTEBOOK = "book/_mutation_probe.ipynb"
THIS_TEST = "tests/test_mutation.py"  # checks the snippets against the tree: a mutant fails it
PYTEST = ["-q", "-p", "no:cacheprovider", "-p", "mutation._probe", "--durations=0",
          "--durations-min=1000000"]
FAST = ["tests", "-m", "not slow", f"--ignore={THIS_TEST}"]
NBVAL = ["--nbval-lax", "--nbval-current-env"]
PROBE_FAILED = 3  # mutation._probe's exit code


class SuiteError(RuntimeError):
    """The machinery failed (probe, snapshot): no verdict can be trusted."""


# ---- the tree -------------------------------------------------------------------------------


def tree_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                         capture_output=True, check=True).stdout.decode()
    return sorted({p for p in out.split("\0") if p and (root / p).is_file()})


def describe_tree(root: Path) -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "no commit"
    changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return f"{head} + {len(changed)} uncommitted paths" if changed else head


def snapshot(root: Path, dest: Path) -> None:
    for rel in tree_files(root):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    if not (dest / "pgbook" / "__init__.py").is_file():
        raise SuiteError(f"the snapshot of {root} has no pgbook/__init__.py")


def apply(mutant: Mutant, tree: Path) -> None:
    for rel, text in mutated_sources(mutant, lambda f: (tree / f).read_text()).items():
        (tree / rel).write_text(text)


def check_applies(mutant: Mutant, tree: Path) -> str | None:
    """None if ``mutant`` applies cleanly to ``tree`` and still compiles, else the problem."""
    try:
        texts = mutated_sources(mutant, lambda f: (tree / f).read_text())
    except StaleMutant as e:
        return str(e)
    for rel, text in texts.items():
        try:
            compile(text, rel, "exec")
        except SyntaxError as e:
            return f"{mutant.name}: the mutated {rel} does not compile ({e})"
    return None


# ---- which slow tests are relevant: a static import graph -----------------------------------


def _module(rel: Path) -> str:
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    out = set()
    for dotted in found:  # importing a.b.c runs a/__init__, a/b/__init__ too
        parts = dotted.split(".")
        out |= {m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in modules}
    return out


def relevant_test_files(tree: Path, files: Iterable[str]) -> list[str]:
    """Test files that import (directly, or through pgbook's own imports, or through a
    conftest.py above them) any of ``files``."""
    paths = {_module(p.relative_to(tree)): p for p in sorted((tree / "pgbook").rglob("*.py"))}
    graph = {m: _imports(p, m, set(paths)) for m, p in paths.items()}
    targets = {_module(Path(f)) for f in files}

    def reaches(module: str) -> bool:
        seen, todo = set(), [module]
        while todo:
            m = todo.pop()
            if m in targets:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph[m])
        return False

    out = []
    for test in sorted((tree / "tests").rglob("test_*.py")):
        rel = test.relative_to(tree)
        if rel.as_posix() == THIS_TEST:
            continue
        sources = [test, *(d / "conftest.py" for d in test.parents
                           if d.is_relative_to(tree / "tests") and (d / "conftest.py").is_file())]
        imported = set().union(*(_imports(s, "tests", set(paths)) for s in sources))
        if any(reaches(m) for m in imported):
            out.append(rel.as_posix())
    return out


# ---- one pytest run ---------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(pid: int) -> None:
    """Kill the run we started and everything it started (nbval's kernels run in sessions of
    their own, so killing the process group is not enough), each by its pid."""
    for p in [*reversed(_descendants(pid)), pid]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_pytest(copy: Path, args: list[str], log: Path, timeout: float,
               deselect: Path | None = None, kernel_probe: bool = False) -> dict:
    """Run pytest in ``copy``; return {verdict, first, message, seconds, log}.

    verdict: "killed" (a test failed), "survived" (all passed), "none" (nothing selected),
    "timeout" or "error" (pytest itself failed). Raises SuiteError if the probes fail."""
    out = log.with_suffix(".jsonl")
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGBOOK_MUTATION")}
    env.update(PYTHONPATH=str(copy), PGBOOK_MUTATION_ROOT=str(copy),
               PGBOOK_MUTATION_OUT=str(out), PYTHONDONTWRITEBYTECODE="1")
    if deselect is not None:
        env["PGBOOK_MUTATION_DESELECT"] = str(deselect)
    cmd = [sys.executable, "-m", "pytest", *args, *PYTEST]
    start = time.monotonic()
    timed_out = False
    with log.open("w") as f:
        f.write("$ " + " ".join(cmd) + "\n\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_tree(proc.pid)
            rc = proc.wait()
    seconds = round(time.monotonic() - start, 1)
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    _verify_probes(copy, records, log, rc, kernel_probe and not timed_out)
    failed = [r for r in records if r["kind"] == "failed"]
    first = failed[0] if failed else {}
    if timed_out:
        verdict = "timeout"
    elif rc == 0:
        verdict = "survived"
    elif rc == 5:
        verdict = "none"
    elif rc == 1 or (rc == 2 and failed):  # 2: interrupted, e.g. by a collection error
        verdict = "killed"
    else:
        verdict = "error"
        first = {"nodeid": f"pytest exited with {rc}", "message": _tail(log)}
    return {"verdict": verdict, "first": first.get("nodeid"), "message": first.get("message"),
            "seconds": seconds, "log": str(log),
            "hits": sum(r["kind"] == "hit" for r in records)}


def _tail(log: Path, n: int = 3) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-n:])[-300:]


def _inside(path: str, root: Path) -> bool:
    """``path`` is the copy's own pgbook/__init__.py."""
    return os.path.realpath(path) == os.path.realpath(root / "pgbook" / "__init__.py")


def _verify_probes(copy: Path, records: list[dict], log: Path, rc: int, kernel: bool) -> None:
    probes = [r for r in records if r["kind"] == "probe"]
    if not probes or rc == PROBE_FAILED or not all(_inside(p["pgbook"], copy) for p in probes):
        raise SuiteError(f"probe failed: pytest in {copy} imported pgbook from "
                         f"{[p['pgbook'] for p in probes] or 'nowhere'} (rc {rc}; see {log})")
    if kernel:
        kernels = [r for r in records if r["kind"] == "kernel-probe"]
        bad = [r for r in records if r["kind"] == "failed" and PROBE_NOTEBOOK in r["nodeid"]]
        if bad or not kernels or not all(_inside(k["pgbook"], copy) for k in kernels):
            raise SuiteError(f"probe failed: the nbval kernel in {copy} imported pgbook from "
                             f"{[k['pgbook'] for k in kernels] or 'nowhere'} "
                             f"({bad[0]['message'] if bad else 'no failure'}; see {log})")


PROBE_SOURCE = """\
import json, os, sys
import pgbook
root = os.path.realpath(os.environ["PGBOOK_MUTATION_ROOT"])
where = os.path.realpath(pgbook.__file__)
with open(os.environ["PGBOOK_MUTATION_OUT"], "a") as f:
    f.write(json.dumps({"kind": "kernel-probe", "pgbook": where, "cwd": os.getcwd(),
                        "python": sys.executable}) + "\\n")
assert where == os.path.join(root, "pgbook", "__init__.py"), f"the kernel imported {where}"
"""


def write_probe_notebook(copy: Path) -> None:
    cell = {"cell_type": "code", "execution_count": None, "id": "mutation-probe",
            "metadata": {}, "outputs": [], "source": PROBE_SOURCE.splitlines(keepends=True)}
    notebook = {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                            "name": "python3"},
                             "language_info": {"name": "python"}}}
    (copy / PROBE_NOTEBOOK).write_text(json.dumps(notebook, indent=1))


# ---- one mutant -------------------------------------------------------------------------------


class Runner:
    def __init__(self, args, work: Path, base: Path, tree: str):
        self.args, self.work, self.base, self.tree = args, work, base, tree
        self.deselect: Path | None = None
        self.red_chapters: set[str] = set()
        self.lock = threading.Lock()
        self.done = 0
        self.total = 0
        self.abort = threading.Event()
        self.on_result = lambda result: None

    def say(self, text: str) -> None:
        with self.lock:
            print(text, flush=True)

    def copy_of(self, name: str) -> Path:
        copy = self.work / "trees" / name
        shutil.copytree(self.base, copy)
        return copy

    def logs(self, name: str) -> Path:
        path = self.work / "logs" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def unit_tests(self, copy: Path, mutant: Mutant | None, logs: Path, x: bool) -> dict:
        stop = ["-x"] if x else []
        fast = run_pytest(copy, [*FAST, *stop], logs / "tests-fast.log", self.args.timeout,
                          self.deselect)
        fast["stage"] = "fast"
        if fast["verdict"] != "survived":
            return fast
        files = (relevant_test_files(copy, mutant.files) if mutant
                 else [p.relative_to(copy).as_posix() for p in (copy / "tests").rglob("test_*.py")
                       if p.relative_to(copy).as_posix() != THIS_TEST])
        if not files:
            return fast | {"slow_files": 0}
        slow = run_pytest(copy, [*files, "-m", "slow", *stop], logs / "tests-slow.log",
                          self.args.timeout, self.deselect)
        slow["stage"] = "slow"
        slow["slow_files"] = len(files)
        slow["seconds"] = round(slow["seconds"] + fast["seconds"], 1)
        if slow["verdict"] == "none":
            slow["verdict"] = "survived"
        return slow

    def chapter(self, copy: Path, chapter: str, logs: Path) -> dict:
        if chapter in self.red_chapters:
            return {"verdict": "n/a", "first": None, "message": "fails on the unmutated tree",
                    "seconds": 0.0}
        write_probe_notebook(copy)
        return run_pytest(copy, ["-x", *NBVAL, PROBE_NOTEBOOK, chapter],
                          logs / f"{Path(chapter).stem}.log", self.args.timeout, self.deselect,
                          kernel_probe=True)

    def mutant(self, m: Mutant) -> dict:
        result = {"name": m.name, "key": m.key, "control": m.control,
                  "description": m.description, "chapters": list(m.chapters),
                  "tree": self.tree, "when": _now(), "tests": None, "chapter_runs": {}}
        if self.abort.is_set():
            return result | {"status": "skipped", "problem": "a control mutant died first"}
        problem = check_applies(m, self.base)
        if problem:
            self.progress(m, "STALE: " + problem)
            result |= {"status": "stale", "problem": problem, "seconds": 0.0}
            self.on_result(result)
            return result
        start = time.monotonic()
        copy = self.copy_of(m.name)
        logs = self.logs(m.name)
        try:
            apply(m, copy)
            if not self.args.chapters_only:
                result["tests"] = self.unit_tests(copy, m, logs, x=True)
                self.progress(m, "tests " + R.run_text(result["tests"]))
            if not self.args.tests_only:
                for chapter in m.chapters:
                    run = self.chapter(copy, chapter, logs)
                    result["chapter_runs"][chapter] = run
                    self.progress(m, f"{Path(chapter).stem} " + R.run_text(run))
        finally:
            if not self.args.keep:
                shutil.rmtree(copy, ignore_errors=True)
        result |= {"status": "done", "problem": None,
                   "seconds": round(time.monotonic() - start, 1)}
        with self.lock:
            self.done += 1
            done = self.done
        self.on_result(result)
        verdict = "ok" if R.meets_target(result) else "MISSED TARGET"
        self.say(f"[{done}/{self.total}] {m.name}: {R.summary_text(result)} "
                 f"({result['seconds']:.0f} s) -> {verdict}")
        if m.control and not R.meets_target(result):
            self.say(f"!! control {m.name} died: the suite is broken")
            if not self.args.keep_going:
                self.abort.set()
        return result

    def reach(self, m: Mutant) -> dict:
        """Which of ``m``'s chapters execute the statements it edits (see mutation.reach)."""
        out: dict = {"key": m.key, "chapters": {}}
        copy = self.copy_of(m.name)
        logs = self.logs(m.name)
        try:
            try:
                texts = tripwired_sources(m, lambda f: (copy / f).read_text())
            except StaleMutant as e:
                self.progress(m, f"reach: {e}")
                return out | {"problem": str(e)}
            for rel, text in texts.items():
                (copy / rel).write_text(text)
            for chapter in m.chapters:
                write_probe_notebook(copy)
                run = run_pytest(copy, ["-x", *NBVAL, PROBE_NOTEBOOK, chapter],
                                 logs / f"reach-{Path(chapter).stem}.log", self.args.timeout,
                                 kernel_probe=True)
                out["chapters"][chapter] = run["hits"] > 0 if run["verdict"] == "survived" \
                    or run["hits"] else None
                word = {True: "executes it", False: "never executes it", None: "fails"}
                self.progress(m, f"{Path(chapter).stem} {word[out['chapters'][chapter]]}")
        finally:
            if not self.args.keep:
                shutil.rmtree(copy, ignore_errors=True)
        return out

    def progress(self, m: Mutant, text: str) -> None:
        self.say(f"    {m.name}: {text}")

    def baseline(self, chapters: list[str], tests: bool) -> dict:
        """Run the unmutated snapshot; remember what already fails there."""
        copy = self.copy_of("_baseline")
        logs = self.logs("_baseline")
        start = time.monotonic()
        out: dict = {"tree": self.tree, "when": _now(), "tests": [], "files": [],
                     "chapters": []}
        try:
            if tests:
                for stage, args in (("fast", FAST), ("slow", ["tests", "-m", "slow"])):
                    log = logs / f"tests-{stage}.log"
                    run = run_pytest(copy, [*args, f"--ignore={THIS_TEST}"], log,
                                     self.args.timeout)
                    if run["verdict"] in ("timeout", "error"):
                        raise SuiteError(f"baseline unit tests ({stage}): {run['verdict']}: "
                                         f"{run['first']} {run['message']} (see {log})")
                    for r in _records(log):
                        if r["kind"] == "failed":
                            key = "files" if r["when"] == "collect" else "tests"
                            out[key].append(r["nodeid"])
                    self.say(f"    baseline: unit tests ({stage}) {run['verdict']} "
                             f"in {run['seconds']:.0f} s")
            for chapter in chapters:
                run = self.chapter(copy, chapter, logs)
                if run["verdict"] != "survived":
                    out["chapters"].append(chapter)
                self.say(f"    baseline: {Path(chapter).stem} {run['verdict']} "
                         f"in {run['seconds']:.0f} s")
        finally:
            if not self.args.keep:
                shutil.rmtree(copy, ignore_errors=True)
        out["tests"] = sorted(set(out["tests"]))
        out["files"] = sorted(set(out["files"]))
        out["seconds"] = round(time.monotonic() - start, 1)
        return out

    def use_baseline(self, baseline: dict) -> None:
        self.deselect = self.work / "deselect.json"
        self.deselect.write_text(json.dumps({"tests": baseline["tests"],
                                             "files": baseline["files"]}))
        self.red_chapters = set(baseline["chapters"])


def _records(log: Path) -> list[dict]:
    out = log.with_suffix(".jsonl")
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---- the command line -------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME", default=[],
                   help="run only these mutants (repeatable)")
    p.add_argument("--ci", action="store_true",
                   help="the fixed CI subset (mutants.CI_SUBSET), unit tests only")
    p.add_argument("--tests-only", action="store_true", help="skip the chapters")
    p.add_argument("--chapters-only", action="store_true", help="skip the unit tests")
    p.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (default 1)")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="seconds allowed per pytest run (default 900)")
    p.add_argument("--baseline", action="store_true",
                   help="first run the unmutated tree; leave out what already fails there")
    p.add_argument("--results", type=Path, metavar="FILE",
                   help="JSON store of results: read, merged with this run's, written back")
    p.add_argument("--report", type=Path, metavar="FILE", help="write the Markdown report")
    p.add_argument("--update-readme", action="store_true",
                   help="rewrite the table between <!-- mutants --> markers in README.md")
    p.add_argument("--keep-going", action="store_true",
                   help="go on after a control mutant dies")
    p.add_argument("--keep", action="store_true", help="keep the mutated copies")
    p.add_argument("--reach", action="store_true",
                   help="instead of the checks: does each listed chapter execute the mutated "
                        "statements at all? (stored with --results, shown in the report)")
    p.add_argument("--render", action="store_true",
                   help="run nothing: rewrite --report / README from the --results store")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = p.parse_args(argv)
    if args.ci:
        args.only = [*args.only, *CI_SUBSET]
        args.tests_only = True
    unknown = [n for n in args.only if n not in BY_NAME]
    if unknown:
        p.error(f"unknown mutants: {', '.join(unknown)}")
    if args.tests_only and args.chapters_only:
        p.error("--tests-only and --chapters-only exclude each other")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    if args.render and not args.results:
        p.error("--render needs --results")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:32} {'control ' if m.control else ''}{m.description}")
        return 0
    if args.render:
        stored = R.load(args.results)
        print(R.summary_line(MUTANTS, stored["results"]))
        if args.report:
            args.report.write_text(R.markdown(MUTANTS, stored["results"], stored))
        if args.update_readme:
            R.update_readme(ROOT / "README.md", MUTANTS, stored["results"], args.report)
        return 0
    selected = [m for m in MUTANTS if not args.only or m.name in args.only]
    started = time.monotonic()
    tree = describe_tree(ROOT)
    work = Path(tempfile.mkdtemp(prefix="pgbook-mutation-"))
    base = work / "base"
    snapshot(ROOT, base)
    runner = Runner(args, work, base, tree)
    runner.total = len(selected)
    what = ("unit tests" if args.tests_only else "chapters" if args.chapters_only
            else "unit tests and chapters")
    print(f"mutation suite: {len(selected)} mutants ({what}) on {tree}, jobs={args.jobs}; "
          f"work dir {work}", flush=True)
    full = not (args.only or args.tests_only or args.chapters_only or args.reach)
    stored = (R.load(args.results) if args.results and not full  # a full run starts afresh
              else {"results": {}, "runs": []})
    if args.reach:
        return reach_main(args, runner, selected, stored, work)
    try:
        if args.baseline:
            chapters = ([] if args.tests_only else
                        sorted({c for m in selected for c in m.chapters}))
            b = runner.baseline(chapters, tests=not args.chapters_only)
            runner.use_baseline(b)
            stored["baselines"] = [*stored.get("baselines", []), b][-8:]
            print(f"baseline: {len(b['tests'])} failing tests, {len(b['files'])} broken test "
                  f"files, {len(b['chapters'])} failing chapters left out", flush=True)
        results: dict[str, dict] = {}

        saving = threading.Lock()

        def record(result: dict) -> None:  # saved as it comes: a crash loses one mutant at most
            with saving:
                stored["results"][result["name"]] = R.merge(
                    stored["results"].get(result["name"]), result)
                if args.results:
                    R.save(args.results, stored)

        runner.on_result = record
        controls = [m for m in selected if m.control]
        others = [m for m in selected if not m.control]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for group in (controls, others):
                for r in pool.map(runner.mutant, group):
                    results[r["name"]] = r
    except SuiteError as e:
        print(f"\nMUTATION SUITE BROKEN: {e}", file=sys.stderr, flush=True)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(work / "trees", ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    stored["runs"] = [*stored.get("runs", []),
                      {"when": _now(), "tree": tree, "mutants": len(selected), "what": what,
                       "jobs": args.jobs, "seconds": seconds}][-20:]
    if args.results:
        R.save(args.results, stored)
    shown = stored["results"] if args.results else results
    print()
    print(R.console_table(selected, results))
    line = R.summary_line(MUTANTS if args.results else selected, shown)
    print(f"\n{line}\ntime: {seconds:.0f} s; logs in {work / 'logs'}")
    if args.report:
        args.report.write_text(R.markdown(MUTANTS if args.results else selected, shown, stored))
        print(f"report written to {args.report}")
    if args.update_readme:
        R.update_readme(ROOT / "README.md", MUTANTS if args.results else selected, shown,
                        args.report)
        print("README.md table updated")
    ok = all(R.meets_target(results.get(m.name)) for m in selected)
    return 0 if ok else 1


def reach_main(args, runner: Runner, selected: list[Mutant], stored: dict, work: Path) -> int:
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            listed = [m for m in selected if m.chapters]
            found = {m.name: r for m, r in zip(listed, pool.map(runner.reach, listed),
                                               strict=True)}
    except SuiteError as e:
        print(f"\nMUTATION SUITE BROKEN: {e}", file=sys.stderr, flush=True)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(work / "trees", ignore_errors=True)
            shutil.rmtree(work / "base", ignore_errors=True)
    stored.setdefault("reach", {}).update(found)
    if args.results:
        R.save(args.results, stored)
    never = [(n, c) for n, r in found.items() for c, hit in r["chapters"].items() if hit is False]
    print("\nlisted chapters that never execute the mutated statements:")
    print("\n".join(f"  {n}: {Path(c).stem}" for n, c in never) or "  none")
    if args.report:
        args.report.write_text(R.markdown(MUTANTS if args.results else selected,
                                          stored["results"], stored))
        print(f"report written to {args.report}")
    return 0
