"""The one decode-and-check step every MedNIST image reader goes through.

The rule, applied to each file (``check_image``):
- an AppleDouble file (``._name``, macOS metadata), an empty file, or a file PIL cannot
  identify or decode to its end (a truncated JPEG, text named ``.jpeg``) is SKIPPED;
- an image that is not 64x64 is SKIPPED (resizing would change what the network sees);
- an image deeper than 8 bits per pixel (modes I, I;16, F: 16/32-bit) is SKIPPED (mapping
  its range to 0-255 would be a guess);
- an 8-bit image in another mode (RGB, RGBA, LA, P, 1, CMYK, ...) is CONVERTED to 8-bit
  grayscale with PIL's ``convert("L")`` (ITU-R 601-2 luminance), the conversion
  ``to_grayscale`` applies inside the tutorial recipe's LoadImage too;
- an 8-bit grayscale (mode L) 64x64 image is kept as it is.
Skipped and converted files are returned with their reason, so records and reports name them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFile

IMAGE_SIZE = (64, 64)  # width, height
DEEP_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;32", "I;32B", "I;32L"}


def to_grayscale(im: Image.Image) -> Image.Image:
    """8-bit grayscale as the rule converts it (a mode-L image is returned as is)."""
    return im if im.mode == "L" else im.convert("L")


def check_image(path: str) -> tuple[np.ndarray | None, str | None]:
    """(array (64, 64) uint8 or None, reason or None): None + reason means skipped; an
    array + reason means converted; an array alone means kept as it is."""
    name = os.path.basename(path)
    if name.startswith("._"):
        return None, "AppleDouble metadata file (macOS), not an image"
    try:
        if os.path.getsize(path) == 0:
            return None, "empty file (0 bytes)"
    except OSError as err:
        return None, f"unreadable: {err.strerror or err}"
    truncated_ok = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated JPEG must fail, not decode padded with grey
    try:
        with Image.open(path) as im:
            if im.size != IMAGE_SIZE:
                return None, f"size {im.width}x{im.height}, expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
            if im.mode in DEEP_MODES:
                return None, f"bit depth: mode {im.mode} (more than 8 bits per pixel), expected 8-bit grayscale"
            im.load()
            mode = im.mode
            arr = np.asarray(to_grayscale(im), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return None, f"unreadable: {type(err).__name__}: {err}"
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_ok
    return arr, (None if mode == "L" else f"converted: mode {mode} -> L (8-bit grayscale, luminance)")


@dataclass
class DecodeResult:
    images: np.ndarray  # uint8, (N, 64, 64)
    kept_indices: list[int]  # indices into the input paths that were decoded (converted ones included)
    skipped: list[tuple[str, str]]  # (path, reason)
    converted: list[tuple[str, str]] = field(default_factory=list)  # (path, what was converted)


def decode_images(paths: list[str], progress: bool = False) -> DecodeResult:
    """Decode images to uint8 (N, 64, 64) by the module's rule: a file that fails is skipped
    and named with its reason, never fatal. (About 0.1-0.3 ms per image on one core.)"""
    from tqdm import tqdm

    paths = [str(p) for p in paths]
    images = np.empty((len(paths), IMAGE_SIZE[1], IMAGE_SIZE[0]), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    converted: list[tuple[str, str]] = []
    for i, path in enumerate(tqdm(paths, desc="decode and check", unit="img", disable=not progress)):
        arr, why = check_image(path)
        if arr is None:
            skipped.append((path, why))
            continue
        if why:
            converted.append((path, why))
        images[len(kept)] = arr
        kept.append(i)
    out = images[: len(kept)].copy() if skipped else images
    return DecodeResult(images=out, kept_indices=kept, skipped=skipped, converted=converted)
