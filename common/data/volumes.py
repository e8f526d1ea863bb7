"""3D volumes: a user's NIfTI (with an optional label map), by default the MNI152 T1
template with grey/white-matter labels shipped inside the nilearn package, and a
synthetic phantom, labeled as such, only where neither exists."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError

TISSUE_CLASSES = ["background", "grey_matter", "white_matter"]
MNI152_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
PHANTOM_SHAPE = (96, 96, 96)
PHANTOM_SPACING_MM = 2.0
PHANTOM_SEED = 0


@dataclass
class Volume:
    image: np.ndarray  # float32, 3D
    label: np.ndarray | None  # int64, same shape as image
    affine: np.ndarray  # 4x4 voxel-to-world (mm)
    spacing: tuple[float, float, float]  # mm
    source: str  # "user" | "mni152" | "synthetic_phantom"
    synthetic: bool
    class_names: list[str] = field(default_factory=list)
    image_path: str | None = None
    label_path: str | None = None
    label_sources: list[str] = field(default_factory=list)  # files the label was computed from

    def describe(self) -> dict:
        """A JSON-safe summary."""
        counts = None
        if self.label is not None:
            values, n = np.unique(self.label, return_counts=True)
            names = {i: name for i, name in enumerate(self.class_names)}
            counts = {names.get(int(v), f"class_{int(v)}"): int(c) for v, c in zip(values, n, strict=True)}
        return {
            "shape": [int(s) for s in self.image.shape],
            "spacing_mm": [float(s) for s in self.spacing],
            "source": self.source,
            "synthetic": bool(self.synthetic),
            "image_path": self.image_path,
            "label_path": self.label_path,
            "label_sources": list(self.label_sources),
            "class_names": list(self.class_names),
            "label_counts": counts,
            "intensity_range": [float(self.image.min()), float(self.image.max())] if self.image.size else None,
        }


# --- NIfTI reading ------------------------------------------------------------------


def _read_nifti(path: str | os.PathLike, what: str):
    """(data, nibabel image) of a 3D NIfTI (4D with a singleton last axis is squeezed)."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file {path} not found: check --volume / --label")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises many types for a bad file
        raise UserError(f"cannot read {what} file {path} as NIfTI ({type(err).__name__}: {err})") from None
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise UserError(f"{what} file {path} has shape {data.shape}: a 3D volume is needed")
    return data, img


MAX_LABEL_CLASSES = 32  # a label map with a class value >= this is refused (a segmentation head of that many outputs)


def _spacing(img, path: str | os.PathLike | None = None) -> tuple[float, float, float]:
    """The voxel spacing (mm) from the header; UserError if it is not finite and positive."""
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    if path is not None and not all(np.isfinite(z) and 0 < z < 1000 for z in spacing):
        raise UserError(f"volume file {path} has voxel spacing {spacing} mm in its header: allowed is finite and in "
                        "(0, 1000) mm on every axis; fix the header (pixdim) of the NIfTI file")
    return spacing


def _as_labels(data: np.ndarray, path: Path) -> np.ndarray:
    if np.issubdtype(data.dtype, np.floating):
        rounded = np.rint(data)
        if not np.allclose(data, rounded, atol=1e-3):
            raise UserError(f"label file {path} holds non-integer values: a label map needs integer classes")
        data = rounded
    if data.size and data.min() < 0:
        raise UserError(f"label file {path} holds negative values: classes must be 0, 1, 2, ...")
    if data.size and data.max() >= MAX_LABEL_CLASSES:
        raise UserError(f"label file {path} holds class value {int(data.max())}: allowed are 0 to "
                        f"{MAX_LABEL_CLASSES - 1} ({MAX_LABEL_CLASSES} classes at most); is it a label map?")
    return data.astype(np.int64)


