"""Bad input, one table row per kind, each driven through the real stage code.

Every row builds its bad file under ``tmp_path`` (tiny synthetic images, no real data) and runs a stage.
It expects either an error whose message names the offending file (or source) and the problem, or a
counted skip that the stage's report lists with the file and the problem. Either way the stage leaves
no partial output: no half-built output folder, no temporary files, nothing written for a skipped item.

To add a row, append a :class:`Case` to ``CASES``: ``build`` writes the bad input, ``run`` is one of the
stage drivers below (or a new one with the same two methods), ``expect`` is :class:`Raises` or
:class:`Skipped`.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import struct
import tarfile
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO_ROOT
from http_fixture_server import FixtureServer
from inference_fixtures import MASK_GREEN, tiny_unmask_models
from masks_fixtures import astronaut_face
from PIL import Image
from test_celebamask_hq import LABELS, write_merged
from test_fetch import _add_file, _add_link, _tar_with, _zip_bytes
from test_masks_stage import _write_split

from stages import cache, cli, download, remap
from stages.core.common.io import BadInputError, read_image
from stages.core.common.params import ParamsError
from stages.core.data import sources
from stages.core.data.fetch import BadArchiveError, ChecksumError, DownloadError, UnsafeArchiveError
from stages.core.data.fetch import download as fetch_download
from stages.core.masks.cache_masking import run_masks
from stages.core.masks.config import MaskParams

SOURCE = "faces"
GOOD = {n: LABELS[n] for n in (0, 1, 2)}  # 64x64 part-id labels; write_merged gives each a 64x64 photo
BAD_ID = 7  # the bad item, listed after the good ones


@dataclass
class Ctx:
    """One row's world: ``tmp`` holds the dataset, the project the stages run in, and anything else."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    forbidden: list[Path] = field(default_factory=list)  # paths a hostile input tries to write
    request: pytest.FixtureRequest | None = None
    _server: FixtureServer | None = None

    @property
    def dataset(self) -> Path:
        return self.tmp / "dataset"

    @property
    def project(self) -> Path:
        """The stages' working directory: params.yaml and data/."""
        return self.tmp / "project"

    @property
    def photos(self) -> Path:
        """The folder of photos ``faceparse unmask`` is given."""
        return self.tmp / "photos"

    @property
    def server(self) -> FixtureServer:
        if self._server is None:
            self._server = FixtureServer()
        return self._server


# ---------------------------------------------------------------------------------------- stage drivers
def _enter_project(ctx: Ctx, params: dict[str, Any]) -> None:
    ctx.project.mkdir(parents=True, exist_ok=True)
    (ctx.project / "params.yaml").write_text(yaml.safe_dump(params))
    ctx.monkeypatch.chdir(ctx.project)
    ctx.monkeypatch.setattr(sources, "DOWNLOAD_CACHE", ctx.project / "data" / "downloads")


def _temp_files(folder: Path) -> list[str]:
    """Hidden files or folders under ``folder``: every temporary the stages make is named ``.name.XXXX.tmp…``."""
    return [f"temporary {p}" for p in folder.rglob(".*")] if folder.exists() else []


@dataclass(frozen=True)
class Remap:
    """The download stage then the remap stage (as ``dvc repro`` runs them) on the folder ``ctx.dataset``."""

    options: dict[str, Any] = field(default_factory=lambda: {"adapter": "celebamask_hq"})
    on_error: str = "skip"

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        data = {"sources": [SOURCE], SOURCE: {"uri": str(ctx.dataset), **self.options}}
        _enter_project(ctx, {"data": data, "cache": {"size": 32, "workers": 1},
                             "remap": {"on_error": self.on_error, "max_skip_fraction": 0.5, "workers": 1}})
        download.download_source(SOURCE, data)
        remap.main()
        report = pd.read_csv(ctx.project / "data" / "unified" / "report.csv", dtype=str)
        return report.rename(columns={"file": "where"})

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        unified = ctx.project / "data" / "unified"
        found = _temp_files(ctx.project / "data")
        if skipped is None:
            return found + (["data/unified was written"] if unified.exists() else [])
        listed = set(pd.read_csv(unified / "manifest.csv", dtype=str)["item_id"])
        for item_id in skipped["item_id"]:
            if (unified / SOURCE / "labels" / f"{item_id}.png").exists() or item_id in listed:
                found.append(f"skipped item {item_id} was written")
        return found


@dataclass(frozen=True)
class Cache:
    """Remap the good dataset, ``damage`` it, then run the cache stage."""

    damage: Callable[[Ctx], None]

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        assert Remap()(ctx).empty
        self.damage(ctx)
        cache.main()
        raise AssertionError("the cache stage has no skip report")

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        written = ["data/cache was written"] if (ctx.project / "data" / "cache").exists() else []
        return _temp_files(ctx.project / "data") + written


@dataclass(frozen=True)
class Download:
    """The download stage (``download_source``) for a source whose section is ``options(ctx)``."""

    options: Callable[[Ctx], dict[str, Any]]

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        data = {"sources": [SOURCE], SOURCE: self.options(ctx)}
        _enter_project(ctx, {"data": data})
        download.download_source(SOURCE, data)
        raise AssertionError("the download stage has no skip report")

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        raw, downloads = ctx.project / "data" / "raw", ctx.project / "data" / "downloads"
        found = [f"left in data/raw: {p.name}" for p in raw.iterdir()] if raw.exists() else []
        # a .part file is the resume point of an interrupted download (kept on purpose); nothing else may stay
        if downloads.exists():
            found += [f"download target {p}" for p in downloads.rglob("*") if p.is_file() and p.suffix != ".part"]
        return found


