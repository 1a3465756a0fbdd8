"""DVC stage: fetch one configured source into ``data/raw/<source>``.

Usage: ``python -m stages.download <source>`` (a ``foreach`` stage over ``data.sources``). Reads
``data.<source>`` from params.yaml. The output is built in a temporary folder beside the target and
renamed into place, so an interrupted run never leaves a half-filled ``data/raw/<source>``.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from stages.core.params import section
from stages.core.sources import DatasetMissingError, fetch_source

RAW_DIR = Path("data/raw")


def source_options(name: str, data_params: dict) -> dict:
    """The ``data.<name>`` section (an empty one for a source with no settings)."""
    options = data_params.get(name) or {}
    if not isinstance(options, dict):
        raise TypeError(f"params.yaml: data.{name} must be a mapping, not {options!r}")
    return options


def replace_dir(built: Path, dest: Path) -> None:
    """Move ``built`` onto ``dest``; the old ``dest`` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old / dest.name)
    os.replace(built, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def download_source(name: str, data_params: dict, raw_dir: Path = RAW_DIR) -> Path:
    """Fetch source ``name`` into ``raw_dir/name`` atomically; returns that folder."""
    options = source_options(name, data_params)
    raw_dir.mkdir(parents=True, exist_ok=True)
    dest = raw_dir / name
    building = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=raw_dir))
    try:
        fetch_source(name, options, building)
        replace_dir(building, dest)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return dest


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m stages.download <source>")
    try:
        dest = download_source(argv[0], section("data"))
    except DatasetMissingError as exc:
        raise SystemExit(f"download: {exc}") from None
    print(f"source {argv[0]!r} ready in {dest}")


if __name__ == "__main__":
    main()
