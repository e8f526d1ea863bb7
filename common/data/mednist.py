"""MedNIST on disk: class names, the manifest that marks a verified tree, discovery,
a seeded stratified split, and decoding to one uint8 array."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from common.atomic import write_json
from common.data.imagecheck import IMAGE_SIZE, DecodeResult, check_image, decode_images  # noqa: F401 (re-exported)
from common.errors import UserError

CLASS_NAMES = ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
FOLDER = "MedNIST"
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
SAMPLE_PER_CLASS = 3  # images per class opened with PIL when the manifest is written


def _hint(data_dir: Path) -> str:
    return (
        f"run `python download_mednist.py --data-dir {data_dir}` "
        "(offline: add --from-archive PATH/TO/MedNIST.tar.gz, or --synthetic for a generated set)"
    )


def _root(data_dir: str | os.PathLike) -> Path:
    """DIR/MedNIST; a path that already is a MedNIST root is accepted as is."""
    path = Path(data_dir)
    if path.name == FOLDER and (path / MANIFEST_NAME).is_file():
        return path
    return path / FOLDER


# --- counting, layout, manifest ---------------------------------------------------


def count_images(root: str | os.PathLike) -> dict[str, int]:
    """Images per class folder of ``root`` (os.scandir; no image is opened)."""
    counts: dict[str, int] = {}
    with os.scandir(root) as entries:
        folders = sorted(e.name for e in entries if e.is_dir())
    for name in folders:
        with os.scandir(os.path.join(root, name)) as entries:
            counts[name] = sum(1 for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file())
    return counts


def layout_problem(root: str | os.PathLike) -> str | None:
    """What keeps ``root`` from being a MedNIST tree (one folder of images per class), or None."""
    root = Path(root)
    if not root.is_dir():
        return f"no {FOLDER}/ folder"
    counts = count_images(root)
    missing = [c for c in CLASS_NAMES if counts.get(c, 0) == 0]
    if missing:
        return f"no images for class(es) {', '.join(missing)} in {FOLDER}/<class>/"
    return None  # other folders are ignored (find_images names them), never a class


def _sample_images(root: Path, counts: dict[str, int]) -> dict:
    sizes: Counter = Counter()
    modes: Counter = Counter()
    unreadable = []
    for cls in CLASS_NAMES:
        files = sorted(e.name for e in os.scandir(root / cls) if e.name.lower().endswith(IMAGE_EXTENSIONS))
        picks = sorted({0, len(files) // 2, len(files) - 1})[:SAMPLE_PER_CLASS]
        for i in picks:
            path = root / cls / files[i]
            try:
                with Image.open(path) as im:
                    sizes[f"{im.width}x{im.height}"] += 1
                    modes[im.mode] += 1
            except (OSError, ValueError, Image.DecompressionBombError) as err:
                unreadable.append([f"{cls}/{files[i]}", str(err)])
    size = sizes.most_common(1)[0][0] if sizes else None
    return {
        "image_size": [int(v) for v in size.split("x")] if size else None,
        "image_mode": modes.most_common(1)[0][0] if modes else None,
        "image_check": {
            "checked": sum(sizes.values()) + len(unreadable),
            "sizes": dict(sizes),
            "modes": dict(modes),
            "unreadable": unreadable,
        },
    }


def build_manifest(
    root: str | os.PathLike,
    source: str,
    *,
    url: str | None = None,
    archive_path: str | os.PathLike | None = None,
    archive_md5: str | None = None,
    archive_sha256: str | None = None,
    verified_official: bool = False,
    synthetic: bool = False,
    extra: dict | None = None,
) -> dict:
    """The manifest of a MedNIST tree whose layout has been checked."""
    root = Path(root)
    counts = {c: n for c, n in count_images(root).items() if c in CLASS_NAMES}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "source": source,
        "url": url,
        "archive_path": str(Path(archive_path).resolve()) if archive_path else None,
        "archive_md5": archive_md5,
        "archive_sha256": archive_sha256,
        "verified_official": bool(verified_official),  # md5 equal to the official archive's
        "class_counts": counts,
        "total": sum(counts.values()),
        **_sample_images(root, counts),
        "ignored_entries": [[str(Path(p).relative_to(root)), why] for p, why in find_images(root).ignored],
        "synthetic": bool(synthetic),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest.update(extra or {})
    return manifest


def write_manifest(root: str | os.PathLike, manifest: dict) -> Path:
    return write_json(Path(root) / MANIFEST_NAME, manifest)


def verify_tree(root: str | os.PathLike) -> str | None:
    """None if ``root`` holds a manifest whose per-class counts match the files; else why not."""
    root = Path(root)
    if not root.is_dir():
        return f"{root} does not exist"
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{root} has no {MANIFEST_NAME} (incomplete or not made by download_mednist.py)"
    except (OSError, ValueError) as err:
        return f"{root / MANIFEST_NAME} is unreadable ({err})"
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        return f"{root / MANIFEST_NAME} is not a version-{MANIFEST_VERSION} manifest"
    expected = manifest.get("class_counts") or {}
    on_disk = {c: n for c, n in count_images(root).items() if n > 0 and c in CLASS_NAMES}
    if on_disk != expected:
        diff = sorted(c for c in set(on_disk) | set(expected) if on_disk.get(c) != expected.get(c))
        first = diff[0]
        return f"{root / first} holds {on_disk.get(first, 0)} images, the manifest says {expected.get(first, 0)}"
    return None


def is_verified(data_dir: str | os.PathLike) -> bool:
    return verify_tree(_root(data_dir)) is None


def mednist_root(data_dir: str | os.PathLike) -> Path:
    """DIR/MedNIST if verified (manifest present, counts match the files), else UserError."""
    root = _root(data_dir)
    problem = verify_tree(root)
    if problem:
        raise UserError(f"no verified MedNIST in {root}: {problem}; {_hint(Path(data_dir))}")
    return root


def load_manifest(data_dir: str | os.PathLike) -> dict:
    path = _root(data_dir) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no MedNIST manifest at {path}; {_hint(Path(data_dir))}") from None
    except (OSError, ValueError) as err:
        raise UserError(f"MedNIST manifest {path} is unreadable ({err}); {_hint(Path(data_dir))} --force") from None


# --- discovery and split ------------------------------------------------------------


@dataclass
class ImageList:
    paths: list[str]
    labels: list[int]  # index into CLASS_NAMES
    ignored: list[tuple[str, str]]  # (path, why): entries that are neither a class folder nor an image in one


def find_images(root: str | os.PathLike) -> ImageList:
    """The image files of the six MedNIST class folders, labelled by CLASS_NAMES' order (the
    sorted names, as in the MONAI tutorial). Anything else in ``root`` (another folder, a
    stray file) or in a class folder (a subfolder, a file without an image extension) is
    listed in ``ignored`` and never becomes a label or a sample."""
    root = Path(root)
    paths: list[str] = []
    labels: list[int] = []
    ignored: list[tuple[str, str]] = []
    with os.scandir(root) as entries:
        top = sorted((e.name, e.is_dir()) for e in entries)
    for name, is_dir in top:
        if name == MANIFEST_NAME or name in CLASS_NAMES and is_dir:
            continue
        why = f"not one of the six MedNIST class folders ({', '.join(CLASS_NAMES)})" if is_dir else \
            "a file beside the class folders"
        ignored.append((str(root / name), why))
    for label, cls in enumerate(CLASS_NAMES):
        if not (root / cls).is_dir():
            continue
        with os.scandir(root / cls) as entries:
            items = sorted((e.name, e.is_file()) for e in entries)
        for name, is_file in items:
            if is_file and name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(str(root / cls / name))
                labels.append(label)
            else:
                why = "a folder inside a class folder" if not is_file else \
                    f"not an image file name (expected {', '.join(IMAGE_EXTENSIONS)})"
                ignored.append((str(root / cls / name), why))
    return ImageList(paths, labels, ignored)


def list_images(root: str | os.PathLike) -> tuple[list[str], list[int], list[str]]:
    """(paths, labels, class_names) of the six class folders (see ``find_images``)."""
    found = find_images(root)
    return found.paths, found.labels, list(CLASS_NAMES)


@dataclass(frozen=True)
class Split:
    train_paths: list[str]
    train_labels: list[int]
    val_paths: list[str]
    val_labels: list[int]
    test_paths: list[str]
    test_labels: list[int]

    def counts(self) -> dict:
        """Sizes of the three parts, in total and per label."""
        out: dict = {}
        for part in ("train", "val", "test"):
            labels = getattr(self, f"{part}_labels")
            out[part] = len(labels)
            out[f"{part}_per_class"] = {int(k): v for k, v in sorted(Counter(labels).items())}
        return out


def _largest_remainder(sizes: list[int], total: int) -> list[int]:
    """Share ``total`` among groups proportionally to ``sizes`` (never above a size)."""
    total = min(total, sum(sizes))
    exact = np.array(sizes, dtype=float) * total / max(sum(sizes), 1)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: total - int(quota.sum())]:
        quota[i] += 1
    return quota.tolist()


def split_dataset(
    paths: list[str],
    labels: list[int],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    max_train: int | None = None,
) -> Split:
    """Seeded split, stratified per class; ``max_train`` caps the training part (stratified).
    The same inputs (in any order) and seed give the same split on any machine."""
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError(
            f"invalid split fractions val={val_fraction}, test={test_fraction}: "
            "each must be in [0, 1) and their sum below 1 (config.VAL_FRACTION, config.TEST_FRACTION)"
        )
    if max_train is not None and max_train < 1:
        raise UserError(f"invalid max_train={max_train}: it must be at least 1 (config.QUICK_MAX_TRAIN_IMAGES)")
    rng = np.random.default_rng(seed)
    pairs = sorted(zip(paths, labels, strict=True), key=lambda p: (int(p[1]), str(p[0])))
    parts: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    train_by_class = []
    for label in sorted({int(lab) for _, lab in pairs}):
        items = [p for p in pairs if int(p[1]) == label]
        items = [items[i] for i in rng.permutation(len(items))]
        n_val = int(len(items) * val_fraction + 0.5)
        n_test = min(int(len(items) * test_fraction + 0.5), len(items) - n_val)
        parts["val"] += items[:n_val]
        parts["test"] += items[n_val : n_val + n_test]
        train_by_class.append(items[n_val + n_test :])
    quota = [len(t) for t in train_by_class]
    if max_train is not None:
        quota = _largest_remainder(quota, max_train)
    for items, k in zip(train_by_class, quota, strict=True):
        parts["train"] += items[:k]
    cols = {}
    for key, items in parts.items():
        items.sort(key=lambda p: (int(p[1]), str(p[0])))
        cols[f"{key}_paths"] = [str(p) for p, _ in items]
        cols[f"{key}_labels"] = [int(lab) for _, lab in items]
    return Split(**cols)