def load_user_volume(volume_path: str | os.PathLike, label_path: str | os.PathLike | None = None) -> Volume:
    data, img = _read_nifti(volume_path, "volume")
    if not np.isfinite(data).all():
        raise UserError(f"volume file {volume_path} holds {int((~np.isfinite(data)).sum())} NaN or infinite voxel(s): "
                        "allowed are finite intensities; fix or replace the file")
    label = None
    class_names: list[str] = []
    if label_path is not None:
        ldata, nib_label = _read_nifti(label_path, "label")
        if ldata.shape != data.shape:
            raise UserError(
                f"label {label_path} has shape {ldata.shape} but volume {volume_path} has shape {data.shape}: "
                "the label map must match the volume voxel for voxel"
            )
        label = _as_labels(ldata, Path(label_path))
        _spacing(nib_label, label_path)
        n = int(label.max()) + 1 if label.size else 1
        class_names = ["background"] + [f"class_{k}" for k in range(1, n)]
    return Volume(
        image=np.asarray(data, dtype=np.float32),
        label=label,
        affine=np.asarray(img.affine, dtype=np.float64),
        spacing=_spacing(img, volume_path),
        source="user",
        synthetic=False,
        class_names=class_names,
        image_path=str(volume_path),
        label_path=str(label_path) if label_path is not None else None,
        label_sources=[str(label_path)] if label_path is not None else [],
    )


# --- MNI152 from the nilearn package ----------------------------------------------------


def mni152_paths() -> dict[str, Path] | None:
    """Paths of the MNI152 T1, GM and WM files inside the installed nilearn package (found
    without importing it), or None where nilearn or a file is missing."""
    try:
        spec = importlib.util.find_spec("nilearn")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        paths = {k: Path(folder) / "datasets" / "data" / name for k, name in MNI152_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def _probability(data: np.ndarray) -> np.ndarray:
    """A tissue probability map scaled to [0, 1] (nilearn ships them as uint8 0..255)."""
    prob = np.asarray(data, dtype=np.float32)
    top = float(prob.max()) if prob.size else 0.0
    if top > 1.0:
        prob /= 255.0 if top <= 255.0 else top
    return np.clip(prob, 0.0, 1.0)


def tissue_labels(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """argmax over (background = max(1 - gm - wm, 0), gm, wm); ties go to background."""
    background = np.maximum(1.0 - gm - wm, 0.0)
    label = (gm > background).astype(np.int64)  # same as argmax, without a strided 3-way stack
    label[(wm > background) & (wm > gm)] = 2
    return label


def load_mni152(paths: dict[str, Path]) -> Volume:
    t1, img = _read_nifti(paths["t1"], "MNI152 T1")
    gm, _ = _read_nifti(paths["gm"], "MNI152 grey matter")
    wm, _ = _read_nifti(paths["wm"], "MNI152 white matter")
    return Volume(
        image=np.asarray(t1, dtype=np.float32),
        label=tissue_labels(_probability(gm), _probability(wm)),
        affine=np.asarray(img.affine, dtype=np.float64),
        spacing=_spacing(img),
        source="mni152",
        synthetic=False,
        class_names=list(TISSUE_CLASSES),
        image_path=str(paths["t1"]),
        label_sources=[str(paths["gm"]), str(paths["wm"])],
    )


# --- synthetic phantom --------------------------------------------------------------


def synthetic_phantom(shape: tuple[int, int, int] = PHANTOM_SHAPE, seed: int = PHANTOM_SEED) -> Volume:
    """An ellipsoid "brain": a wavy grey-matter shell around a white-matter core, T1-like
    contrast (white brighter than grey), Gaussian noise; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    axes = [(np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1 for n in shape]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.7) ** 2)
    folds = 0.06 * np.sin(9 * np.arctan2(y, x)) * np.cos(7 * z)
    label = np.zeros(shape, dtype=np.int64)
    label[r <= 1.0] = 1
    label[r <= 0.78 + folds] = 2
    label[(r <= 0.25) & (np.abs(x) < 0.12)] = 0  # ventricles
    image = np.choose(label, np.array([0.05, 0.55, 0.85], dtype=np.float32)).astype(np.float32)
    image += rng.normal(0.0, 0.04, shape).astype(np.float32)
    spacing = (PHANTOM_SPACING_MM,) * 3
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = [-(n * s) / 2 for n, s in zip(shape, spacing, strict=True)]
    return Volume(
        image=image,
        label=label,
        affine=affine,
        spacing=spacing,
        source="synthetic_phantom",
        synthetic=True,
        class_names=list(TISSUE_CLASSES),
    )


def load_volume(volume_path: str | os.PathLike | None = None, label_path: str | os.PathLike | None = None) -> Volume:
    """The user's NIfTI (and label) if given; else MNI152 from nilearn; else the phantom."""
    if volume_path is not None:
        return load_user_volume(volume_path, label_path)
    if label_path is not None:
        raise UserError(f"--label {label_path} needs --volume: a label map belongs to a volume")
    paths = mni152_paths()
    return load_mni152(paths) if paths else synthetic_phantom()
