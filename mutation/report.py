"""Verdicts, the stored results and the Markdown report of the mutation suite.

A result (one mutant, one run of ``mutation.run``) is a JSON-ready dict: ``status`` ("done",
"stale", "skipped"), ``tests`` (one run: ``verdict``, ``stage``, ``first``, ``message``,
``seconds``) and ``chapter_runs`` (chapter -> run). A run's verdict is "killed", "survived",
"timeout" (counted as killed: the mutant made the check hang), "n/a" (a chapter that already
fails on the unmutated tree) or "error" (pytest itself failed; counted as a failure of the
suite).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .mutants import Mutant

CAUGHT = ("killed", "timeout")
START, END = "<!-- mutants -->", "<!-- /mutants -->"


# ---- verdicts -------------------------------------------------------------------------------


def tests_caught(r: dict | None) -> bool | None:
    """True/False whether the unit tests caught the mutant; None if they did not run."""
    if not r or not r.get("tests"):
        return None
    return r["tests"]["verdict"] in CAUGHT


def chapter_runs(r: dict | None) -> dict[str, dict]:
    return (r or {}).get("chapter_runs") or {}


def chapters_caught(r: dict | None) -> bool | None:
    """True if any listed chapter caught the mutant; None if no chapter could judge it."""
    runs = [run for run in chapter_runs(r).values() if run["verdict"] != "n/a"]
    if not runs:
        return None
    return any(run["verdict"] in CAUGHT for run in runs)


def errors(r: dict | None) -> list[str]:
    runs = [("tests", (r or {}).get("tests"))] + list(chapter_runs(r).items())
    return [name for name, run in runs if run and run["verdict"] == "error"]


def meets_target(r: dict | None) -> bool:
    """Real mutant: killed by the unit tests and by its chapters (those that ran). Control:
    survives every check that ran. Stale, skipped or errored: never."""
    if not r or r.get("status") != "done" or errors(r):
        return False
    if r["control"]:
        runs = [r["tests"], *chapter_runs(r).values()]
        return all(run["verdict"] in ("survived", "n/a") for run in runs if run)
    return tests_caught(r) is not False and chapters_caught(r) is not False


# ---- text -----------------------------------------------------------------------------------


def run_text(run: dict) -> str:
    v = run["verdict"]
    if v in CAUGHT and run.get("first"):
        return f"{v} by {run['first']} ({run['seconds']:.0f} s)"
    return f"{v} ({run['seconds']:.0f} s)"


def summary_text(r: dict) -> str:
    parts = []
    if r.get("tests"):
        t = r["tests"]
        parts.append(f"tests {t['verdict']} ({t.get('stage', '?')})")
    runs = chapter_runs(r)
    if runs:
        caught = sum(run["verdict"] in CAUGHT for run in runs.values())
        parts.append(f"chapters {caught}/{len(runs)} caught")
    return ", ".join(parts) or r.get("status", "")


def _short(chapter: str) -> str:
    return Path(chapter).stem


def _num(chapter: str) -> str:
    return _short(chapter).split("_")[0]


def tests_cell(r: dict | None) -> str:
    if not r or r.get("status") != "done":
        return (r or {}).get("status", "not run").upper() if r else "not run"
    t = r.get("tests")
    if not t:
        return "—"
    v = t["verdict"]
    if v in CAUGHT and r["control"]:
        return "**yes: the control died**"
    if v in CAUGHT:
        word = "yes" if v == "killed" else "yes (timeout)"
        return f"{word} (slow test)" if t.get("stage") == "slow" else word
    if v == "survived":
        return "no (passes)" if r["control"] else "**no**"
    return f"**{v}**"


def chapters_cell(r: dict | None, per_chapter: bool = False) -> str:
    if not r or r.get("status") != "done":
        return "—"
    runs = chapter_runs(r)
    if not runs:
        return "—" if r.get("chapters") and r.get("tests") else "— (no chapter)"
    if per_chapter:
        words = {"killed": "yes", "timeout": "yes (timeout)", "survived": "no", "n/a": "n/a",
                 "error": "**error**"}
        return ", ".join(f"`{_num(c)}` {words[run['verdict']]}" for c, run in runs.items())
    judged = {c: run for c, run in runs.items() if run["verdict"] != "n/a"}
    caught = [c for c, run in judged.items() if run["verdict"] in CAUGHT]
    if r["control"]:
        return "no (passes)" if not caught else f"**yes** ({len(caught)}/{len(judged)})"
    if not judged:
        return "n/a"
    missed = [f"`{_num(c)}`" for c in judged if c not in caught]
    if not caught:
        return f"**no** (0/{len(judged)})"
    if missed:
        return f"yes ({len(caught)}/{len(judged)}; not {', '.join(missed)})"
    return f"yes ({len(caught)}/{len(judged)})"


def summary_line(mutants: list[Mutant], results: dict[str, dict]) -> str:
    real = [m for m in mutants if not m.control]
    controls = [m for m in mutants if m.control]
    got = {m.name: results.get(m.name) for m in mutants}
    stale = [m.name for m in mutants if (got[m.name] or {}).get("status") == "stale"]
    missing = [m.name for m in mutants if not got[m.name]
               or got[m.name].get("status") not in ("done", "stale")]
    tested = [m for m in real if tests_caught(got[m.name]) is not None]
    judged = [m for m in real if chapters_caught(got[m.name]) is not None]
    by_tests = sum(tests_caught(got[m.name]) for m in tested)
    by_chapters = sum(chapters_caught(got[m.name]) for m in judged)
    every = sum(all(run["verdict"] in CAUGHT for run in chapter_runs(got[m.name]).values()
                    if run["verdict"] != "n/a") for m in judged)
    runs = [run for m in judged for run in chapter_runs(got[m.name]).values()
            if run["verdict"] != "n/a"]
    controls_run = [m for m in controls if (got[m.name] or {}).get("status") == "done"]
    controls_ok = sum(meets_target(got[m.name]) for m in controls_run)
    errored = [m.name for m in mutants if errors(got[m.name])]
    parts = [f"{len(real)} mutants and {len(controls)} control(s)"]
    if tested:
        parts.append(f"unit tests kill {by_tests}/{len(tested)}")
    if judged:
        parts.append(f"chapters kill {by_chapters}/{len(judged)} (every listed chapter: "
                     f"{every}/{len(judged)}; chapter runs: "
                     f"{sum(run['verdict'] in CAUGHT for run in runs)}/{len(runs)})")
    parts.append(f"controls pass: {controls_ok}/{len(controls_run)}")
    parts.append(f"stale: {len(stale)}" + (f" ({', '.join(stale)})" if stale else ""))
    if errored:
        parts.append(f"errors: {', '.join(errored)}")
    if missing:
        parts.append(f"not run: {len(missing)}")
    return "; ".join(parts) + "."


def console_table(mutants: list[Mutant], results: dict[str, dict]) -> str:
    rows = [f"{'mutant':32} {'unit tests':18} chapters"]
    for m in mutants:
        r = results.get(m.name)
        name = m.name + (" (control)" if m.control else "")
        rows.append(f"{name:32} {_plain(tests_cell(r)):18} {_plain(chapters_cell(r, True))}")
    return "\n".join(rows)


def _plain(text: str) -> str:
    return text.replace("**", "").replace("`", "")


def _code(text: str | None, limit: int = 90) -> str:
    if not text:
        return ""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _cell(text: str | None, limit: int = 110) -> str:
    if not text:
        return ""
    text = re.sub(r"\s+", " ", text)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


# ---- Markdown -------------------------------------------------------------------------------


def readme_table(mutants: list[Mutant], results: dict[str, dict]) -> str:
    rows = ["| mutant | caught by unit tests | caught by chapters |", "|---|---|---|"]
    for m in mutants:
        r = results.get(m.name)
        name = f"`{m.name}`" + (" (control: must pass)" if m.control else "")
        rows.append(f"| {name} | {tests_cell(r)} | {chapters_cell(r)} |")
    return "\n".join(rows)


def markdown(mutants: list[Mutant], results: dict[str, dict], stored: dict) -> str:
    out = ["# Mutation report", "",
           "Written by `python -m mutation` (see `mutation/run.py` and the README's *Mutation "
           "suite*). Each mutant is applied to a fresh copy of the tree; **unit tests** are "
           '`pytest tests -m "not slow" -x`, then, if the mutant survives, the slow tests of '
           "every test file that imports a mutated module (`-m slow -x`); **chapters** are "
           "the mutant's chapters, each alone under nbval (`-x --nbval-lax "
           "--nbval-current-env`). A chapter *catches* a mutant when one of its cells fails. "
           "Controls change nothing that is computed and must pass everything.", "",
           f"**Summary:** {summary_line(mutants, results)}", ""]
    runs = stored.get("runs") or []
    if runs:
        out += ["Runs merged into this report (newest last):", ""]
        out += [f"- {run['when']}: {run['mutants']} mutant(s), {run['what']}, on "
                f"`{run['tree']}`, jobs={run['jobs']}, {_duration(run['seconds'])}"
                for run in runs[-8:]]
        out.append("")
    for base in (stored.get("baselines") or [])[-4:]:
        out += [f"Baseline (the unmutated tree, {base['when']}, `{base['tree']}`): "
                f"{len(base['tests'])} failing tests and {len(base['files'])} broken test files "
                f"left out of every run; chapters failing unmutated (n/a below): "
                f"{', '.join(_short(c) for c in base['chapters']) or 'none'}.", ""]
        if base["tests"] or base["files"]:
            out += ["<details><summary>tests left out</summary>", ""]
            out += [f"- `{t}`" for t in [*base["files"], *base["tests"]]]
            out += ["", "</details>", ""]
    out += ["| mutant | what it changes | caught by unit tests | first failing test | "
            "caught by chapters | time (s) |", "|---|---|---|---|---|---:|"]
    for m in mutants:
        r = results.get(m.name)
        t = (r or {}).get("tests") or {}
        first = _code(t.get("first")) if t.get("verdict") in CAUGHT else ""
        name = f"`{m.name}`" + (" (control)" if m.control else "")
        seconds = f"{r['seconds']:.0f}" if r and r.get("seconds") is not None else ""
        out.append(f"| {name} | {_cell(m.description)} | {tests_cell(r)} | {first} | "
                   f"{chapters_cell(r, per_chapter=True)} | {seconds} |")
    out += ["", "## How each mutant was caught", "",
            "The first failure of each run, with its message (chapters: the failing cell).", ""]
    for m in mutants:
        r = results.get(m.name)
        if not r:
            continue
        out.append(f"- **`{m.name}`**" + (f": {r.get('problem')}" if r.get("problem") else ""))
        runs = ([("unit tests", r["tests"])] if r.get("tests") else []) + list(
            chapter_runs(r).items())
        for what, run in runs:
            detail = f" {_code(run.get('first'), 70)}" if run.get("first") else ""
            message = f": {_cell(run.get('message'), 160)}" if run.get("message") else ""
            out.append(f"  - {_short(what) if what != 'unit tests' else what}: "
                       f"{run['verdict']}{detail}{message} ({run['seconds']:.0f} s)")
    dead = [m for m in mutants if m.control and results.get(m.name)
            and not meets_target(results[m.name])]
    if dead:
        out += ["", "## Controls that died (the suite is broken)", ""]
        out += [f"- `{m.name}`: {summary_text(results[m.name])}" for m in dead]
    survivors = [m for m in mutants if not m.control and results.get(m.name)
                 and not meets_target(results[m.name])]
    out += ["", "## Survivors", ""]
    if not survivors:
        out.append("None: every mutant was killed by every kind of check that ran.")
    for m in survivors:
        r = results[m.name]
        where = []
        if tests_caught(r) is False:
            where.append("the unit tests")
        if chapters_caught(r) is False:
            judged = [c for c, run in chapter_runs(r).items() if run["verdict"] != "n/a"]
            where.append("every chapter that ran (" + ", ".join(map(_short, judged)) + ")")
        out.append(f"- `{m.name}` ({m.description}) survives "
                   f"{' and '.join(where) or r.get('status', 'its checks')}.")
    misses: dict[str, list[str]] = {}
    unjudged: dict[str, list[str]] = {}
    reach = {n: r["chapters"] for n, r in (stored.get("reach") or {}).items()
             if n in {m.name: m for m in mutants}
             and r.get("key") == {m.name: m for m in mutants}[n].key}
    words = {True: "runs it", False: "**never runs it**", None: "?"}
    for m in mutants:
        for chapter, run in chapter_runs(results.get(m.name)).items():
            if run["verdict"] == "survived" and not m.control:
                where = reach.get(m.name, {})
                note = f" ({words[where[chapter]]})" if chapter in where else ""
                misses.setdefault(chapter, []).append(f"`{m.name}`{note}")
            elif run["verdict"] == "n/a":
                unjudged.setdefault(chapter, []).append(m.name)
    out += ["", "## Per chapter: the listed mutants it did not catch", "",
            "A chapter is listed for a mutant because it uses the mutated code. Where "
            "`python -m mutation --reach` was run, each miss says whether the chapter executes "
            "the mutated statement at all (a tripwire in the unmutated copy): *never runs it* "
            "means the listing or the chapter's choice of code is the problem, *runs it* that no "
            "check of the chapter is sensitive to the change.", ""]
    out += [f"- `{_short(c)}`: " + ", ".join(names)
            for c, names in sorted(misses.items())] or ["None."]
    if unjudged:
        out += ["", "Not judged (the chapter fails on the unmutated tree): "
                + "; ".join(f"`{_short(c)}` ({len(names)} mutants)"
                            for c, names in sorted(unjudged.items())) + "."]
    return "\n".join(out) + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def update_readme(readme: Path, mutants: list[Mutant], results: dict[str, dict],
                  report: Path | None) -> None:
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1:
        raise SystemExit(f"{readme} needs exactly one {START} ... {END} block")
    if report:
        try:
            report = report.resolve().relative_to(readme.resolve().parent)
        except ValueError:
            pass
    link = f" Details: [`{report.as_posix()}`]({report.as_posix()})." if report else ""
    body = (f"{START}\n**{summary_line(mutants, results)}**{link}\n\n"
            f"{readme_table(mutants, results)}\n{END}")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    readme.write_text(head + body + tail)


# ---- the JSON store -------------------------------------------------------------------------


def load(path: Path) -> dict:
    """Stored results whose mutant is unchanged (same key); the others are dropped."""
    from .mutants import BY_NAME

    if not path.exists():
        return {"results": {}, "runs": []}
    data = json.loads(path.read_text())
    data["results"] = {n: r for n, r in data.get("results", {}).items()
                       if n in BY_NAME and BY_NAME[n].key == r.get("key")}
    return data


def merge(old: dict | None, new: dict) -> dict:
    """``new`` over ``old`` (one mutant, same key): a tests-only or chapters-only run replaces
    only what it ran, so the store can be completed run by run."""
    if not old or old.get("key") != new["key"] or new.get("status") != "done" \
            or old.get("status") != "done":
        return new
    merged = dict(new)
    merged["tests"] = new.get("tests") or old.get("tests")
    merged["chapter_runs"] = {c: (new.get("chapter_runs") or {}).get(c)
                              or (old.get("chapter_runs") or {}).get(c)
                              for c in new["chapters"]
                              if c in (new.get("chapter_runs") or {})
                              or c in (old.get("chapter_runs") or {})}
    runs = [merged["tests"], *merged["chapter_runs"].values()]
    merged["seconds"] = round(sum(run["seconds"] for run in runs if run), 1)
    return merged


def save(path: Path, data: dict) -> None:
    for r in data["results"].values():  # the logs live in a temporary directory
        for run in [r.get("tests"), *chapter_runs(r).values()]:
            if run:
                run.pop("log", None)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
