"""DVC stage: fetch one configured source into ``data/raw/<source>``.

Usage: ``python -m stages.download <source>`` (a ``foreach`` stage over ``data.sources``). Reads
``data.<source>`` from params.yaml. The output is built in a temporary folder beside the target and
renamed into place, so an interrupted run never leaves a half-filled ``data/raw/<source>``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from stages.core.common.params import section
from stages.core.common.staging import staged_dir
from stages.core.data.sources import DatasetMissingError, fetch_source

RAW_DIR = Path("data/raw")


def source_options(name: str, data_params: dict) -> dict:
    """The ``data.<name>`` section (an empty one for a source with no settings)."""
    options = data_params.get(name) or {}
    if not isinstance(options, dict):
        raise TypeError(f"params.yaml: data.{name} must be a mapping, not {options!r}")
    return options


def download_source(name: str, data_params: dict, raw_dir: Path = RAW_DIR) -> Path:
    """Fetch source ``name`` into ``raw_dir/name`` atomically; returns that folder."""
    options = source_options(name, data_params)
    dest = raw_dir / name
    with staged_dir(dest) as building:
        fetch_source(name, options, building)
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
