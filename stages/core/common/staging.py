"""Replacing a whole output folder at once: build it beside the old one, then swap."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def remove_leftovers(final: str | Path) -> list[Path]:
    """Delete what interrupted writes of ``final`` left beside it; returns what was deleted.

    That is ``.{name}.XXXXXXXX.tmp*`` (the temporary folder of :func:`staged_dir` or of
    :func:`stages.core.common.io.atomic_path`) and ``.{name}.old`` (the previous version during the swap). A killed
    process leaves them behind: hidden, never under the final name, but they take space and, beside an
    output such as ``data/raw/<source>``, they would change the hash of a folder a later stage depends on.
    Only one writer of ``final`` may run at a time (DVC's lock ensures it for stages).
    """
    final = Path(final)
    stale = re.compile(rf"\.{re.escape(final.name)}\.(old|[A-Za-z0-9_]{{8}}\.tmp.*)")
    removed = []
    if final.parent.is_dir():
        for path in final.parent.iterdir():
            if stale.fullmatch(path.name):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_dir(final: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final``, on failure it is deleted.

    Readers never see a half-written output folder, and a failed run leaves the previous one intact.
    A run killed before it could clean up leaves hidden leftovers beside ``final``; the next run
    deletes them first (:func:`remove_leftovers`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); the output gets the usual permissions
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)  # a kill just before this leaves no `final` (a missing output) and `.old`
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
