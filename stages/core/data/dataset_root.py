"""Where a downloaded source's data lies inside ``data/raw/<source>``.

Apart from :mod:`stages.core.data.sources` so that the remap stage, which only reads ``data/raw``, does not depend on
the download code.
"""
from __future__ import annotations

import json
from pathlib import Path

POINTER_FILE = "source.json"


def resolve_dataset_root(raw_dir: Path) -> Path:
    """The folder an adapter reads.

    For a directory source, the pointed-to folder. For an extracted archive, ``raw_dir`` itself, or
    the single top-level folder the archive wrapped everything in (``CelebAMask-HQ/...``).
    """
    raw_dir = Path(raw_dir)
    pointer = raw_dir / POINTER_FILE
    if pointer.exists():
        return Path(json.loads(pointer.read_text())["root"])
    root = raw_dir
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))] if root.is_dir() else []
        if len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        else:
            return root
