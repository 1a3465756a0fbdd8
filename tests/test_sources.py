"""fetch_source for each kind of uri, the missing-dataset message, and resolve_dataset_root."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from http_fixture_server import FixtureServer

from stages.core.data import sources
from stages.core.data.fetch import ChecksumError, UnsafeArchiveError
from stages.core.data.sources import DatasetMissingError, fetch_source, resolve_dataset_root


def _dataset_zip(top: str = "CelebAMask-HQ") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/images/0.jpg", b"jpg")
        zf.writestr(f"{top}/labels/0.png", b"png")
    return buf.getvalue()


@pytest.fixture()
def download_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DOWNLOAD_CACHE", tmp_path / "downloads")
    return tmp_path / "downloads"


def test_local_directory_is_used_in_place(tmp_path):
    data = tmp_path / "mydata"
    (data / "images").mkdir(parents=True)
    (data / "images" / "0.jpg").write_bytes(b"x")
    fetch_source("celebamask_hq", {"uri": str(data)}, tmp_path / "raw")
    pointer = json.loads((tmp_path / "raw" / "source.json").read_text())
    assert pointer["root"] == str(data.resolve()) and pointer["files"] == 1
    assert resolve_dataset_root(tmp_path / "raw") == data.resolve()
    assert not (tmp_path / "raw" / "images").exists()  # not copied


def test_fingerprint_changes_when_the_folder_changes(tmp_path):
    data = tmp_path / "mydata"
    data.mkdir()
    (data / "a.png").write_bytes(b"1")
    before = sources.folder_fingerprint(data)
    (data / "b.png").write_bytes(b"22")
    after = sources.folder_fingerprint(data)
    assert before["sha256"] != after["sha256"] and after["files"] == 2 and after["bytes"] == 3


def test_local_archive_is_checked_and_extracted(tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(_dataset_zip())
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    fetch_source("celebamask_hq", {"uri": str(archive), "sha256": sha}, tmp_path / "raw")
    root = resolve_dataset_root(tmp_path / "raw")
    assert root == tmp_path / "raw" / "CelebAMask-HQ"
    assert (root / "labels" / "0.png").read_bytes() == b"png"


def test_local_archive_with_wrong_checksum_is_refused(tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(_dataset_zip())
    with pytest.raises(ChecksumError, match="set.zip"):
        fetch_source("lapa", {"uri": str(archive), "sha256": "f" * 64}, tmp_path / "raw")


def test_url_is_downloaded_to_the_cache_and_extracted(tmp_path, download_cache):
    server = FixtureServer()
    try:
        server.files["LaPa.zip"] = _dataset_zip("LaPa")
        server.cuts = [100]  # one interrupted transfer on the way
        fetch_source("lapa", {"uri": f"{server.url}/LaPa.zip"}, tmp_path / "raw")
    finally:
        server.close()
    assert (download_cache / "lapa" / "LaPa.zip").exists()
    assert (resolve_dataset_root(tmp_path / "raw") / "images" / "0.jpg").read_bytes() == b"jpg"


def test_hostile_archive_source_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escape.txt", b"x")
    (tmp_path / "evil.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError):
        fetch_source("folder", {"uri": str(tmp_path / "evil.zip")}, tmp_path / "raw")


@pytest.mark.parametrize("name, page", [("celebamask_hq", "switchablenorms/CelebAMask-HQ"),
                                        ("lapa", "JDAI-CV/lapa-dataset"), ("mut1ny", "mut1ny.com")])
def test_missing_dataset_names_it_its_page_and_where_to_put_it(tmp_path, name, page):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetMissingError) as err:
        fetch_source(name, {"uri": str(missing)}, tmp_path / "raw")
    message = str(err.value)
    assert name in message and page in message and str(missing) in message and f"data.{name}.uri" in message


def test_no_uri_is_a_missing_dataset(tmp_path):
    with pytest.raises(DatasetMissingError, match="no uri is configured"):
        fetch_source("celebamask_hq", {}, tmp_path / "raw")


def test_resolve_keeps_a_multi_entry_root(tmp_path):
    for split in ("train", "val"):
        (tmp_path / "raw" / split).mkdir(parents=True)
    assert resolve_dataset_root(tmp_path / "raw") == tmp_path / "raw"
