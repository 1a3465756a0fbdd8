"""Reading images into one normal form, and writing outputs atomically.

Every image that enters the pipeline goes through :func:`read_image`, so adapters never see
EXIF rotations, grayscale, alpha, palettes or 16-bit samples.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class BadInputError(ValueError):
    """An input file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# PIL's own limit (warning above it, error above twice it), made a hard limit checked before decoding
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS


def is_html(head: bytes) -> bool:
    """Whether a file's first bytes are an HTML page (an error or login page saved in a data file's place)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked just below, as an error
            img = Image.open(path)
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(f"image size {img.width}x{img.height} ({img.width * img.height} pixels) "
                                               f"exceeds the limit of {MAX_IMAGE_PIXELS} pixels")
        img.load()  # decode now, so a truncated file fails here and not later
    except FileNotFoundError:
        raise BadInputError(path, "file not found") from None
    except Image.DecompressionBombError as exc:
        raise BadInputError(path, f"possible decompression bomb, refused without decoding: {exc}") from None
    except UnidentifiedImageError:
        raise BadInputError(path, _unidentified(path)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        kind = "truncated image" if "truncated" in str(exc).lower() else "corrupt image data"
        raise BadInputError(path, f"{kind} ({exc})") from None
    return img


def _unidentified(path: Path) -> str:
    """Why PIL could not identify ``path``, from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty file (0 bytes), not an image"
    if is_html(head):
        return "an HTML page, not an image (an error or login page saved in its place?)"
    return "not an image, or its header is corrupt (the format could not be identified)"


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        # 16-bit (or 32-bit "I" mode) samples: scale by the container's range, not the image's own maximum
        top = 65535 if arr.max(initial=0) > 255 or arr.dtype in (np.uint16, np.int32) else 255
        return (arr.astype(np.float64) * (255.0 / top) + 0.5).clip(0, 255).astype(np.uint8)
    return (arr.astype(np.float64).clip(0, 1) * 255 + 0.5).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as ``(H, W, 3)`` uint8 RGB.

    EXIF orientation is applied; grayscale, palette, 16-bit, CMYK and alpha images are converted
    (alpha is composited on black). Raises :class:`BadInputError` for missing or unreadable files.
    """
    path = Path(path)
    img = ImageOps.exif_transpose(_open(path))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = _to_uint8(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA")).astype(np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:4] / 255.0)
        return (rgb + 0.5).astype(np.uint8)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def read_label(path: str | os.PathLike, mode: str = "index") -> np.ndarray:
    """Read a label image without any colour conversion that could change its values.

    ``mode="index"``: ``(H, W)`` integer values as stored (palette indices for "P" images, gray levels
    for "L", 16-bit values kept as they are). ``mode="rgb"``: ``(H, W, 3)`` uint8 colours.
    EXIF orientation is applied, as for the photo it belongs to. A label with transparent pixels is
    refused (their class is undefined); an alpha channel that is opaque everywhere is ignored.
    """
    path = Path(path)
    img = ImageOps.exif_transpose(_open(path))
    if img.mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(img.getchannel("A"))
        if alpha.size and alpha.min() < 255:
            raise BadInputError(path, f"label has transparent pixels ({int((alpha < 255).sum())} with alpha < 255, "
                                      f"image mode {img.mode}): their class is undefined")
    if mode == "rgb":
        if img.mode in ("RGBA", "P", "L", "LA", "PA", "1"):
            img = img.convert("RGB")
        if img.mode != "RGB":
            raise BadInputError(path, f"colour label expected, got image mode {img.mode}")
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if mode != "index":
        raise ValueError(f"mode must be 'index' or 'rgb', not {mode!r}")
    if img.mode in ("P", "L", "1", "I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        return arr.astype(np.uint8) if img.mode == "1" else arr
    if img.mode in ("RGB", "RGBA"):
        arr = np.asarray(img)[..., :3]
        if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
            return np.ascontiguousarray(arr[..., 0])  # an index map saved as gray RGB
        raise BadInputError(path, "index label expected, but the image holds colours (use a colour mapping)")
    raise BadInputError(path, f"unsupported label image mode {img.mode}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for ``path``; it is renamed onto ``path`` only if the block succeeds.

    The temporary file has the final file's name, in a hidden folder beside it
    (``.{name}.XXXXXXXX.tmp/{name}``): a writer that records the file's name in the file (``torch.save``
    names its zip records after it) writes the same bytes as it would to ``path``, so outputs are
    byte-identical from run to run; and the file is created by the writer, with the usual permissions.
    A killed run leaves only that hidden folder (see :func:`stages.core.common.staging.remove_leftovers`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp_dir / path.name
        os.replace(tmp_dir / path.name, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_png(path: str | os.PathLike, array: np.ndarray, compress_level: int = 1) -> None:
    """Write a uint8 ``(H, W)`` or RGB ``(H, W, 3)`` array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=compress_level)


def write_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def load_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Load an array written by the cache or masks stage, memory-mapped by default."""
    return np.load(path, mmap_mode="r" if mmap else None)
