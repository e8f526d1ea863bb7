"""A decoded-MedNIST cache on disk: what a user's second run reuses instead of decoding
every JPEG again. The key covers every file of the split (relative path, size, mtime) and
the split itself, so a changed, added or removed image makes a new entry; a damaged entry
is ignored and rebuilt. Cold runs decode in parallel worker processes."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from common.atomic import atomic_path

PARTS = ("train", "val", "test")
VERSION = 1


def cache_key(data) -> str:
    """sha256 over the split's files (path relative to the class folder's parent, size,
    mtime) part by part, with their labels."""
    h = hashlib.sha256(f"decoded-mednist v{VERSION}".encode())
    for part in PARTS:
        paths, labels = data.part(part)
        h.update(f"|{part}:{len(paths)}".encode())
        for p, y in zip(paths, labels):
            st = os.stat(p)
            rel = os.path.join(os.path.basename(os.path.dirname(p)), os.path.basename(p))
            h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}:{y};".encode())
    return h.hexdigest()[:32]


def _decode_chunk(paths: list[str]):
    from common.data.mednist import decode_images

    res = decode_images(paths)
    return res.images, res.kept_indices, res.skipped


def decode_parallel(paths: list[str], workers: int):
    """decode_images over ``workers`` processes (forkserver: safe after CUDA is initialised).
    Returns (images (N, 64, 64) uint8 in file order, kept indices, skipped)."""
    from common.data.mednist import decode_images

    if workers <= 1 or len(paths) < 2000:
        res = decode_images(paths)
        return res.images, res.kept_indices, res.skipped
    chunks = np.array_split(np.arange(len(paths)), workers)
    images, kept, skipped = [], [], []
    ctx = get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_decode_chunk, [paths[i] for i in idx]) for idx in chunks]
        for idx, fut in zip(chunks, futures):
            im, k, sk = fut.result()
            images.append(im)
            kept.extend(int(idx[0]) + i for i in k)
            skipped.extend(sk)
    return np.concatenate(images), kept, skipped


def _fill(data, part: str, images: np.ndarray, kept: list[int], skipped) -> None:
    labels = data.part(part)[1]
    imgs = np.ascontiguousarray(images.transpose(0, 2, 1))  # LoadImage's orientation, as MedNISTData.arrays
    data._arrays[part] = (imgs, np.asarray([labels[i] for i in kept], dtype=np.int64))
    data.skipped.extend(tuple(s) for s in skipped)


def _decode_parts(data, parts: list[str], workers: int) -> None:
    """Decode ``parts`` in one pass over one pool of workers (a pool per part paid the workers'
    start three times), then hand each part its rows."""
    paths = [data.part(part)[0] for part in parts]
    images, kept, skipped = decode_parallel([p for ps in paths for p in ps], workers)
    kept = np.asarray(kept, dtype=np.int64)
    start = 0
    for part, ps in zip(parts, paths):
        rows = np.flatnonzero((kept >= start) & (kept < start + len(ps)))
        mine = set(ps)
        _fill(data, part, images[rows], [int(i) - start for i in kept[rows]], [s for s in skipped if s[0] in mine])
        start += len(ps)


def load_decoded(data, cache_dir: str | os.PathLike | None, workers: int = 1) -> dict:
    """Fill ``data``'s decoded arrays for every part: from the cache where an entry for this
    exact split exists, else by decoding (in ``workers`` processes) and writing the entry.
    Returns what happened: {"hit": bool, "seconds": ..., "path": ..., "reason": ...}."""
    t0 = time.perf_counter()
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "decoded" / f"mednist-{cache_key(data)}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    for part in PARTS:
                        data._arrays[part] = (z[f"{part}_images"], z[f"{part}_labels"])
                    skipped = [tuple(s) for s in z["skipped"].tolist()] if "skipped" in z.files else []
                data.skipped.extend(skipped)
                return {"hit": True, "seconds": time.perf_counter() - t0, "path": str(path), "reason": None}
            except (OSError, KeyError, ValueError) as exc:  # damaged entry: rebuild it
                reason = f"cache entry unreadable ({type(exc).__name__}); decoded again"
        else:
            reason = "no cache entry for this split: decoded"
    else:
        reason = "no cache folder: decoded"
    _decode_parts(data, [part for part in PARTS if part not in data._arrays], workers)
    if path is not None:
        arrays = {}
        for part in PARTS:
            arrays[f"{part}_images"], arrays[f"{part}_labels"] = data._arrays[part]
        arrays["skipped"] = np.asarray([list(s) for s in data.skipped] or np.empty((0, 2)), dtype=str)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return {"hit": False, "seconds": time.perf_counter() - t0, "path": str(path) if path else None, "reason": reason}
