"""The three splits and the deterministic hash split, apart from the dataset adapters so that the stages that only
need the split names (cache, masks, training) do not import every adapter."""
from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def hash_split(key: str, val_fraction: float, test_fraction: float, salt: str = "") -> str:
    """Deterministic split from a stable hash of ``key``: the same id always lands in the same split."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"
