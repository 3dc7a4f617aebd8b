"""Multi-seed training runs stored with the package, so a chapter can draw a seed band it cannot
afford to train.

A chapter trains its algorithm once, on one seed, inside its time budget. Where it claims
something about learning, one seed is not evidence: ``python -m benchmarks NAME --seeds 5
--save-curves`` trains the chapter's own config on seeds 0-4 and writes every run's episode
record to ``pgbook/data/curves/NAME.json`` (:func:`save`). The chapter loads it (:func:`load`),
asserts that the stored config is the one it trains (:meth:`StoredRuns.check_config`, so a
changed config without re-run benchmarks fails the chapter rather than drawing a stale band),
and draws the band with its own run on top (:func:`pgbook.plot.learning_curve`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from . import _validate as V
from .history import History

__all__ = ["CURVES_DIR", "StoredRuns", "load", "save"]

#: where the stored runs live (package data)
CURVES_DIR = Path(__file__).parent / "data" / "curves"


@dataclass(frozen=True)
class StoredRuns:
    """The seeds of one benchmark setting, as :func:`load` reads them."""

    name: str
    env_id: str
    target: float
    window: int
    config: dict  #: the trainer config as a dict, without its seed
    runs: tuple[History, ...]  #: one History per seed, with the episode record only
    seeds: tuple[int, ...]
    provenance: dict  #: date, machine, torch threads, pgbook commit and uncommitted files

    def check_config(self, config) -> None:
        """Raise ``ValueError`` unless ``config`` (a trainer config dataclass) equals the stored
        one apart from its seed."""
        if not dataclasses.is_dataclass(config) or isinstance(config, type):
            raise ValueError(f"config must be a config dataclass instance, got "
                             f"{type(config).__name__}")
        mine = _config_dict(config)
        differ = sorted(k for k in mine.keys() | self.config.keys()
                        if mine.get(k, "<missing>") != self.config.get(k, "<missing>"))
        if differ:
            details = ", ".join(f"{k}: stored {self.config.get(k, '<missing>')!r}, "
                                f"given {mine.get(k, '<missing>')!r}" for k in differ)
            raise ValueError(f"config differs from the stored runs {self.name!r} in {details}; "
                             f"re-run `python -m benchmarks {self.name} --seeds "
                             f"{len(self.seeds)} --save-curves`")


def _config_dict(config) -> dict:
    """The config as JSON-ready data, seed dropped (tuples become lists, as JSON stores them)."""
    data = dataclasses.asdict(config)
    data.pop("seed", None)
    return json.loads(json.dumps(data))


def save(name: str, histories, *, env_id: str, target: float, window: int, note: str,
         provenance: dict, directory: Path | str = CURVES_DIR) -> Path:
    """Write the episode records of ``histories`` (one :class:`History` per seed, all of one
    config but for the seed) to ``directory/name.json``; returns the path."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    histories = list(histories) if isinstance(histories, list | tuple) else None
    if not histories or not all(isinstance(h, History) for h in histories):
        raise ValueError("histories must be a non-empty list of History")
    configs = [_config_dict(h.config) for h in histories]
    if any(c != configs[0] for c in configs):
        raise ValueError("histories must share one config apart from the seed")
    if not isinstance(provenance, dict):
        raise ValueError(f"provenance must be a dict, got {type(provenance).__name__}")
    data = {
        "benchmark": name, "note": str(note), "env_id": str(env_id),
        "target": V.number(target, "target"), "window": V.positive_int(window, "window"),
        "config": configs[0], "seeds": [h.config.seed for h in histories], **provenance,
        "runs": [{"seed": h.config.seed, "steps": list(h.episode_steps),
                  "returns": list(h.episode_returns), "times": list(h.episode_times)}
                 for h in histories],
    }
    path = Path(directory) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def load(name: str, *, directory: Path | str = CURVES_DIR) -> StoredRuns:
    """Read the stored runs of benchmark ``name`` (see the module docstring)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in Path(directory).glob("*.json"))
        raise ValueError(f"no stored runs named {name!r} in {directory}; known: {known}")
    data = json.loads(path.read_text())
    runs = []
    for run in data["runs"]:
        history = History(data["env_id"])
        history.episode_steps, history.episode_returns = run["steps"], run["returns"]
        history.episode_times = run.get("times", [0.0] * len(run["steps"]))
        history.env_steps = run["steps"][-1] if run["steps"] else 0
        runs.append(history)
    fixed = {"benchmark", "note", "env_id", "target", "window", "config", "seeds", "runs"}
    return StoredRuns(data["benchmark"], data["env_id"], float(data["target"]),
                      int(data["window"]), data["config"], tuple(runs), tuple(data["seeds"]),
                      {k: v for k, v in data.items() if k not in fixed})