@dataclass(frozen=True)
class Transfer:
    """``fetch.download`` of the server's ``faces.zip`` with one retry and no waiting (the stage's own
    five retries wait 31 s in all)."""

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        fetch_download(f"{ctx.server.url}/faces.zip", self.dest(ctx), retries=1, backoff_s=0.0,
                       sleep=lambda s: None, progress=False)
        raise AssertionError("a download has no skip report")

    @staticmethod
    def dest(ctx: Ctx) -> Path:
        return ctx.project / "data" / "downloads" / SOURCE / "faces.zip"

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        part = self.dest(ctx).with_name("faces.zip.part")
        served = ctx.server.files["faces.zip"]
        found = ["download target was written"] if self.dest(ctx).exists() else []
        if part.exists() and not served.startswith(part.read_bytes()):
            found.append("the .part holds bytes that are not the start of the file")
        return found


@dataclass(frozen=True)
class Masks:
    """``run_masks`` (the masks stage) on a cache written under ``ctx.tmp / "cache"``."""

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        _, failures = run_masks(ctx.tmp / "cache", ctx.tmp / "masks", MaskParams(seed=0, examples=2))
        return failures.rename(columns={"id": "where", "reason": "problem"})

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        out = ctx.tmp / "masks"
        found = _temp_files(out)
        listed = set(pd.read_csv(out / "manifest.csv")["id"])
        rows = len(pd.read_csv(ctx.tmp / "cache" / "train_ids.csv"))
        if len(np.load(out / "train_masked.npy")) != rows - len(skipped) or listed & set(skipped["where"]):
            found.append("a skipped photo was masked")
        return found


@dataclass(frozen=True)
class Stage:
    """A stage's ``main()`` in a project whose params.yaml is the repository's with ``override`` merged in."""

    module: str
    override: dict[str, Any]
    argv: tuple[str, ...] | None = None  # the download stage takes the source's name

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
        for section, values in self.override.items():
            params[section] = {**params[section], **values} if isinstance(values, dict) else values
        _enter_project(ctx, params)
        stage = importlib.import_module(f"stages.{self.module}")
        stage.main() if self.argv is None else stage.main(list(self.argv))
        raise AssertionError(f"stages.{self.module} accepted the params")

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        written = [p for name in ("data", "models", "metrics") for p in (ctx.project / name).rglob("*") if not p.is_dir()]
        return [f"{p.relative_to(ctx.project)} was written" for p in written]



GOOD_PHOTO = "good.png"  # a masked face in every unmask batch: the batch must go on past the row's photo
WORKING_COPIES = 3  # unmask holds a photo at most three times: decoded, restored, and the PNG being written


@dataclass(frozen=True)
class Unmask:
    """``faceparse unmask`` (``cli.main``) on the folder ``ctx.photos`` (``good.png``, a green-masked face, and the
    row's photos) with the tiny models of ``inference_fixtures``: ``finder`` ``green`` marks the pixels of the
    masks drawn in :data:`MASK_GREEN`, ``all`` every pixel. One report row per photo: ``where``, ``problem`` (its
    error, or its faces' statuses joined by "; "), ``faces`` and ``restored`` (0 for a failed photo).

    It checks the batch as a whole: the good photo is restored, the exit status is 1 exactly when a photo failed,
    and the memory Python allocates (tracemalloc's peak) stays under :data:`WORKING_COPIES` decoded copies of the
    largest photo plus 32 MiB: it grows with no photo's size beyond that, and not with the number of photos."""

    finder: str = "green"

    def __call__(self, ctx: Ctx) -> pd.DataFrame:
        models = ctx.request.getfixturevalue("unmask_models")
        _write_photo(ctx.photos / GOOD_PHOTO, _masked_face())
        largest = max(_decoded_bytes(p) for p in ctx.photos.iterdir())
        argv = ["unmask", str(ctx.photos), "-o", str(self.out(ctx)), "--threads", "1",
                "--model", str(models / "parser.onnx"), "--framing", str(models / "framing.json"),
                "--inpainter", str(models / "inpainter.onnx"), "--mask-finder", str(models / f"finder_{self.finder}.onnx")]
        stderr = io.StringIO()
        tracemalloc.start()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(argv)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        errors = {}
        for line in stderr.getvalue().splitlines():  # "faceparse: <photo>: <problem>"; faces left unchanged too
            where, _, problem = line.removeprefix("faceparse: ").partition(": ")
            if line.startswith("faceparse: ") and not (self.out(ctx) / f"{Path(where).stem}.json").exists():
                errors[where] = problem
        rows = []
        for photo in sorted(ctx.photos.iterdir()):
            summary_file = self.out(ctx) / f"{photo.stem}.json"
            if str(photo) in errors:
                rows.append({"where": str(photo), "problem": errors[str(photo)], "faces": 0, "restored": 0})
            else:
                summary = json.loads(summary_file.read_text())
                rows.append({"where": str(photo), "problem": "; ".join(f["status"] for f in summary["faces"]),
                             "faces": len(summary["faces"]), "restored": summary["restored_faces"]})
        report = pd.DataFrame(rows)
        good = report[report["where"].str.endswith(GOOD_PHOTO)].iloc[0]
        assert (good["faces"], good["restored"]) == (1, 1), report.to_string()
        assert code == (cli.EXIT_SOME_FAILED if errors else cli.EXIT_OK), (code, stderr.getvalue())
        bound = WORKING_COPIES * largest + 32 * 2**20
        assert peak < bound, f"peak {peak / 2**20:.0f} MiB, bound {bound / 2**20:.0f} MiB"
        return report[~report["where"].str.endswith(GOOD_PHOTO)].reset_index(drop=True)

    @staticmethod
    def out(ctx: Ctx) -> Path:
        return ctx.tmp / "unmasked"

    def leftovers(self, ctx: Ctx, skipped: pd.DataFrame | None) -> list[str]:
        """Temporaries; files of a failed photo; a photo reported restored whose output keeps a green mask pixel."""
        found = _temp_files(self.out(ctx))
        for photo in ctx.photos.iterdir():
            written = sorted(p.name for p in self.out(ctx).glob(f"{photo.stem}.*"))
            summary = self.out(ctx) / f"{photo.stem}.json"
            if not summary.exists():
                found += [f"{name} was written for a failed photo" for name in written]
                continue
            if written != [f"{photo.stem}.json", f"{photo.stem}.unmasked.png"]:
                found.append(f"{photo.name}: wrote {written}")
            if json.loads(summary.read_text())["restored_faces"] and self.finder == "green":
                left = int(_green(np.asarray(Image.open(self.out(ctx) / f"{photo.stem}.unmasked.png").convert("RGB"))).sum())
                if left:
                    found.append(f"{photo.name}: {left} pixels of the mask are left after restoring")
        return found


