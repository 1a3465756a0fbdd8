"""Generic torch helpers shared by the parser's and the inpainter's training and by the benchmark.

Seeding, the device, data loaders, weight snapshots, checkpoints that hold tensors and plain data only, and the
params a checkpoint must share with a run that resumes it.
Nothing here knows about a particular model or loss.
"""
from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from stages.core.common.io import atomic_path
from stages.core.common.threads import thread_budget


class CheckpointError(ValueError):
    """A checkpoint that cannot or must not be loaded; the message names the file and the reason."""


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed python, numpy and torch; with ``threads``, also set torch's threads to the budget
    (:func:`stages.core.common.threads.thread_budget`: ``FACEPARSE_THREADS`` overrides the configured count)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(thread_budget(threads))
    cv2.setNumThreads(1)


def training_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seeded_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A single-process loader whose shuffling depends only on ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0,
                      worker_init_fn=seeded_worker, drop_last=False)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's state dict that later training steps do not change."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write ``payload`` (tensors and plain data only) atomically, so a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``: tensors and plain data, never arbitrary pickled objects.

    Raises ``FileNotFoundError`` or :class:`CheckpointError`, each naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (torch.save writes a zip archive; "
                              "this file is not one)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: refused to load: the checkpoint holds objects other than tensors and plain "
                              f"data, and loading them could run code from the file ({reason})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(payload).__name__}")
    return payload


def require_keys(payload: dict, keys: tuple[str, ...], path: str | Path) -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the first of ``keys`` that ``payload`` lacks."""
    missing = [k for k in keys if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of this kind: it lacks {', '.join(missing)}")


_ABSENT = object()


def resume_differences(saved: dict[str, Any], now: dict[str, Any], section: str, may_change: tuple[str, ...] = (),
                       value_before_key_existed: dict[str, Any] | None = None) -> list[str]:
    """The keys of one params section whose value in a checkpoint's ``saved`` config differs from ``now``, each as
    ``"<section>.<key>: <saved> there, <now> here"``; keys in ``may_change`` are not compared.

    A key that ``saved`` lacks because the checkpoint predates it is compared as ``value_before_key_existed[key]``:
    what the code did before the key was added, which need not be today's default (a run from before
    ``inpainter.parser_guide`` trained on true labels, ``parser_guide`` 0, while the default is now 1).
    """
    before = value_before_key_existed or {}
    differ = []
    for key in sorted(set(saved) | set(now)):
        if key in may_change:
            continue
        there, here = saved.get(key, before.get(key, _ABSENT)), now.get(key, _ABSENT)
        if there != here:
            shown = ["absent" if v is _ABSENT else repr(v) for v in (there, here)]
            differ.append(f"{section}.{key}: {shown[0]} there, {shown[1]} here")
    return differ
