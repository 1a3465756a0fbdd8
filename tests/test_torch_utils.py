"""Checkpoints: atomic writes, plain-data loading, and a clear refusal of pickled objects."""
from __future__ import annotations

import pytest
import torch

from stages.core.common.torch_utils import CheckpointError, load_checkpoint, resume_differences, save_checkpoint
from stages.core.inpainting.training import load_inpainter
from stages.core.models.registry import load_parser


class Payload:
    """Stands for anything a hostile checkpoint could carry: unpickling it would import and call code."""

    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


def test_tensors_and_plain_data_round_trip(tmp_path):
    path = tmp_path / "ok.pt"
    payload = {"state_dict": {"w": torch.arange(3.0)}, "config": {"widths": (8, 16), "name": "x", "lr": 0.1},
               "history": [{"epoch": 1, "loss": 0.5, "f1": None}]}
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], payload["state_dict"]["w"])
    assert loaded["config"] == payload["config"] and loaded["history"] == payload["history"]
    assert [p.name for p in tmp_path.iterdir()] == ["ok.pt"]  # no temporary file left beside it


@pytest.mark.parametrize("loader", [load_checkpoint, load_parser, load_inpainter])
def test_a_checkpoint_carrying_a_pickled_object_is_refused(tmp_path, loader):
    path = tmp_path / "handed_over.pt"
    torch.save({"state_dict": {}, "config": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: refused to load: .*objects other than tensors"):
        loader(path)


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / "parser.pt"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(CheckpointError, match=rf"{path}: not a readable PyTorch checkpoint"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_checkpoint_of_another_kind_is_named(tmp_path):
    path = tmp_path / "other.pt"
    save_checkpoint(path, {"weights": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=rf"{path}: not a checkpoint of this kind: it lacks state_dict, config"):
        load_parser(path)


def test_resume_differences_name_each_changed_key_and_read_missing_keys_as_before_they_existed():
    saved = {"lr": 0.1, "epochs": 4, "threads": 2, "dropped": 1}
    now = {"lr": 0.2, "epochs": 4, "threads": 1, "added": 0.0, "new_default": 1.0}
    assert resume_differences(saved, now, "s", may_change=("threads",)) == [
        "s.added: absent there, 0.0 here", "s.dropped: 1 there, absent here", "s.lr: 0.1 there, 0.2 here",
        "s.new_default: absent there, 1.0 here"]
    before = {"added": 0.0, "new_default": 0.0}
    assert resume_differences(saved, now, "s", ("threads",), before) == [
        "s.dropped: 1 there, absent here", "s.lr: 0.1 there, 0.2 here", "s.new_default: 0.0 there, 1.0 here"]
    assert resume_differences(saved, saved, "s") == []