# ------------------------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class Raises:
    """The stage stops with ``error``; its message names ``names`` (a file, or the source) and matches ``problem``."""

    error: type[BaseException]
    names: str
    problem: str


@dataclass(frozen=True)
class Skipped:
    """The stage goes on; its report lists ``count`` skips, the first at ``names`` for ``problem``."""

    names: str
    problem: str
    count: int = 1


@dataclass(frozen=True)
class Unmasked:
    """``faceparse unmask`` goes on; its report for the photo ``names`` says ``problem`` (the photo's error, or its
    faces' statuses), with ``faces`` faces and ``restored`` of them restored; ``check(ctx)`` lists any other fault."""

    names: str
    problem: str
    faces: int
    restored: int
    check: Callable[[Ctx], list[str]] = lambda ctx: []


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Ctx], None]
    run: Remap | Cache | Download | Transfer | Masks | Stage | Unmask
    expect: Raises | Skipped | Unmasked


# ------------------------------------------------------------------------------------------- bad files
def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
JPEG, PNG = _encoded(PHOTO, "JPEG"), _encoded(PHOTO, "PNG")
LABEL = Image.fromarray(LABELS[10])  # 64x64, gray levels = part ids
LABEL_PNG = _encoded(LABEL, "PNG")


def _damaged_idat(png: bytes) -> bytes:
    """The PNG with bytes inside its compressed image data flipped (chunk lengths and CRCs left as they were)."""
    data = bytearray(png)
    start = png.index(b"IDAT") + 20
    data[start:start + 40] = bytes(b ^ 0x55 for b in data[start:start + 40])
    return bytes(data)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header announcing ``width`` x ``height`` RGB, with no real pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _label_png(values: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.fromarray(values)
    return _encoded(image.convert(mode) if mode else image, "PNG")


def _rgba_label() -> bytes:
    rgba = np.dstack([LABELS[10]] * 3 + [np.full((64, 64), 255, np.uint8)])
    rgba[:8, :8, 3] = 0  # a transparent corner: which class is it?
    return _encoded(Image.fromarray(rgba, "RGBA"), "PNG")


def _palette_label_with_index(index: int) -> bytes:
    values = LABELS[10].copy()
    values[:4, :4] = index
    image = Image.fromarray(values).convert("P")
    image.putpalette(np.random.default_rng(1).integers(0, 256, 768).astype(np.uint8).tobytes())
    return _encoded(image, "PNG")


def item(photo: bytes | None = JPEG, label: bytes | None = LABEL_PNG, photo_suffix: str = ".jpg") -> Callable[[Ctx], None]:
    """A build: the good dataset plus item 7 with these photo and label bytes (``None``: no such file)."""
    def build(ctx: Ctx) -> None:
        write_merged(ctx.dataset, GOOD)
        if photo is not None:
            (ctx.dataset / "images" / f"{BAD_ID}{photo_suffix}").write_bytes(photo)
        if label is not None:
            (ctx.dataset / "labels" / f"{BAD_ID}.png").write_bytes(label)
    return build


def _nothing(ctx: Ctx) -> None:
    """No files: the row's bad input is in params.yaml."""


def empty_dataset(ctx: Ctx) -> None:
    write_merged(ctx.dataset, {})


def every_photo_truncated(ctx: Ctx) -> None:
    write_merged(ctx.dataset, GOOD)
    for photo in (ctx.dataset / "images").iterdir():
        photo.write_bytes(JPEG[: len(JPEG) // 2])


COLOUR_OPTIONS = {"adapter": "folder", "mapping": {"0,0,0": "background", "255,0,0": "face"}}


def colour_dataset_with_off_palette_label(ctx: Ctx) -> None:
    """Colour labels (black background, red face); item 7's right half is green, a colour the mapping lacks."""
    (ctx.dataset / "images").mkdir(parents=True)
    (ctx.dataset / "labels").mkdir()
    label = np.zeros((64, 64, 3), np.uint8)
    label[16:48, 16:48] = (255, 0, 0)
    for n in (0, 1, 2, BAD_ID):
        (ctx.dataset / "images" / f"{n}.jpg").write_bytes(JPEG)
        if n == BAD_ID:
            label[:, 32:] = (0, 255, 0)
        Image.fromarray(label).save(ctx.dataset / "labels" / f"{n}.png")


def symlinked_photo(target: Callable[[Ctx], Path]) -> Callable[[Ctx], None]:
    """A build: the good dataset plus item 7 whose photo is a symlink to ``target(ctx)``."""
    def build(ctx: Ctx) -> None:
        item(photo=None)(ctx)
        (ctx.dataset / "images" / f"{BAD_ID}.jpg").symlink_to(target(ctx))
    return build


def _outside_photo(ctx: Ctx) -> Path:
    (ctx.tmp / "elsewhere").mkdir()
    (ctx.tmp / "elsewhere" / "secret.jpg").write_bytes(JPEG)
    return ctx.tmp / "elsewhere" / "secret.jpg"


def _dataset_members() -> dict[str, bytes]:
    return {f"{SOURCE}/images/0.jpg": JPEG, f"{SOURCE}/labels/0.png": LABEL_PNG}


DATASET_ZIP = _zip_bytes(_dataset_members())


def archive(name: str, write: Callable[[Ctx, Path], None]) -> Callable[[Ctx], None]:
    """A build: ``tmp/name`` written by ``write(ctx, path)``."""
    return lambda ctx: write(ctx, ctx.tmp / name)


def _zip_with_dotdot(ctx: Ctx, path: Path) -> None:
    path.write_bytes(_zip_bytes({**_dataset_members(), "../evil.txt": b"evil"}))
    ctx.forbidden += [ctx.project / "data" / "evil.txt", ctx.project / "data" / "raw" / "evil.txt"]


def _tar_of(ctx: Ctx, path: Path, add: Callable[[tarfile.TarFile], None]) -> None:
    def add_all(tar: tarfile.TarFile) -> None:
        for name, data in _dataset_members().items():
            _add_file(tar, name, data)
        add(tar)
    _tar_with(ctx.tmp, add_all).rename(path)


def _tar_with_absolute(ctx: Ctx, path: Path) -> None:
    escaped = ctx.tmp / "escaped.txt"
    ctx.forbidden.append(escaped)
    _tar_of(ctx, path, lambda tar: _add_file(tar, str(escaped), b"evil"))


def _tar_with_symlink_out(ctx: Ctx, path: Path) -> None:
    _tar_of(ctx, path, lambda tar: _add_link(tar, f"{SOURCE}/images/1.jpg", "../../../../../etc/passwd"))


def _truncated_tar_gz(ctx: Ctx, path: Path) -> None:
    rng = np.random.default_rng(2)
    _tar_of(ctx, path, lambda tar: _add_file(tar, f"{SOURCE}/images/1.jpg", rng.bytes(200_000)))
    path.write_bytes(path.read_bytes()[:120_000])


def _write_bytes(data: bytes) -> Callable[[Ctx, Path], None]:
    return lambda ctx, path: path.write_bytes(data)


def local(name: str, sha256: str | None = None) -> Download:
    return Download(lambda ctx: {"adapter": "celebamask_hq", "uri": str(ctx.tmp / name), "sha256": sha256})


def served(ctx: Ctx) -> None:
    ctx.server.files["faces.zip"] = DATASET_ZIP
    ctx.forbidden += [ctx.project / "data" / "downloads" / SOURCE / name for name in ("faces.zip", "faces.zip.part")]


def served_with_cuts(ctx: Ctx) -> None:
    """Every response announces the whole file (Content-Length) and closes after 1000 bytes."""
    ctx.server.files["faces.zip"] = DATASET_ZIP
    ctx.server.cuts = [1000, 1000]


def truncate_photo(name: str) -> Callable[[Ctx], None]:
    """A damage: photo ``name`` replaced by a truncated JPEG."""
    return lambda ctx: (ctx.dataset / "images" / name).write_bytes(JPEG[: len(JPEG) // 2])


def masks_cache(bad_photo: Callable[[], np.ndarray], bad_landmarks: Callable[[np.ndarray], np.ndarray]
                ) -> Callable[[Ctx], None]:
    """A build: a 256² cache whose every split holds the astronaut's face; train also the bad photo (row 1)."""
    def build(ctx: Ctx) -> None:
        face, landmarks = astronaut_face()
        (ctx.tmp / "cache").mkdir()
        for split in ("train", "val", "test"):
            photos, points = [face], [landmarks]
            if split == "train":
                photos.append(bad_photo())
                points.append(bad_landmarks(landmarks))
            _write_split(ctx.tmp / "cache", split, photos, points)
    return build


def _tiny_face() -> np.ndarray:
    """The astronaut shrunk 10x into the top-left corner (its landmarks divided by 10 match it)."""
    face, _ = astronaut_face()
    photo = np.full_like(face, 127)
    photo[:26, :26] = np.asarray(Image.fromarray(face).resize((26, 26), Image.BOX))
    return photo


NO_LANDMARKS = np.full((68, 2), np.nan, np.float32)


# ------------------------------------------------------------------------- photos for faceparse unmask
def _write_photo(path: Path, photo: np.ndarray) -> None:
    """PNG (fast compression: the panorama is 12 million pixels); a 2-D array is written as a one-channel image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(path, compress_level=1)


def _decoded_bytes(path: Path) -> int:
    """Bytes of the photo once decoded, as unmask holds it: (H, W, 3) uint8."""
    with Image.open(path) as image:
        return image.width * image.height * 3


def _green(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the mask colour (what the green finder marks)."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return g - r - b > 100


def _mask_layer(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A face mask's footprint: the jaw (points 2-14) closed at the nose bridge (29), over nose, mouth and chin."""
    layer = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(layer, [np.round(np.r_[landmarks[2:15], landmarks[[29]]]).astype(np.int32)], 1)
    return layer > 0


def _masked_face(face: np.ndarray | None = None) -> np.ndarray:
    """The astronaut (256², or ``face`` drawn over her landmarks) wearing a mask in :data:`MASK_GREEN`."""
    astronaut, landmarks = astronaut_face()
    photo = astronaut if face is None else face
    photo[_mask_layer(landmarks, photo.shape)] = MASK_GREEN
    return photo


def photo(name: str, make: Callable[[], np.ndarray]) -> Callable[[Ctx], None]:
    """A build: ``make()`` written as ``ctx.photos / name``."""
    return lambda ctx: _write_photo(ctx.photos / name, make())


PANORAMA = (1200, 10000)  # height, width: 12 million pixels, 36 MB decoded


def _panorama() -> np.ndarray:
    """A 10000x1200 grey panorama with the masked astronaut (256²) where two detection tiles overlap."""
    pano = np.full((*PANORAMA, 3), 110, np.uint8)
    pano[500:756, 4500:4756] = _masked_face()
    return pano


def _thirty_small_faces() -> np.ndarray:
    """6 x 5 masked astronauts of 96² (face boxes of about 56 px, over the 40 px minimum) on a 576x480 photo."""
    small = cv2.resize(_masked_face(), (96, 96), interpolation=cv2.INTER_AREA)
    return np.tile(small, (5, 6, 1))


def _grayscale_scan() -> np.ndarray:
    """The masked astronaut as a one-channel (L) scan."""
    return cv2.cvtColor(_masked_face(), cv2.COLOR_RGB2GRAY)


def _face_cut_by_the_left_edge() -> np.ndarray:
    """The masked astronaut with her left 30 % cut off: the photo's edge runs through her cheek and mask."""
    return np.ascontiguousarray(_masked_face()[:, 77:])


def _face_cut_below_the_nose() -> np.ndarray:
    """The masked astronaut cut off 150 px down: mouth and chin lie outside the photo."""
    return np.ascontiguousarray(_masked_face()[:150])


def _line_drawing() -> np.ndarray:
    """A face drawn with cv2 in black lines on white: outline, brows, eyes, nose, mouth."""
    drawing = np.full((256, 256, 3), 255, np.uint8)
    black = (0, 0, 0)
    cv2.ellipse(drawing, (128, 128), (70, 95), 0, 0, 360, black, 2)
    for x in (100, 156):
        cv2.ellipse(drawing, (x, 110), (14, 7), 0, 0, 360, black, 2)
        cv2.circle(drawing, (x, 110), 4, black, -1)
        cv2.line(drawing, (x - 14, 92), (x + 14, 90), black, 2)
    cv2.polylines(drawing, [np.array([[128, 115], [120, 150], [136, 150]])], False, black, 2)
    cv2.ellipse(drawing, (128, 175), (22, 8), 0, 0, 180, black, 2)
    return drawing


def _masked_mannequin() -> np.ndarray:
    """A mannequin, approximated: the astronaut's face with its skin, hair and eye colours gone, one plastic tint
    with the shading compressed and blurred (sigma 3 px) so no skin texture is left, only the sculpted shape;
    wearing the green mask."""
    astronaut, _ = astronaut_face()
    shading = cv2.GaussianBlur(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 3)
    plastic = (0.5 + 0.5 * shading[..., None] / 255) * np.array([235, 215, 195], np.float32)
    return _masked_face(np.clip(plastic, 0, 255).astype(np.uint8))


def _chin_only_mask() -> np.ndarray:
    """The astronaut with the mask pulled down below her mouth: only the chin is covered, from a third of the way
    between the lower lip (landmark 57) and the chin (8) downwards."""
    face, landmarks = astronaut_face()
    chin = _mask_layer(landmarks, face.shape)
    chin[:_chin_mask_top()] = False
    face[chin] = MASK_GREEN
    return face


def _chin_mask_top() -> int:
    _, landmarks = astronaut_face()
    return int(landmarks[57, 1] + (landmarks[8, 1] - landmarks[57, 1]) / 3)


def _output(ctx: Ctx, name: str) -> np.ndarray:
    return np.asarray(Image.open(Unmask.out(ctx) / name))


def _panorama_kept_its_size(ctx: Ctx) -> list[str]:
    shape = _output(ctx, "panorama.unmasked.png").shape
    return [] if shape == (*PANORAMA, 3) else [f"the panorama came back {shape}"]


def _scan_stays_grayscale(ctx: Ctx) -> list[str]:
    """The restored scan is written as a one-channel image, and its JSON says it is grayscale."""
    shape = _output(ctx, "scan.unmasked.png").shape
    summary = json.loads((Unmask.out(ctx) / "scan.json").read_text())
    return ([] if shape == (256, 256) else [f"the scan came back {shape}"]) + \
        ([] if summary["grayscale"] else ["the JSON does not say grayscale"])


def _only_the_chin_changed(ctx: Ctx) -> list[str]:
    """Above the lower lip the photo changes only where the blend's feather resamples it (under 1 grey level on
    average, the mouth intact); above the nose's tip not at all."""
    _, landmarks = astronaut_face()
    before = _chin_only_mask().astype(int)
    change = np.abs(_output(ctx, "chin.unmasked.png").astype(int) - before).max(-1)
    lip, nose = int(landmarks[57, 1]), int(landmarks[33, 1])
    problems = [f"the change above the lower lip averages {change[:lip].mean():.2f}"] if change[:lip].mean() > 1 else []
    problems += [f"{int((change[:nose] > 0).sum())} pixels above the nose's tip changed"] if change[:nose].any() else []
    return problems + ([] if change[_chin_mask_top():].mean() > 10 else ["the chin was not restored"])


CASES: list[Case] = [
    # photos the pipeline cannot decode (remap, counted skips in report.csv)
    Case("truncated_jpeg", item(photo=JPEG[: len(JPEG) // 2]), Remap(), Skipped("images/7.jpg", "truncated image")),
    Case("truncated_png", item(photo=PNG[: len(PNG) // 2], photo_suffix=".png"), Remap(),
         Skipped("images/7.png", "truncated image")),
    Case("corrupt_jpeg_bytes", item(photo=JPEG[:20] + np.random.default_rng(3).bytes(2000)), Remap(),
         Skipped("images/7.jpg", "header is corrupt")),
    Case("corrupt_png_bytes", item(photo=_damaged_idat(PNG), photo_suffix=".png"), Remap(),
         Skipped("images/7.png", "corrupt image data")),
    Case("zero_byte_photo", item(photo=b""), Remap(), Skipped("images/7.jpg", r"empty file \(0 bytes\)")),
    Case("html_saved_as_jpg", item(photo=b"<!DOCTYPE html>\n<html><body>Please log in</body></html>"), Remap(),
         Skipped("images/7.jpg", "an HTML page, not an image")),
    Case("pdf_saved_as_jpg", item(photo=b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"), Remap(),
         Skipped("images/7.jpg", "not an image")),
    Case("one_pixel_photo", item(photo=_encoded(Image.new("RGB", (1, 1)), "PNG"), photo_suffix=".png",
                                 label=_label_png(np.zeros((1, 1), np.uint8))), Remap(),
         Skipped("images/7.png", r"image is 1x1: too small")),
    Case("decompression_bomb", item(photo=_png_header_only(20000, 20000), photo_suffix=".png"), Remap(),
         Skipped("images/7.png", r"decompression bomb.*400000000 pixels")),
    Case("decompression_bomb_under_pils_hard_limit", item(photo=_png_header_only(10000, 10000), photo_suffix=".png"),
         Remap(), Skipped("images/7.png", r"decompression bomb.*10000x10000 \(100000000 pixels\) exceeds the limit")),
    # labels that would become wrong unified labels
    Case("zero_byte_label", item(label=b""), Remap(), Skipped("labels/7.png", "empty file")),
    Case("corrupt_png_label", item(label=_damaged_idat(LABEL_PNG)), Remap(), Skipped("labels/7.png", "corrupt image data")),
    Case("label_16_bit", item(label=_label_png(LABELS[10].astype(np.uint16) * 257)), Remap(),
         Skipped("labels/7.png", r"label values \[257, .*\] are outside the mapping")),
    Case("rgba_label_with_transparency", item(label=_rgba_label()), Remap(),
         Skipped("labels/7.png", "transparent pixels")),
    Case("colour_label_for_an_index_source", item(label=_encoded(PHOTO, "PNG")), Remap(),
         Skipped("labels/7.png", "index label expected, but the image holds colours")),
    Case("palette_index_unknown_to_the_class_map", item(label=_palette_label_with_index(25)), Remap(),
         Skipped("labels/7.png", r"label values 25 are outside the mapping \(16 pixels\)")),
    Case("label_values_outside_the_class_map", item(label=_label_png(np.where(LABELS[10] == 1, 200, LABELS[10])
                                                                       .astype(np.uint8))), Remap(),
         Skipped("labels/7.png", r"label values 200 are outside the mapping")),
    Case("colour_label_off_palette", colour_dataset_with_off_palette_label, Remap(COLOUR_OPTIONS),
         Skipped("labels/7.png", r"off-palette.*\(0, 255, 0\)")),
    # photo and label that do not belong together
    Case("label_stretched_by_a_fraction", item(label=_label_png(LABELS[10][::3, ::3][:20, :20].copy())), Remap(),
         Skipped("labels/7.png", r"label is 20x20 but the image is 64x64: .*not a whole factor")),
    Case("label_of_another_aspect_ratio", item(label=_label_png(LABELS[10][:48].copy())), Remap(),
         Skipped("labels/7.png", r"label is 64x48 but the image is 64x64: aspect ratios differ")),
    Case("label_without_an_image", item(photo=None), Remap(), Skipped("labels/7.png", "label without an image")),
    Case("image_without_a_label", item(label=None), Remap(), Skipped("labels/7.png", "label file is missing")),
    # whole datasets
    Case("empty_dataset", empty_dataset, Remap(), Raises(RuntimeError, f"'{SOURCE}'", "the dataset is empty")),
    Case("every_item_bad", every_photo_truncated, Remap(),
         Raises(RuntimeError, f"'{SOURCE}'", r"3 of 3 items were unusable.*images/0\.jpg: truncated image")),
    Case("photo_truncated_after_remap", item(), Cache(truncate_photo("1.jpg")),
         Raises(BadInputError, "images/1.jpg", "truncated image")),
    # archives, folders and downloads (the download stage)
    Case("zip_member_with_dotdot", archive("faces.zip", _zip_with_dotdot), local("faces.zip"),
         Raises(UnsafeArchiveError, "faces.zip", r"member '\.\./evil\.txt' has a '\.\.' component")),
    Case("tar_member_with_absolute_path", archive("faces.tar.gz", _tar_with_absolute), local("faces.tar.gz"),
         Raises(UnsafeArchiveError, "faces.tar.gz", "has an absolute path")),
    Case("tar_symlink_out_of_the_tree", archive("faces.tar.gz", _tar_with_symlink_out), local("faces.tar.gz"),
         Raises(UnsafeArchiveError, "faces.tar.gz", r"link 'faces/images/1\.jpg'.*points outside the archive")),
    Case("truncated_tar_gz", archive("faces.tar.gz", _truncated_tar_gz), local("faces.tar.gz"),
         Raises(BadArchiveError, "faces.tar.gz", "corrupt or truncated archive")),
    Case("html_saved_as_zip", archive("faces.zip", _write_bytes(b"<html><body>Access denied</body></html>")),
         local("faces.zip"), Raises(BadArchiveError, "faces.zip", "an HTML page, not an archive")),
    Case("local_archive_checksum_mismatch", archive("faces.zip", _write_bytes(DATASET_ZIP)),
         local("faces.zip", sha256="0" * 64), Raises(ChecksumError, "faces.zip", "sha256 mismatch: expected 0000")),
    Case("folder_symlink_out_of_the_tree", symlinked_photo(_outside_photo),
         Download(lambda ctx: {"adapter": "celebamask_hq", "uri": str(ctx.dataset)}),
         Raises(BadInputError, "images/7.jpg", r"symlink to .*secret\.jpg points outside the dataset folder")),
    Case("folder_broken_symlink", symlinked_photo(lambda ctx: ctx.tmp / "gone.jpg"),
         Download(lambda ctx: {"adapter": "celebamask_hq", "uri": str(ctx.dataset)}),
         Raises(BadInputError, "images/7.jpg", r"broken symlink \(to '.*gone\.jpg'")),
    Case("download_checksum_mismatch", served,
         Download(lambda ctx: {"adapter": "celebamask_hq", "uri": f"{ctx.server.url}/faces.zip", "sha256": "0" * 64}),
         Raises(ChecksumError, "faces.zip", "sha256 mismatch: expected 0000")),
    Case("download_interrupted", served_with_cuts, Transfer(),
         Raises(DownloadError, "faces.zip", r"failed after 2 attempts: IncompleteRead\(.*more expected\)")),
    # faces the masks stage cannot mask (counted skips in data/masks/report.csv)
    Case("photo_without_a_face", masks_cache(lambda: np.full((256, 256, 3), 127, np.uint8), lambda lm: NO_LANDMARKS),
         Masks(), Skipped("fake/train1", r"no face found \(minimum size 40 px\)")),
    Case("face_too_small_for_landmarks", masks_cache(_tiny_face, lambda lm: lm / 10), Masks(),
         Skipped("fake/train1", r"face too small \(1\d px wide, minimum 40\)")),
]

# faceparse unmask on photos it was not made for: each gets its own result, and the batch goes on
UNMASKED = "restored"
CASES += [
    Case("panorama_10000_pixels_wide", photo("panorama.png", _panorama), Unmask(),
         Unmasked("panorama.png", UNMASKED, faces=1, restored=1, check=_panorama_kept_its_size)),
    Case("thirty_small_faces", photo("crowd.png", _thirty_small_faces), Unmask(),
         Unmasked("crowd.png", "; ".join([UNMASKED] * 30), faces=30, restored=30)),
    Case("grayscale_scan", photo("scan.png", _grayscale_scan), Unmask(finder="all"),
         Unmasked("scan.png", UNMASKED, faces=1, restored=1, check=_scan_stays_grayscale)),
    Case("face_cut_by_the_edge", photo("edge.png", _face_cut_by_the_left_edge), Unmask(),
         Unmasked("edge.png", UNMASKED, faces=1, restored=1)),
    Case("face_cut_below_the_nose", photo("cut.png", _face_cut_below_the_nose), Unmask(),
         Unmasked("cut.png", r"no usable face \(the face at \[.*\] gave unusable landmarks: nose or mouth landmarks "
                             r"lie outside the image\)", faces=0, restored=0)),
    Case("line_drawing", photo("drawing.png", _line_drawing), Unmask(),
         Unmasked("drawing.png", r"no usable face \(the detectors found none\)", faces=0, restored=0)),
    Case("mannequin", photo("mannequin.png", _masked_mannequin), Unmask(),
         Unmasked("mannequin.png", UNMASKED, faces=1, restored=1)),
    Case("mask_only_on_the_chin", photo("chin.png", _chin_only_mask), Unmask(),
         Unmasked("chin.png", UNMASKED, faces=1, restored=1, check=_only_the_chin_changed)),
]

# Params: a typo, a value of the wrong type or range, an unknown name. Each stage refuses before writing anything.
CASES += [
    Case("params_wrong_type", _nothing, Stage("train_parser", {"parser": {"epochs": "ten"}}),
         Raises(ParamsError, "params.yaml", r"parser\.epochs: .*integer")),
    Case("params_negative_epochs", _nothing, Stage("train_inpainter", {"inpainter": {"epochs": -3}}),
         Raises(ParamsError, "params.yaml", r"inpainter\.epochs: .*greater than or equal to 1")),
    Case("params_unknown_arch", _nothing, Stage("train_parser", {"parser": {"arch": "unet3000"}}),
         Raises(ParamsError, "params.yaml", r"parser\.arch: .*unknown architecture")),
    Case("params_unknown_loss", _nothing, Stage("train_parser", {"loss": "ce+dcie"}),
         Raises(ParamsError, "params.yaml", r"loss: unknown loss 'ce\+dcie'")),
    Case("params_unknown_adapter", _nothing, Stage("remap", {"data": {"synthetic": {"adapter": "synthtic"}}}),
         Raises(ParamsError, "params.yaml", r"data\.synthetic\.adapter: unknown dataset adapter 'synthtic'")),
    Case("params_unknown_source_key", _nothing, Stage("remap", {"data": {"synthetic": {"adapter": "synthetic",
                                                                                          "cuont": 5}}}),
         Raises(ParamsError, "params.yaml", r"data\.synthetic: unknown keys \['cuont'\]")),
    Case("params_synthetic_count_wrong_type", _nothing,
         Stage("download", {"data": {"synthetic": {"adapter": "synthetic", "count": "many"}}}, ("synthetic",)),
         Raises(ParamsError, "params.yaml", r"data\.synthetic\.count: .*integer")),
    Case("params_typo_in_remap", _nothing, Stage("remap", {"remap": {"on_eror": "raise"}}),
         Raises(ParamsError, "params.yaml", r"remap\.on_eror: unknown key")),
    Case("params_cache_size_off_stride", _nothing, Stage("cache", {"cache": {"size": 250}}),
         Raises(ParamsError, "params.yaml", r"cache\.size: .*multiple of 32")),
    Case("params_benchmark_zero_threads", _nothing, Stage("benchmark", {"benchmark": {"threads": 0}}),
         Raises(ParamsError, "params.yaml", r"benchmark\.threads: .*greater than or equal to 1")),
]

# Every counted skip of the remap stage must also stop it, naming the file, under remap.on_error: raise.
CASES += [replace(case, id=f"{case.id}-raise", run=replace(case.run, on_error="raise"),
                  expect=Raises(BadInputError, case.expect.names, case.expect.problem))
          for case in list(CASES) if isinstance(case.run, Remap) and isinstance(case.expect, Skipped)]


@pytest.fixture(scope="module")
def unmask_models(tmp_path_factory) -> Path:
    return tiny_unmask_models(tmp_path_factory.mktemp("unmask_models"))


@pytest.fixture()
def ctx(tmp_path, monkeypatch, request):
    context = Ctx(tmp_path, monkeypatch, request=request)
    yield context
    if context._server is not None:
        context._server.close()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, ctx: Ctx):
    case.build(ctx)
    tmp = str(ctx.tmp)  # paths hold the test's name, which must not satisfy a pattern by itself
    if isinstance(case.expect, Raises):
        with pytest.raises(case.expect.error) as err:
            case.run(ctx)
        message = str(err.value).replace(tmp, "<tmp>")
        assert case.expect.names in message, message
        assert re.search(case.expect.problem, message), message
        assert case.run.leftovers(ctx, None) == []
    elif isinstance(case.expect, Unmasked):
        report = case.run(ctx)
        row = report[report["where"].str.endswith(case.expect.names)]
        assert len(row) == 1, report.to_string()
        problem = row["problem"].iloc[0].replace(tmp, "<tmp>")
        assert re.search(case.expect.problem, problem), problem
        assert (row["faces"].iloc[0], row["restored"].iloc[0]) == (case.expect.faces, case.expect.restored), problem
        assert case.run.leftovers(ctx, report) == []
        assert case.expect.check(ctx) == []
    else:
        report = case.run(ctx)
        assert len(report) == case.expect.count, report.to_string()
        where, problem = report["where"].iloc[0].replace(tmp, "<tmp>"), report["problem"].iloc[0]
        assert where.endswith(case.expect.names), where
        assert re.search(case.expect.problem, problem), problem
        assert case.run.leftovers(ctx, report) == []
    assert [p for p in ctx.forbidden if p.exists() or p.is_symlink()] == []


# ------------------------------------------------- unusual but good photos: converted, not refused
def test_rgba_photo_is_composited_on_black(ctx):
    rgba = np.dstack([np.asarray(PHOTO), np.full((64, 64), 255, np.uint8)])
    rgba[:, :32, 3] = 0
    item(photo=_encoded(Image.fromarray(rgba, "RGBA"), "PNG"), photo_suffix=".png")(ctx)
    assert Remap()(ctx).empty
    photo = read_image(ctx.dataset / "images" / "7.png")
    assert photo.shape == (64, 64, 3) and (photo[:, :32] == 0).all()
    np.testing.assert_array_equal(photo[:, 32:], np.asarray(PHOTO)[:, 32:])


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    cmyk = np.zeros((32, 32, 4), np.uint8)
    cmyk[:16] = (0, 255, 255, 0)  # red
    cmyk[16:] = (255, 0, 255, 0)  # green
    Image.fromarray(cmyk, "CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    photo = read_image(path)
    assert photo.dtype == np.uint8 and photo.shape == (32, 32, 3)
    np.testing.assert_allclose(photo[4:12, 4:28].reshape(-1, 3).mean(0), (255, 0, 0), atol=8)
    np.testing.assert_allclose(photo[20:28, 4:28].reshape(-1, 3).mean(0), (0, 255, 0), atol=8)


def test_exif_rotated_photo_is_honoured(ctx):
    """A photo stored 48x32 with EXIF orientation 6 (turn 90° clockwise) is shown 32x48; so is its label."""
    stored = np.full((32, 48, 3), 60, np.uint8)
    stored[:8, :8] = (255, 0, 0)  # top-left as stored: top-right once turned
    exif = Image.Exif()
    exif[0x0112] = 6
    label = np.zeros((48, 32), np.uint8)
    label[:8, 24:] = 1  # skin under the red corner, in the orientation the photo is shown
    item(photo=_encoded(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95),
         label=_label_png(label))(ctx)
    assert Remap()(ctx).empty
    manifest = pd.read_csv(ctx.project / "data" / "unified" / "manifest.csv", dtype={"item_id": str})
    row = manifest.set_index("item_id").loc[str(BAD_ID)]
    assert (row["width"], row["height"]) == (32, 48)
    photo = read_image(ctx.dataset / "images" / "7.jpg")
    assert photo.shape == (48, 32, 3)
    np.testing.assert_allclose(photo[1:7, 25:31].reshape(-1, 3).mean(0), (255, 0, 0), atol=30)
