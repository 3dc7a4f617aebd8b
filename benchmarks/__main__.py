"""``python -m benchmarks NAME [NAME ...] [--seeds 3] [--threads 1] [--progress] [--save-curves]``
and ``python -m benchmarks --against sb3 NAME [NAME ...] [--seeds 5] [--jobs 1]
[--save [--save-to PATH]]``.

Prints a markdown table of env steps and wall seconds to each benchmark's target. With
``--save-curves`` each benchmark's runs are also written to ``pgbook/data/curves/NAME.json``
(pgbook.stored_runs), with the date, machine and pgbook commit they were run at. With
``--against sb3`` each NAME of :data:`benchmarks.against_sb3.PAIRS` runs side by side with
Stable-Baselines3 at rl-zoo's settings, interleaved seed by seed, each run in a fresh process
(:mod:`benchmarks.against_sb3`); with ``--save`` the runs (episodes included), their table, the
pairs' settings, the machine, the versions and the command line are also written to
``benchmarks/results/against_sb3.json`` (or ``--save-to PATH``), which the book's Benchmarks page
reads.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from pgbook import stored_runs

from . import REGISTRY, markdown_table, run
from .against_sb3 import PAIRS, RESULTS, save_results, side_by_side, side_by_side_table


def _provenance(threads: int) -> dict:
    """Date, machine, torch threads and the git state of the pgbook the runs were made with."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.rstrip("\n") if done.returncode == 0 else "unknown"

    dirty = [line[3:] for line in git("status", "--porcelain", "pgbook").splitlines()]
    return {"date": datetime.date.today().isoformat(),
            "machine": f"{platform.processor() or platform.machine()} ({platform.system()})",
            "torch_threads": threads, "pgbook_commit": git("rev-parse", "HEAD"),
            "pgbook_uncommitted": [f for f in dirty if not f.startswith("pgbook/data/")]}


def _cpu_model() -> str | None:
    """The "model name" line of /proc/cpuinfo (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _against_provenance(threads: int, jobs: int) -> dict:
    """:func:`_provenance` with the runs at a time, the CPU model, its core count and the
    versions of Python and the libraries."""
    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return {**_provenance(threads), "jobs": jobs, "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            **{name.replace("-", "_"): installed(name) for name in
               ("torch", "stable-baselines3", "sb3-contrib", "gymnasium")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help=f"benchmarks to run, or 'all': {', '.join(REGISTRY)}")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--jobs", type=int, default=1,
                        help="with --against: runs at a time, each in its own process")
    parser.add_argument("--target", type=float, default=None,
                        help="override the registered target (and the early stop)")
    parser.add_argument("--total-steps", type=int, default=None,
                        help="override the env-step budget")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument("--save-curves", action="store_true",
                        help="write each benchmark's runs to pgbook/data/curves/NAME.json")
    parser.add_argument("--against", choices=["sb3"], default=None,
                        help="run each NAME side by side with Stable-Baselines3 (rl-zoo "
                             f"settings): {', '.join(PAIRS)}")
    parser.add_argument("--save", action="store_true",
                        help="with --against: also write the runs, their table and the "
                             "provenance to benchmarks/results/against_sb3.json")
    parser.add_argument("--save-to", type=Path, default=None, metavar="PATH",
                        help="with --against: write that file to PATH instead (implies --save)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.against:
        return _against(parser, args, "python -m benchmarks " + shlex.join(argv))
    if args.save or args.save_to:
        parser.error("--save and --save-to go with --against (see --save-curves)")
    names = list(REGISTRY) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; "
                     f"registered: {', '.join(REGISTRY)}")
    if args.seeds < 1 or args.first_seed < 0 or args.threads < 1:
        parser.error("--seeds and --threads must be >= 1, --first-seed >= 0")
    if args.total_steps is not None and args.total_steps < 1:
        parser.error("--total-steps must be >= 1")
    torch.set_num_threads(args.threads)
    # The first optimiser of a process imports torch._dynamo (seconds): pay it before timing.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results = []
    for name in names:
        print(f"# {name}: {REGISTRY[name].note}", file=sys.stderr)
        results += run(name, seeds, target=args.target, total_steps=args.total_steps,
                       progress=args.progress,
                       on_result=lambda r: print(f"  seed {r.seed}: steps {r.steps}, "
                                                 f"seconds {r.seconds}, best {r.best:.1f}",
                                                 file=sys.stderr, flush=True))
        if args.save_curves:
            bench, mine = REGISTRY[name], [r for r in results if r.name == name]
            path = stored_runs.save(name, [r.history for r in mine], env_id=bench.env_id,
                                    target=bench.target, window=bench.window, note=bench.note,
                                    provenance=_provenance(args.threads))
            print(f"  wrote {path}", file=sys.stderr)
    print(f"torch threads: {args.threads}\n")
    print(markdown_table(results))
    return 0


def _against(parser, args, command: str) -> int:
    names = list(PAIRS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        parser.error(f"no SB3 counterpart for {', '.join(unknown)}; paired: {', '.join(PAIRS)}")
    if args.seeds < 1 or args.first_seed < 0 or args.threads < 1 or args.jobs < 1:
        parser.error("--seeds, --threads and --jobs must be >= 1, --first-seed >= 0")
    if args.save_curves or args.progress:
        parser.error("--save-curves and --progress are not available with --against")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    provenance = _against_provenance(args.threads, args.jobs)  # before the runs start
    runs = side_by_side(names, seeds, threads=args.threads, budget=args.total_steps,
                        target=args.target, jobs=args.jobs,
                        on_run=lambda r: print(f"  {r.library} {r.name} seed {r.seed}: steps "
                                               f"{r.steps}, seconds {r.seconds}",
                                               file=sys.stderr, flush=True))
    print(f"torch threads: {args.threads}; each run in a fresh process, {args.jobs} at a "
          "time\n")
    print(side_by_side_table(runs))
    if args.save or args.save_to:
        path = save_results(args.save_to or RESULTS, runs, provenance, command)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
