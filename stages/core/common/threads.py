"""The per-process thread budget: how many CPU threads torch and ONNX Runtime may use.

Each params section has its own ``threads``. The environment variable ``FACEPARSE_THREADS``, when set, replaces
every one of them for the process it is set in, so that ``N`` jobs on one machine (``dvc queue start -j N``,
or ``torchrun --nproc_per_node N`` on CPU) can split its cores without editing params:
``FACEPARSE_THREADS=1 dvc queue start -j 2`` on two cores. Thread counts change speed, not results, so DVC does
not track them. No torch import here: the ONNX-only photo path uses this too.
"""
from __future__ import annotations

import os

THREADS_ENV = "FACEPARSE_THREADS"


def thread_budget(configured: int) -> int:
    """``FACEPARSE_THREADS`` when set (a positive integer), else ``configured``; raises ``ValueError`` naming it."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return int(configured)
    try:
        threads = int(raw)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"environment variable {THREADS_ENV}={raw!r}: expected a positive number of threads")
    return threads
