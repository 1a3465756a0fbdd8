"""Downloading with resume and checksums, and extracting archives safely.

Downloads go to ``<dest>.part`` first. An interrupted transfer (in this process or an earlier one)
resumes with an HTTP ``Range`` request; transient failures are retried with exponential backoff; the
finished file is checked against its sha256 and only then renamed onto ``dest``.

Extraction refuses members with absolute paths, ``..`` components, links that point outside the
target folder, and device files or FIFOs; an unreadable archive raises :class:`BadArchiveError`.
"""
from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from stages.core.common.io import is_html

CHUNK_BYTES = 1 << 20
RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A download that failed for good (after retries, or with a non-retryable status)."""


class ChecksumError(DownloadError):
    """A file whose sha256 differs from the configured one."""


class UnsafeArchiveError(ValueError):
    """An archive member that would land outside the extraction folder, or is not a plain file/folder/link."""


class BadArchiveError(ValueError):
    """A file that is not a readable zip or tar archive (truncated, corrupt, or something else entirely)."""


def sha256_file(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None) -> None:
    """Raise :class:`ChecksumError` naming the file and both digests when they differ; no-op if ``expected`` is empty."""
    if not expected:
        return
    actual = sha256_file(path)
    if actual.lower() != str(expected).strip().lower():
        raise ChecksumError(f"{path}: sha256 mismatch: expected {expected}, got {actual}")


def _open_range(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "faceparse-pipeline/0.1"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _transfer_once(url: str, part: Path, timeout: float, chunk_bytes: int) -> None:
    """One attempt: append to ``part`` from where it stops. Raises on any interruption."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open_range(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the .part already holds the whole file; the checksum decides
        raise
    with response:
        status = getattr(response, "status", 200)
        if offset and status != 206:
            offset = 0  # the server ignored Range: start again from zero
        expected_total = response.headers.get("Content-Length")
        expected_total = offset + int(expected_total) if expected_total is not None else None
        with open(part, "r+b" if offset else "wb") as fh:
            fh.seek(offset)
            fh.truncate()
            while block := response.read(chunk_bytes):
                fh.write(block)
        if expected_total is not None and part.stat().st_size < expected_total:
            raise http.client.IncompleteRead(b"", expected_total - part.stat().st_size)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in RETRYABLE_HTTP
    return isinstance(exc, (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError))


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    chunk_bytes: int = CHUNK_BYTES,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (resume, retry, verify, atomic rename) and return ``dest``.

    ``<dest>.part`` holds the bytes so far and survives a crash, so the next call resumes. Retries
    wait ``backoff_s * 2**attempt`` seconds. A checksum mismatch deletes the ``.part`` (the bytes are
    wrong; resuming would keep them) and raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            wait = backoff_s * 2 ** (attempt - 1)
            print(f"download {url}: {last_error}; retry {attempt}/{retries} in {wait:.1f} s", flush=True)
            sleep(wait)
        try:
            _transfer_once(url, part, timeout_s, chunk_bytes)
            break
        except Exception as exc:  # sorted into retryable or not just below
            if not _is_retryable(exc):
                raise DownloadError(f"{url}: download failed: {exc}") from exc
            last_error = exc
    else:
        raise DownloadError(f"{url}: download failed after {retries + 1} attempts: {last_error}")
    try:
        verify_sha256(part, sha256)
    except ChecksumError as exc:
        part.unlink()
        raise ChecksumError(f"{url}: {exc}") from None
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------------------- archives

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: str | os.PathLike) -> bool:
    name = str(path).lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def _safe_member_path(target: Path, name: str, archive: Path) -> Path:
    """Where member ``name`` lands inside ``target``; refuses absolute paths and ``..``."""
    clean = name.replace("\\", "/")
    pure = PurePosixPath(clean)
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in pure.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has a '..' component")
    return target.joinpath(*[p for p in pure.parts if p not in ("", ".")])


def _check_link(target: Path, member_path: Path, link: str, archive: Path, name: str, hard: bool) -> None:
    """Refuse a link whose target resolves outside ``target``."""
    link = link.replace("\\", "/")
    if link.startswith("/"):
        raise UnsafeArchiveError(f"{archive}: link {name!r} points to the absolute path {link!r}")
    base = target if hard else member_path.parent
    resolved = os.path.normpath(os.path.join(base, link))
    root = os.path.normpath(target)
    if resolved != root and not resolved.startswith(root + os.sep):
        raise UnsafeArchiveError(f"{archive}: link {name!r} -> {link!r} points outside the archive")


def _ensure_inside(target: Path, path: Path, archive: Path, name: str) -> None:
    """Refuse a write whose real location (after links made by earlier members) is outside ``target``."""
    root = os.path.realpath(target)
    real = os.path.realpath(path)
    if real != root and not real.startswith(root + os.sep):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the archive (via a link)")


def _extract_tar(archive: Path, target: Path) -> int:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            path = _safe_member_path(target, member.name, archive)
            if member.issym() or member.islnk():
                _check_link(target, path, member.linkname, archive, member.name, hard=member.islnk())
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or FIFO")
        for member in members:
            path = _safe_member_path(target, member.name, archive)
            _ensure_inside(target, path.parent, archive, member.name)
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.issym():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(member.linkname, path)
                _ensure_inside(target, path, archive, member.name)
            elif member.islnk():
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(_safe_member_path(target, member.linkname, archive), path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK_BYTES)
        return len(members)


def _extract_zip(archive: Path, target: Path) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        links = {}
        for info in infos:
            path = _safe_member_path(target, info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode("utf-8")
                _check_link(target, path, link, archive, info.filename, hard=False)
                links[info.filename] = link
        for info in infos:
            path = _safe_member_path(target, info.filename, archive)
            _ensure_inside(target, path.parent, archive, info.filename)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if info.filename in links:
                os.symlink(links[info.filename], path)
                _ensure_inside(target, path, archive, info.filename)
                continue
            with zf.open(info) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
        return len(infos)


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> int:
    """Extract a zip or tar(.gz/.bz2/.xz) ``archive`` into ``target``; returns the member count.

    Every member is checked before anything is written, so a hostile archive leaves nothing behind
    but an :class:`UnsafeArchiveError` naming the archive and the member.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise BadArchiveError(f"{archive}: corrupt or truncated archive ({exc})") from None
    with open(archive, "rb") as fh:
        head = fh.read(512)
    if is_html(head):
        raise BadArchiveError(f"{archive}: an HTML page, not an archive (an error or login page saved in its place?)")
    raise BadArchiveError(f"{archive}: not a zip or tar archive, or one truncated before its index")
