"""Dataset adapters: one per on-disk format, all behind :class:`~stages.core.data.datasets.base.DatasetAdapter`.

A source in ``params.yaml`` names its adapter with ``adapter:`` (default: the source's own name).
Adapters are imported lazily, so one format's optional needs never slow the others down.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from stages.core.common.params import ParamsError
from stages.core.data.datasets.base import DatasetAdapter, Item, hash_split

ADAPTERS: dict[str, str] = {
    "synthetic": "stages.core.data.datasets.synthetic:SyntheticAdapter",
    "celebamask_hq": "stages.core.data.datasets.celebamask_hq:CelebAMaskHQAdapter",
    "lapa": "stages.core.data.datasets.lapa:LaPaAdapter",
    "mut1ny": "stages.core.data.datasets.mut1ny:Mut1nyAdapter",
    "folder": "stages.core.data.datasets.folder:FolderAdapter",
}


def adapter_class(kind: str, source: str | None = None) -> type[DatasetAdapter]:
    if kind not in ADAPTERS:
        where = f"params.yaml: data.{source}.adapter: " if source else ""
        raise ParamsError(f"{where}unknown dataset adapter {kind!r}; known adapters: {', '.join(sorted(ADAPTERS))}")
    module_name, class_name = ADAPTERS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_adapter(source: str, root: str | Path, options: dict[str, Any] | None = None) -> DatasetAdapter:
    """The adapter for a configured source; ``options`` is ``params.yaml``'s ``data.<source>`` section."""
    options = dict(options or {})
    cls = adapter_class(options.get("adapter", source), source)
    cls.check_options(source, options)
    return cls(root, options)


def check_sources(data: Any) -> None:
    """Refuse a ``data`` section whose ``sources`` is not a non-empty list of configured sources, or whose source
    sections name an unknown adapter or keys that adapter does not read. Raises :class:`ParamsError`."""
    sources = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
        raise ParamsError(f"params.yaml: data.sources must be a non-empty list of source names, not {sources!r}")
    for source in sources:
        options = data.get(source) or {}
        if not isinstance(options, dict):
            raise ParamsError(f"params.yaml: data.{source} must be a mapping, not {options!r}")
        adapter_class(options.get("adapter", source), source).check_options(source, options)


__all__ = ["ADAPTERS", "DatasetAdapter", "Item", "adapter_class", "build_adapter", "check_sources", "hash_split"]
