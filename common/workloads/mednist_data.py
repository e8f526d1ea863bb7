"""MedNIST for the workloads: the split, the decoded images (in LoadImage's orientation)
and the data sources each lever's data path uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from common.data.mednist import CLASS_NAMES, Split, decode_images
from common.transforms import TimedCompose, tutorial_train_transforms


@dataclass
class MedNISTData:
    """The split plus decoded uint8 arrays (N, 64, 64) per part. Every file was decoded and
    checked once when the data was loaded (``common.data.imagecheck``): the split holds only
    files that passed, so the recipe's DataLoader workers never meet a damaged one. Images
    are transposed to MONAI LoadImage's orientation (PILReader reverses the axes), so every
    data path sees the same pixels."""

    split: Split
    class_names: list[str]
    source: dict = field(default_factory=dict)  # the dataset manifest (source, synthetic flag, ...)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): never used
    converted: list[tuple[str, str]] = field(default_factory=list)  # (path, what): used after conversion
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, why): not a class folder / image
    decode_seconds: dict[str, float] = field(default_factory=dict)
    _decoded: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # path -> (64, 64) uint8
    _arrays: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def part(self, name: str) -> tuple[list[str], list[int]]:
        return getattr(self.split, f"{name}_paths"), getattr(self.split, f"{name}_labels")

    def arrays(self, name: str, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8 (N, 64, 64), labels int64 (N,)) of 'train' | 'val' | 'test'."""
        if name not in self._arrays:
            paths, labels = self.part(name)
            missing = [p for p in paths if p not in self._decoded]
            if missing:  # a split built outside load_mednist: decode (and check) now
                t0 = time.perf_counter()
                res = decode_images(missing, progress=progress)
                self.decode_seconds[name] = time.perf_counter() - t0
                self.skipped.extend(res.skipped)
                self.converted.extend(res.converted)
                self._decoded.update({missing[i]: res.images[k] for k, i in enumerate(res.kept_indices)})
            keep = [i for i, p in enumerate(paths) if p in self._decoded]
            imgs = np.stack([self._decoded[paths[i]] for i in keep]) if keep else np.empty((0, 64, 64), np.uint8)
            imgs = np.ascontiguousarray(imgs.transpose(0, 2, 1))
            self._arrays[name] = (imgs, np.asarray([labels[i] for i in keep], dtype=np.int64))
        return self._arrays[name]

    def train_paths_labels(self) -> tuple[list[str], list[int]]:
        """Training files minus the ones that failed to decode (so every path yields a sample)."""
        paths, labels = self.part("train")
        bad = {p for p, _ in self.skipped}
        kept = [(p, y) for p, y in zip(paths, labels) if p not in bad]
        return [p for p, _ in kept], [y for _, y in kept]

    def problems(self) -> dict:
        """Data problems for the records and the report: every file named with its reason."""
        def unique(items):  # a decoded cache may report a skipped file again
            return [list(x) for x in dict.fromkeys(tuple(x) for x in items)]

        return {"skipped_images": unique(self.skipped), "converted_images": unique(self.converted),
                "ignored_entries": unique(self.ignored)}


