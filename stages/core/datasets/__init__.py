"""Dataset adapters: one per on-disk format, all behind :class:`~stages.core.datasets.base.DatasetAdapter`.

A source in ``params.yaml`` names its adapter with ``adapter:`` (default: the source's own name).
Adapters are imported lazily, so one format's optional needs never slow the others down.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from stages.core.datasets.base import DatasetAdapter, Item, hash_split

ADAPTERS: dict[str, str] = {
    "synthetic": "stages.core.datasets.synthetic:SyntheticAdapter",
    "celebamask_hq": "stages.core.datasets.celebamask_hq:CelebAMaskHQAdapter",
    "lapa": "stages.core.datasets.lapa:LaPaAdapter",
    "mut1ny": "stages.core.datasets.mut1ny:Mut1nyAdapter",
    "folder": "stages.core.datasets.folder:FolderAdapter",
}


def adapter_class(kind: str) -> type[DatasetAdapter]:
    if kind not in ADAPTERS:
        raise KeyError(f"unknown dataset adapter {kind!r}; known adapters: {', '.join(sorted(ADAPTERS))}")
    module_name, class_name = ADAPTERS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_adapter(source: str, root: str | Path, options: dict[str, Any] | None = None) -> DatasetAdapter:
    """The adapter for a configured source; ``options`` is ``params.yaml``'s ``data.<source>`` section."""
    options = dict(options or {})
    return adapter_class(options.get("adapter", source))(root, options)


__all__ = ["ADAPTERS", "DatasetAdapter", "Item", "adapter_class", "build_adapter", "hash_split"]
