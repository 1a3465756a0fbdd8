"""Loading a stage's section of ``params.yaml``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path(os.environ.get("FACEPARSE_PARAMS", "params.yaml"))


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    path = Path(path) if path is not None else PARAMS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: params file not found (run the stages from the project root)")
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def section(name: str, path: str | os.PathLike | None = None) -> Any:
    """One top-level entry of params.yaml, e.g. ``section("cache")`` or ``section("loss")``."""
    params = load_params(path)
    if name not in params:
        raise KeyError(f"params.yaml has no {name!r} entry")
    return params[name]