class TutorialDataset(torch.utils.data.Dataset):
    """MONAI tutorial: one file -> LoadImage, EnsureChannelFirst, ScaleIntensity, RandRotate,
    RandFlip, RandZoom. Returns (image, label, seconds per transform) so the stages that run
    inside DataLoader workers can be measured."""

    def __init__(self, paths: list[str], labels: list[int], seed: int = 0):
        self.paths, self.labels = paths, labels
        self.compose = TimedCompose(tutorial_train_transforms(load=True), seed=seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        x = self.compose(self.paths[i])
        return x, self.labels[i], torch.tensor(self.compose.last_times, dtype=torch.float64)


class CachedDataset(torch.utils.data.Dataset):
    """Decoded uint8 images kept in RAM; the tutorial's deterministic preprocessing and
    random augmentation still run per sample (MONAI CacheDataset style)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int = 0):
        self.images, self.labels = images, labels
        self.compose = TimedCompose(tutorial_train_transforms(load=False), seed=seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.compose(torch.from_numpy(self.images[i]).float()[None])
        # no LoadImage, no EnsureChannelFirst: their stage times are zero by construction
        return x, int(self.labels[i]), torch.tensor([0.0, 0.0] + self.compose.last_times, dtype=torch.float64)


def _reseed_worker(worker_id: int) -> None:
    """Give each worker its own random stream (torch's DataLoader does not reseed MONAI's)."""
    info = torch.utils.data.get_worker_info()
    ds = info.dataset
    if hasattr(ds, "compose"):
        ds.compose.set_random_state(int(info.seed % (2**31 - 1)))


def make_loader(dataset: torch.utils.data.Dataset, batch_size: int, num_workers: int, seed: int,
                shuffle: bool = True) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                                       generator=g, worker_init_fn=_reseed_worker if num_workers else None)


class DeviceResidentData:
    """uint8 images (N, 1, 64, 64) and labels on the device. Batches are gathered by index,
    scaled and augmented there (``common.transforms``)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device, seed: int = 0):
        t0 = time.perf_counter()
        self.images = torch.from_numpy(images).unsqueeze(1).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.upload_seconds = time.perf_counter() - t0
        self.n = len(labels)
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def epoch_indices(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Index batches of one shuffled epoch (last partial batch dropped: static shapes)."""
        perm = torch.randperm(self.n, device=self.device, generator=self.generator)
        for i in range(self.n // batch_size):
            yield perm[i * batch_size:(i + 1) * batch_size]

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.n // batch_size


def cap_eval(split: Split, n: int) -> Split:
    """Validation and test sets cut to at most ``n`` images each, keeping every class
    (the split lists each part sorted by class, so an even stride stays stratified)."""
    import dataclasses

    def cut(paths, labels):
        if len(paths) <= n:
            return paths, labels
        idx = np.linspace(0, len(paths) - 1, n).round().astype(int)
        return [paths[i] for i in idx], [labels[i] for i in idx]

    vp, vl = cut(split.val_paths, split.val_labels)
    tp, tl = cut(split.test_paths, split.test_labels)
    return dataclasses.replace(split, val_paths=vp, val_labels=vl, test_paths=tp, test_labels=tl)


def load_mednist(data_dir, val_fraction: float, test_fraction: float, seed: int, max_train: int | None = None,
                 max_eval: int | None = None, progress: bool = False, check: bool = True) -> MedNISTData:
    """MedNIST under ``data_dir`` split as every script splits it (stratified, seeded), with
    optional caps on training and on validation/test images. With ``check`` (the default)
    every image of the six class folders is decoded and checked first (a few seconds for
    12,000 images) and the split is drawn from the files that passed, so a damaged file is
    named, never met mid-run; the decoded parts are kept. ``check=False`` splits the file
    list as found and decodes on demand: the caller must decode a part (``arrays``) before
    handing its files to a DataLoader (``train_paths_labels`` drops only what was decoded)."""
    from common.data.mednist import find_images, load_manifest, mednist_root, split_dataset
    from common.errors import UserError

    root = mednist_root(data_dir)
    found = find_images(root)
    if not check:
        split = split_dataset(found.paths, found.labels, val_fraction, test_fraction, seed, max_train=max_train)
        split = cap_eval(split, max_eval) if max_eval else split
        return MedNISTData(split, list(CLASS_NAMES), source=load_manifest(data_dir), ignored=list(found.ignored))
    t0 = time.perf_counter()
    res = decode_images(found.paths, progress=progress)
    seconds = time.perf_counter() - t0
    paths = [found.paths[i] for i in res.kept_indices]
    labels = [found.labels[i] for i in res.kept_indices]
    empty = [c for k, c in enumerate(CLASS_NAMES) if k not in set(labels)]
    if empty:
        raise UserError(f"no decodable image for class(es) {', '.join(empty)} in {root}: every file there was "
                        f"skipped ({len(res.skipped)} skipped in all); get the data again with download_mednist.py")
    split = split_dataset(paths, labels, val_fraction, test_fraction, seed, max_train=max_train)
    if max_eval:
        split = cap_eval(split, max_eval)
    data = MedNISTData(split, list(CLASS_NAMES), source=load_manifest(data_dir), skipped=list(res.skipped),
                       converted=list(res.converted), ignored=list(found.ignored),
                       decode_seconds={"all": seconds})
    data._decoded = {p: res.images[k] for k, p in enumerate(paths)}
    for part in ("train", "val", "test"):  # every part decoded now: a caller never decodes again
        data.arrays(part)
    data._decoded = {}
    return data
