"""Downloads against a real HTTP server on 127.0.0.1 (resume, retry, checksum) and safe extraction."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from http_fixture_server import FixtureServer

from stages.core.data.fetch import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    extract_archive,
    sha256_file,
)


@pytest.fixture()
def server():
    srv = FixtureServer()
    yield srv
    srv.close()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


PAYLOAD = _zip_bytes({f"data/images/{i}.jpg": os.urandom(5000) for i in range(20)})
NO_SLEEP = {"sleep": lambda s: None, "backoff_s": 0.0, "progress": False}


def test_download_verifies_and_renames_into_place(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    dest = download(f"{server.url}/set.zip", tmp_path / "set.zip", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                    **NO_SLEEP)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "set.zip.part").exists()


def test_interrupted_transfer_resumes_with_range_in_the_same_call(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    server.cuts = [30000, 20000]  # two dropped connections, then a full answer
    download(f"{server.url}/set.zip", tmp_path / "set.zip", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
             chunk_bytes=4096, **NO_SLEEP)
    assert (tmp_path / "set.zip").read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == [None, "bytes=30000-", "bytes=50000-"]


def test_part_file_from_an_earlier_run_is_resumed(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    (tmp_path / "set.zip.part").write_bytes(PAYLOAD[:12345])
    download(f"{server.url}/set.zip", tmp_path / "set.zip", **NO_SLEEP)
    assert (tmp_path / "set.zip").read_bytes() == PAYLOAD
    assert server.requests[0]["range"] == "bytes=12345-"


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    server.ignore_range = True
    (tmp_path / "set.zip.part").write_bytes(b"stale bytes that must not stay")
    download(f"{server.url}/set.zip", tmp_path / "set.zip", **NO_SLEEP)
    assert (tmp_path / "set.zip").read_bytes() == PAYLOAD


def test_transient_errors_are_retried_with_backoff(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    server.fail_statuses = [503, 502]
    waits = []
    download(f"{server.url}/set.zip", tmp_path / "set.zip", sleep=waits.append, backoff_s=0.5, progress=False)
    assert waits == [0.5, 1.0]
    assert (tmp_path / "set.zip").read_bytes() == PAYLOAD


def test_gives_up_after_the_retries(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    server.fail_statuses = [503] * 10
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download(f"{server.url}/set.zip", tmp_path / "set.zip", retries=2, **NO_SLEEP)
    assert not (tmp_path / "set.zip").exists()


def test_not_found_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(f"{server.url}/missing.zip", tmp_path / "x.zip", **NO_SLEEP)
    assert len(server.requests) == 1


def test_wrong_checksum_fails_and_leaves_nothing(server, tmp_path):
    server.files["set.zip"] = PAYLOAD
    with pytest.raises(ChecksumError, match="sha256 mismatch") as err:
        download(f"{server.url}/set.zip", tmp_path / "set.zip", sha256="0" * 64, **NO_SLEEP)
    assert "set.zip" in str(err.value) and hashlib.sha256(PAYLOAD).hexdigest() in str(err.value)
    assert not (tmp_path / "set.zip").exists() and not (tmp_path / "set.zip.part").exists()


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()


# ------------------------------------------------------------------------------------------ archives
def _tar_with(tmp_path: Path, add) -> Path:
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def _add_file(tar: tarfile.TarFile, name: str, data: bytes = b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def test_good_zip_and_tar_extract(tmp_path):
    zpath = tmp_path / "ok.zip"
    zpath.write_bytes(_zip_bytes({"a/b.txt": b"hello", "a/c/d.txt": b"world"}))
    assert extract_archive(zpath, tmp_path / "z") == 2
    assert (tmp_path / "z/a/c/d.txt").read_bytes() == b"world"

    tpath = _tar_with(tmp_path, lambda t: (_add_file(t, "d/x.txt", b"1"), _add_link(t, "d/y.txt", "x.txt")))
    extract_archive(tpath, tmp_path / "t")
    assert (tmp_path / "t/d/y.txt").read_bytes() == b"1"


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_zip_member_outside_the_target_is_refused(tmp_path, name):
    zpath = tmp_path / "bad.zip"
    zpath.write_bytes(_zip_bytes({"ok.txt": b"fine", name: b"evil"}))
    with pytest.raises(UnsafeArchiveError, match="bad.zip"):
        extract_archive(zpath, tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists()  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_outside_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../etc/passwd")
    (tmp_path / "bad.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        extract_archive(tmp_path / "bad.zip", tmp_path / "out")


@pytest.mark.parametrize("add, message", [
    (lambda t: _add_file(t, "../evil.txt"), "'..'"),
    (lambda t: _add_file(t, "/abs/evil.txt"), "absolute"),
    (lambda t: _add_link(t, "link", "../../outside"), "points outside"),
    (lambda t: _add_link(t, "link", "/etc/passwd"), "absolute"),
    (lambda t: _add_link(t, "hard", "../outside", tarfile.LNKTYPE), "'..'|points outside"),
    (lambda t: _add_link(t, "dev", "", tarfile.CHRTYPE), "device"),
])
def test_hostile_tar_is_refused(tmp_path, add, message):
    path = _tar_with(tmp_path, add)
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_archive(path, tmp_path / "out")


def test_tar_write_through_a_chain_of_links_is_refused(tmp_path):
    def add(t):
        _add_link(t, "s", ".")  # inside, harmless alone
        _add_link(t, "l", "s/../escape.txt")  # lexically inside, really one level up

    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError):
        extract_archive(_tar_with(tmp_path, add), tmp_path / "out")
