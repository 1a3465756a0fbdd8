"""Params presets: a YAML file of overrides, run as one ``dvc exp run -S ...`` experiment.

A preset has the shape of ``params.yaml`` but holds only the keys it changes::

    loss: ce+dice
    data:
      sources: [celebamask_hq]
    parser:
      epochs: 12
      augment: {color_jitter: 0.3}

Nested mappings merge into ``params.yaml`` (``parser.augment.color_jitter`` changes, the other augment keys stay);
lists and scalars replace. Every key must already exist in ``params.yaml``; the check happens before DVC starts,
so a stale or misspelt preset fails at once with the preset file and the key in the message. The one exception is
``distill.student``, whose keys are overrides of the ``parser`` section: a preset may add any parser key there
(DVC gets it as ``+distill.student.<key>=...``, Hydra's syntax for a new key).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = Path("presets")
# Relative dataset paths break under `--queue`/`--temp`, which run in a copy of the project elsewhere.
PATH_KEYS = ("uri",)
# mappings whose keys are overrides of another section: a preset may add that section's keys to them
OPEN_MAPPINGS = {"distill.student": "parser"}
BARE_STRING = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+\-]*")


class PresetError(ValueError):
    """A preset file that cannot be applied; the message names the file and the key."""


def load_preset(path: str | os.PathLike, presets_dir: Path = PRESETS_DIR) -> dict[str, Any]:
    """The preset at ``path``, or the one named ``path`` in ``presets_dir``."""
    path = Path(path)
    if not path.is_file():
        candidate = presets_dir / f"{path}.yaml"
        if not candidate.is_file():
            available = sorted(p.stem for p in presets_dir.glob("*.yaml"))
            raise PresetError(f"{path}: no such preset file (presets in {presets_dir}/: {', '.join(available) or 'none'})")
        path = candidate
    with open(path) as fh:
        preset = yaml.safe_load(fh)
    if not isinstance(preset, dict) or not preset:
        raise PresetError(f"{path}: a preset must be a non-empty mapping of params.yaml keys")
    return preset


def format_value(value: Any) -> str:
    """The text after ``=`` in ``-S key=value``, in the Hydra override grammar that DVC parses ``-S`` with.

    Strings that would read back as something else (``null``, ``yes``, ``1e-4``, anything with a comma, which Hydra
    would take for a sweep) are quoted; lists and mappings use Hydra's ``[a,b]`` and ``{k:v}``.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if BARE_STRING.fullmatch(value) and yaml.safe_load(value) == value:
            return value
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{format_value(item)}" for key, item in value.items()) + "}"
    raise PresetError(f"cannot pass a {type(value).__name__} value ({value!r}) through `dvc exp run -S`")


def flatten_overrides(preset: dict[str, Any], params: dict[str, Any], source: str = "preset") -> list[tuple[str, Any]]:
    """``[(dotted key, value), ...]`` for every leaf of ``preset``, each checked against ``params``.

    Raises PresetError naming ``source`` and the key when a key is not in ``params`` or a mapping would replace a
    scalar (or the reverse).
    """
    pairs: list[tuple[str, Any]] = []

    def walk(node: dict[str, Any], reference: Any, prefix: str) -> None:
        section = prefix.rstrip(".")
        open_to = OPEN_MAPPINGS.get(section)
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if open_to and isinstance(reference, dict) and key not in reference:
                if key not in (params.get(open_to) or {}):
                    raise PresetError(f"{source}: {dotted!r}: {section} takes keys of the {open_to!r} "
                                      f"section, and {key!r} is not one")
                pairs.append((f"+{dotted}", value))
                continue
            if not isinstance(reference, dict) or key not in reference:
                raise PresetError(f"{source}: {dotted!r} is not a key of params.yaml (misspelt, or the preset is stale)")
            if isinstance(value, dict) and value:
                if not isinstance(reference[key], dict):
                    raise PresetError(f"{source}: {dotted!r} is a mapping in the preset but not in params.yaml")
                walk(value, reference[key], f"{dotted}.")
            else:
                if isinstance(reference[key], dict) and reference[key] and not isinstance(value, dict):
                    raise PresetError(f"{source}: {dotted!r} is a mapping in params.yaml; set its keys one by one")
                pairs.append((dotted, value))

    walk(preset, params, "")
    return pairs


def absolute_paths(pairs: list[tuple[str, Any]], root: Path) -> list[tuple[str, Any]]:
    """Relative local paths in ``*.uri`` keys made absolute from ``root``, so queued and temp runs find them."""
    resolved = []
    for key, value in pairs:
        if key.rsplit(".", 1)[-1] in PATH_KEYS and isinstance(value, str) and "://" not in value:
            if not Path(value).is_absolute():
                value = str((root / value).resolve())
        resolved.append((key, value))
    return resolved


def exp_run_command(pairs: list[tuple[str, Any]], name: str | None = None, queue: bool = False) -> list[str]:
    command = ["dvc", "exp", "run"]
    if name:
        command += ["-n", name]
    if queue:
        command.append("--queue")
    for key, value in pairs:
        command += ["-S", f"{key}={format_value(value)}"]
    return command
