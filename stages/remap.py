"""DVC stage `remap`: every source -> unified 11-class labels, manifests, a skip report and label statistics.

Reads params ``data`` (sources and their options) and ``remap``. Writes ``data/unified/``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from stages.core.common.io import write_bytes_atomic, write_json_atomic
from stages.core.common.params import section
from stages.core.common.staging import staged_dir
from stages.core.data.dataset_root import resolve_dataset_root
from stages.core.data.datasets import check_sources
from stages.core.data.label_stats import class_weights, label_statistics
from stages.core.data.unify import PIXEL_COLUMNS, UnifySettings, unify_source, write_landmarks

RAW_DIR = Path("data/raw")
OUT_DIR = Path("data/unified")
WEIGHT_MODES = ("equal", "empirical", "proportional")


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_bytes_atomic(path, frame.to_csv(index=False).encode())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data, settings = section("data"), UnifySettings.load()
    check_sources(data)
    manifests, reports, landmarks = [], [], {}
    with staged_dir(OUT_DIR) as out:
        for source in data["sources"]:
            root = resolve_dataset_root(RAW_DIR / source)
            # labels are written under the final folder's path, which is where later stages read them
            manifest, report, source_landmarks = unify_source(source, root, data.get(source) or {}, out, settings)
            manifest["label"] = manifest["label"].str.replace(str(out), str(OUT_DIR), regex=False)
            _write_csv(out / source / "manifest.csv", manifest)
            manifests.append(manifest)
            reports.append(report)
            landmarks.update(source_landmarks)
            logging.info("%s: %d items unified, %d skipped", source, len(manifest), len(report))
        combined = pd.concat(manifests, ignore_index=True)
        _write_csv(out / "manifest.csv", combined)
        _write_csv(out / "report.csv", pd.concat(reports, ignore_index=True))
        write_landmarks(out / "landmarks.json", landmarks)
        write_json_atomic(out / "stats.json", label_statistics(combined))
        train_pixels = combined.loc[combined["split"] == "train", PIXEL_COLUMNS].sum().to_numpy()
        write_json_atomic(out / "class_weights.json",
                          {mode: [round(float(w), 6) for w in class_weights(train_pixels, mode)] for mode in WEIGHT_MODES})


if __name__ == "__main__":
    main()
