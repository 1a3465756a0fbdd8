"""The download stage: builds data/raw/<source> in a temp folder and renames it into place."""
from __future__ import annotations

import json

import pytest

from stages import download
from stages.core.data.sources import DatasetMissingError


def test_directory_source_replaces_the_old_output_atomically(tmp_path):
    data = tmp_path / "faces"
    data.mkdir()
    raw = tmp_path / "raw"
    (raw / "mine").mkdir(parents=True)
    (raw / "mine" / "stale.txt").write_text("old")
    dest = download.download_source("mine", {"mine": {"adapter": "folder", "uri": str(data)}}, raw)
    assert dest == raw / "mine"
    assert json.loads((dest / "source.json").read_text())["root"] == str(data.resolve())
    assert not (dest / "stale.txt").exists()
    assert [p.name for p in raw.iterdir()] == ["mine"]  # no temp folders left


def test_failure_keeps_the_old_output_and_cleans_up(tmp_path):
    raw = tmp_path / "raw"
    (raw / "lapa").mkdir(parents=True)
    (raw / "lapa" / "keep.txt").write_text("old")
    with pytest.raises(DatasetMissingError):
        download.download_source("lapa", {"lapa": {"uri": str(tmp_path / "absent")}}, raw)
    assert (raw / "lapa" / "keep.txt").read_text() == "old"
    assert [p.name for p in raw.iterdir()] == ["lapa"]


def test_section_must_be_a_mapping():
    with pytest.raises(TypeError, match="data.x"):
        download.source_options("x", {"x": "oops"})


def test_main_reads_params(tmp_path, monkeypatch):
    data = tmp_path / "faces"
    data.mkdir()
    (tmp_path / "params.yaml").write_text(f"data:\n  sources: [mine]\n  mine: {{adapter: folder, uri: {data}}}\n")
    monkeypatch.chdir(tmp_path)
    download.main(["mine"])
    assert (tmp_path / "data" / "raw" / "mine" / "source.json").exists()


def test_main_exits_with_the_missing_dataset_message(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("data:\n  sources: [lapa]\n  lapa: {uri: /nowhere/LaPa}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="lapa-dataset.*data.lapa.uri"):
        download.main(["lapa"])
