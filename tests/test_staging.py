"""staged_dir: a folder output appears whole or not at all, and a killed run's leftovers are cleared."""
from __future__ import annotations

import os
import stat

import pytest

from stages.core.common.staging import remove_leftovers, staged_dir


def test_success_replaces_the_folder_and_leaves_nothing_beside_it(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with staged_dir(final) as building:
        (building / "new.txt").write_text("new")
        assert not (final / "new.txt").exists()
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_keeps_the_previous_folder(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_dir(final) as building:
        (building / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_leftovers_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    final = tmp_path / "synthetic"
    stale = [tmp_path / ".synthetic.k3_9abcd.tmp", tmp_path / ".synthetic.old"]
    for folder in stale:
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "half.png").write_bytes(b"\x89PNG")
    (tmp_path / ".synthetic.abcdefgh.tmp.json").write_text("{")  # a temporary file of an older version
    kept = [tmp_path / ".synthetic.notes", tmp_path / ".other.abcdefgh.tmp", tmp_path / "synthetic.old"]
    for path in kept:
        path.write_text("keep")
    with staged_dir(final) as building:
        (building / "a.txt").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["synthetic", *(p.name for p in kept)])
    assert remove_leftovers(final) == []


def test_the_folder_gets_the_usual_permissions_not_mkdtemps_private_ones(tmp_path):
    mask = os.umask(0o022)
    try:
        with staged_dir(tmp_path / "out") as building:
            (building / "a.txt").write_text("a")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_atomic_path_writes_the_same_bytes_as_a_direct_write(tmp_path):
    """torch.save names its zip records after the file: a random temporary name would change the bytes."""
    import torch

    from stages.core.common.io import atomic_path

    payload = {"w": torch.arange(6.0)}
    for name in ("a", "b"):
        with atomic_path(tmp_path / name / "model.pt") as tmp:
            torch.save(payload, tmp)
    torch.save(payload, tmp_path / "model.pt")
    direct = (tmp_path / "model.pt").read_bytes()
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes() == direct
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.pt"]


def test_atomic_path_leaves_the_old_file_when_the_write_fails(tmp_path):
    from stages.core.common.io import atomic_path

    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
