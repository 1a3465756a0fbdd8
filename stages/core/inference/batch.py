"""Running a command over many photos: expanding inputs, naming outputs, and going on past bad files.

Each photo either succeeds or fails with one message that names the file and the reason; a failure never
stops the batch. Outputs are written atomically, so an interrupted run leaves no half-written file.
"""
from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from stages.core.common.classes import CLASS_COLOURS, NUM_CLASSES
from stages.core.common.io import BadInputError, atomic_path


@dataclass
class PhotoResult:
    """What happened to one input: the files written, or the message saying why it failed."""

    path: Path
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    summary: dict = field(default_factory=dict)


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[PhotoResult]]:
    """Files, folders (their files, not recursing, hidden files skipped) and glob patterns -> photo paths in
    order, each once; and a failed result for every input that names nothing."""
    paths, missing, seen = [], [], set()
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                missing.append(PhotoResult(path, error=f"{path}: the folder holds no files"))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(entry) if Path(p).is_file())
            if not found:
                missing.append(PhotoResult(path, error=f"{entry}: no such file, folder or matching pattern"))
        for p in found:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                paths.append(p)
    return paths, missing


def output_stems(paths: list[Path]) -> list[str]:
    """A distinct file-name stem per input: its own, with ``-2``, ``-3``... when two inputs share one."""
    counts: dict[str, int] = {}
    stems = []
    for path in paths:
        counts[path.stem] = counts.get(path.stem, 0) + 1
        stems.append(path.stem if counts[path.stem] == 1 else f"{path.stem}-{counts[path.stem]}")
    return stems


def run_batch(paths: list[Path], work: Callable[[Path, str], PhotoResult], desc: str) -> list[PhotoResult]:
    """``work(path, stem)`` for every photo, with a progress bar; a :class:`BadInputError`, or an ``OSError`` or
    ``ValueError`` raised while reading or writing, becomes that photo's failure and the batch goes on."""
    results = []
    for path, stem in tqdm(list(zip(paths, output_stems(paths))), desc=desc, unit="photo", disable=len(paths) < 2):
        try:
            results.append(work(path, stem))
        except BadInputError as exc:
            results.append(PhotoResult(path, error=str(exc)))
        except (OSError, ValueError) as exc:
            results.append(PhotoResult(path, error=f"{path}: {exc}"))
    return results


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """``(H, W)`` uint8 class ids as an 8-bit palette PNG: the pixel values are the ids, shown in class colours."""
    image = Image.fromarray(np.ascontiguousarray(labels, np.uint8), mode="P")
    palette = np.zeros((256, 3), np.uint8)
    palette[:NUM_CLASSES] = CLASS_COLOURS
    image.putpalette(palette.ravel().tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
