"""Fetching a configured source into ``data/raw/<source>`` and finding the dataset inside it.

A source's ``uri`` is an http(s) URL, a local archive, or a local directory:

- a directory is used in place, not copied: ``source.json`` points at it, with a fingerprint of its
  file list (paths, sizes, modification times) so that a changed folder changes the stage output;
  a symlink in it that is broken or points outside it is refused;
- a local archive is checked against ``sha256`` (when set) and extracted;
- a URL is downloaded (resumable, retried, checked) into the download cache, then extracted.

The ``synthetic`` adapter has no uri: its faces are generated here.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import Field

from stages.core.common.io import BadInputError, write_json_atomic
from stages.core.common.params import ParamsSection
from stages.core.data.dataset_root import POINTER_FILE, resolve_dataset_root  # noqa: F401 (re-exported)
from stages.core.data.fetch import download, extract_archive, is_archive, verify_sha256

# Downloads live outside data/raw/<source>: DVC deletes a stage's outputs before it runs, and a
# half-finished download must survive that to resume.
DOWNLOAD_CACHE = Path(os.environ.get("FACEPARSE_DOWNLOAD_CACHE", "data/downloads"))

OFFICIAL_PAGES: dict[str, str] = {
    "celebamask_hq": "https://github.com/switchablenorms/CelebAMask-HQ",
    "lapa": "https://github.com/JDAI-CV/lapa-dataset",
    "mut1ny": "https://www.mut1ny.com/face-headsegmentation-dataset",
    "folder": "docs/datasets.md (any images/ + labels/ folder with a mapping)",
}


class DatasetMissingError(FileNotFoundError):
    """A configured dataset that is not where params.yaml says; the message says how to get it."""


def missing_dataset_message(name: str, adapter: str, uri: str | None) -> str:
    page = OFFICIAL_PAGES.get(adapter, "its publisher's page")
    where = f"at {uri!r}" if uri else "(no uri is configured)"
    return (
        f"dataset {name!r} (adapter {adapter}) not found {where}. Get it from {page} "
        f"(accept its licence), then either unpack it to a folder or keep the archive, and set "
        f"data.{name}.uri in params.yaml to that folder or archive (or to an http(s) URL), e.g. "
        f"dvc exp run -S 'data.{name}.uri=/path/to/{adapter}'. See docs/datasets.md."
    )


def _check_link(root: Path, path: Path) -> None:
    """Refuse a symlink in a folder source that is broken or leads outside the folder (as archives do)."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if not os.path.exists(real):
        raise BadInputError(path, f"broken symlink (to {os.readlink(path)!r}, which does not exist)")
    if real != real_root and not real.startswith(real_root + os.sep):
        raise BadInputError(path, f"symlink to {real} points outside the dataset folder {root}")


def folder_fingerprint(root: Path) -> dict[str, Any]:
    """``{"files": n, "bytes": total, "sha256": digest of (path, size, mtime) lines}`` for a folder tree.

    Raises ``BadInputError`` naming a symlink that is broken or points outside ``root``.
    """
    digest = hashlib.sha256()
    files = total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + filenames:
            if os.path.islink(os.path.join(dirpath, name)):
                _check_link(root, Path(dirpath) / name)
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            st = path.stat()
            files += 1
            total += st.st_size
            digest.update(f"{path.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return {"files": files, "bytes": total, "sha256": digest.hexdigest()}


def _archive_name(uri: str) -> str:
    name = Path(unquote(urlparse(uri).path)).name
    return name or "download"


class SyntheticSource(ParamsSection):
    """``data.<source>`` of the embedded synthetic faces: how many, their side in pixels, and the seed."""

    SECTION = "data.synthetic"
    adapter: str = "synthetic"
    count: int = Field(400, ge=1)
    size: int = Field(128, ge=32)
    seed: int = 0


def fetch_source(name: str, options: dict[str, Any], dest: Path) -> None:
    """Make ``dest`` hold source ``name``. ``options`` is its ``data.<name>`` params section.

    Raises :class:`DatasetMissingError` naming the dataset, its official page and where to put it.
    """
    dest = Path(dest)
    adapter = options.get("adapter", name)
    if adapter == "synthetic":
        from stages.core.data.synthetic_faces import generate_dataset

        faces = SyntheticSource.from_params(options, "params.yaml", f"data.{name}")
        generate_dataset(dest, count=faces.count, size=faces.size, seed=faces.seed)
        return
    uri = options.get("uri")
    if not uri:
        raise DatasetMissingError(missing_dataset_message(name, adapter, None))
    uri = str(uri)
    sha256 = options.get("sha256") or None
    if urlparse(uri).scheme in ("http", "https"):
        archive = download(uri, DOWNLOAD_CACHE / name / _archive_name(uri), sha256=sha256)
        _unpack(archive, dest, uri)
        return
    path = Path(os.path.expanduser(uri))
    if not path.is_absolute():
        path = Path.cwd() / path
    if path.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        pointer = {"root": str(path.resolve()), "uri": uri, **folder_fingerprint(path)}
        write_json_atomic(dest / POINTER_FILE, pointer)
        return
    if path.is_file():
        verify_sha256(path, sha256)
        _unpack(path, dest, uri)
        return
    raise DatasetMissingError(missing_dataset_message(name, adapter, uri))


def _unpack(archive: Path, dest: Path, uri: str) -> None:
    if not is_archive(archive):
        raise ValueError(f"{uri}: not a directory and not a .zip/.tar(.gz/.bz2/.xz) archive")
    extract_archive(archive, dest)
