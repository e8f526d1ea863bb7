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


def _pool_context(method: str | None = None):
    """``method`` where given, else forkserver (safe in any caller: after CUDA has started, and
    beside the samplers' threads). A time-to-target run asks for spawn: a worker is then a fresh
    interpreter that imports numpy and PIL (0.1-0.15 s, all at once) and starting it costs the
    run a few milliseconds, where forking a process that has imported torch and MONAI copied its
    page tables, 22-30 ms per worker on the run's clock (run AD, 10 workers). Spawn imports the
    caller's __main__ again in every worker, so it is only for callers whose __main__ is ours."""
    return get_context(method or "forkserver")


def _submit(paths: list[str], workers: int, method: str | None = None):
    """Start decoding ``paths`` in ``workers`` processes; returns (pool, [(indices, future)])."""
    chunks = np.array_split(np.arange(len(paths)), workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(method))
    return pool, [(idx, pool.submit(_decode_chunk, [paths[i] for i in idx])) for idx in chunks]


def _collect(pool, jobs):
    images, kept, skipped = [], [], []
    try:
        for idx, fut in jobs:
            im, k, sk = fut.result()
            images.append(im)
            kept.extend(int(idx[0]) + i for i in k)
            skipped.extend(sk)
    finally:
        pool.shutdown(wait=True)
    return np.concatenate(images), kept, skipped


def decode_parallel(paths: list[str], workers: int):
    """decode_images over ``workers`` processes (forkserver). Returns (images (N, 64, 64) uint8
    in file order, kept indices, skipped)."""
    from common.data.mednist import decode_images

    if workers <= 1 or len(paths) < 2000:
        res = decode_images(paths)
        return res.images, res.kept_indices, res.skipped
    return _collect(*_submit(paths, workers))


def _fill(data, part: str, images: np.ndarray, kept: list[int], skipped) -> None:
    labels = data.part(part)[1]
    imgs = np.ascontiguousarray(images.transpose(0, 2, 1))  # LoadImage's orientation, as MedNISTData.arrays
    data._arrays[part] = (imgs, np.asarray([labels[i] for i in kept], dtype=np.int64))
    data.skipped.extend(tuple(s) for s in skipped)


def _parts_paths(data, parts: list[str]) -> list[list[str]]:
    return [data.part(part)[0] for part in parts]


def _hand_out(data, parts: list[str], paths: list[list[str]], decoded) -> None:
    images, kept, skipped = decoded
    kept = np.asarray(kept, dtype=np.int64)
    start = 0
    for part, ps in zip(parts, paths):
        rows = np.flatnonzero((kept >= start) & (kept < start + len(ps)))
        mine = set(ps)
        _fill(data, part, images[rows], [int(i) - start for i in kept[rows]], [s for s in skipped if s[0] in mine])
        start += len(ps)


def _decode_parts(data, parts: list[str], workers: int) -> None:
    """Decode ``parts`` in one pass over one pool of workers (a pool per part paid the workers'
    start three times), then hand each part its rows."""
    paths = _parts_paths(data, parts)
    _hand_out(data, parts, paths, decode_parallel([p for ps in paths for p in ps], workers))


def _entry(data, cache_dir) -> Path | None:
    return None if cache_dir is None else Path(cache_dir) / "decoded" / f"mednist-{cache_key(data)}.npz"


def _read_entry(data, path: Path | None) -> tuple[bool, str]:
    """Fill ``data`` from the cache entry at ``path``; (hit, reason when missed)."""
    if path is None:
        return False, "no cache folder: decoded"
    if not path.is_file():
        return False, "no cache entry for this split: decoded"
    try:
        with np.load(path, allow_pickle=False) as z:
            for part in PARTS:
                data._arrays[part] = (z[f"{part}_images"], z[f"{part}_labels"])
            skipped = [tuple(s) for s in z["skipped"].tolist()] if "skipped" in z.files else []
        data.skipped.extend(skipped)
        return True, ""
    except (OSError, KeyError, ValueError) as exc:  # damaged entry: rebuild it
        for part in PARTS:
            data._arrays.pop(part, None)
        return False, f"cache entry unreadable ({type(exc).__name__}); decoded again"


def _write_entry(data, path: Path | None) -> None:
    if path is None:
        return
    arrays = {}
    for part in PARTS:
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = data._arrays[part]
    arrays["skipped"] = np.asarray([list(s) for s in data.skipped] or np.empty((0, 2)), dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_decoded(data, cache_dir: str | os.PathLike | None, workers: int = 1) -> dict:
    """Fill ``data``'s decoded arrays for every part: from the cache where an entry for this
    exact split exists, else by decoding (in ``workers`` processes) and writing the entry.
    Returns what happened: {"hit": bool, "seconds": ..., "path": ..., "reason": ...}."""
    return begin_decoded(data, cache_dir, workers)()


def begin_decoded(data, cache_dir: str | os.PathLike | None, workers: int = 1, start_method: str | None = None):
    """``load_decoded`` in two halves: this call reads the cache entry, or starts the decode in
    ``workers`` processes (started by ``start_method``, see ``_pool_context``), so that the
    caller's CUDA work runs beside them; the function it returns waits for the decode, fills
    ``data``, writes the entry and returns what ``load_decoded`` does."""
    t0 = time.perf_counter()
    path = _entry(data, cache_dir)
    hit, reason = _read_entry(data, path)
    if hit:
        done = {"hit": True, "seconds": time.perf_counter() - t0, "path": str(path), "reason": None}
        return lambda: done
    parts = [part for part in PARTS if part not in data._arrays]
    paths = _parts_paths(data, parts)
    flat = [p for ps in paths for p in ps]
    pending = _submit(flat, workers, start_method) if workers > 1 and len(flat) >= 2000 else None
    started = time.perf_counter() - t0

    def finish() -> dict:
        if pending is not None:
            decoded = _collect(*pending)
        else:
            decoded = decode_parallel(flat, 1)
        _hand_out(data, parts, paths, decoded)
        _write_entry(data, path)
        return {"hit": False, "seconds": time.perf_counter() - t0, "path": str(path) if path else None,
                "reason": reason, "workers": workers if pending is not None else 1,
                "pool": pending[0]._mp_context.get_start_method() if pending is not None else None,
                "start_s": started}

    return finish
