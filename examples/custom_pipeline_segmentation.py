#!/usr/bin/env python3
"""Your own pipeline, analyzed: a MONAI 3D UNet that segments brain tissue (background, grey and
white matter) in patches of the MNI152 T1 template that nilearn ships (common/data/volumes.py; your
NIfTI with --volume/--label instead). It hands the suite its dataset, model, loss, optimizer and
transforms through common/pipeline_protocol.py, and the suite measures it: stage breakdown, data
stall, batch sweep, inference latency, levers, utilization and energy, with a report (Markdown and
self-contained HTML), a Perfetto trace and CSVs under
<results-dir>/custom_pipelines/mni152_unet3d_segmentation/<gpu|cpu>_results/.

    python examples/custom_pipeline_segmentation.py --device cpu --patch 32 --patches 16
    python examples/custom_pipeline_segmentation.py --device cuda --patch 64 --patches 64 --batch-size 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.errors import UserError, run_main  # noqa: E402
from common.pipeline_protocol import CustomPipeline  # noqa: E402


class PatchDataset(torch.utils.data.Dataset):
    """``n`` seeded random patches (image scaled to [0, 1], tissue label) of one volume."""

    def __init__(self, image: np.ndarray, label: np.ndarray, patch: int, n: int, seed: int = 0):
        if min(image.shape) < patch:
            raise UserError(f"--patch {patch} is larger than the volume {image.shape}: use a smaller --patch")
        rng = np.random.default_rng(seed)
        lo, hi = float(image.min()), float(image.max())
        self.image = ((image - lo) / (hi - lo or 1.0)).astype(np.float32)
        self.label = label.astype(np.int64)
        self.corners = [tuple(int(rng.integers(0, s - patch + 1)) for s in image.shape) for _ in range(n)]
        self.patch = patch

    def __len__(self) -> int:
        return len(self.corners)

    def __getitem__(self, i: int):
        z, y, x = self.corners[i]
        p = self.patch
        img = torch.from_numpy(self.image[z:z + p, y:y + p, x:x + p].copy())[None]
        lab = torch.from_numpy(self.label[z:z + p, y:y + p, x:x + p].copy())[None]
        return img, lab


def build_pipeline(patch: int = 32, patches: int = 16, batch_size: int = 2, channels=(8, 16, 32),
                   volume: str | None = None, label: str | None = None) -> CustomPipeline:
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet
    from monai.transforms import RandAffine, RandFlip, ScaleIntensity

    from common.data.volumes import load_volume

    vol = load_volume(volume, label)
    if vol.label is None:
        raise UserError(f"{vol.image_path}: the segmentation example needs a label map: pass --label")
    ds = PatchDataset(vol.image, vol.label, patch, patches)
    n_classes = int(vol.label.max()) + 1
    model = UNet(spatial_dims=3, in_channels=1, out_channels=n_classes, channels=tuple(channels),
                 strides=(2,) * (len(channels) - 1), num_res_units=1)
    return CustomPipeline(
        name="MNI152 UNet3D segmentation",
        description=f"MONAI 3D UNet {tuple(channels)}, {n_classes} classes ({', '.join(vol.class_names)}), "
                    f"{patches} patches of {patch}^3 voxels from the {vol.source} volume {vol.image.shape}, "
                    f"DiceCE loss, Adam",
        model=model,
        loss_fn=DiceCELoss(to_onehot_y=True, softmax=True),
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        dataset=ds,
        batch_size=batch_size,
        transforms=[("ScaleIntensity", ScaleIntensity()),
                    ("RandFlip", RandFlip(prob=1.0, spatial_axis=0)),
                    ("RandAffine", RandAffine(prob=1.0, rotate_range=(0.26, 0.26, 0.26), scale_range=(0.1,) * 3,
                                              padding_mode="zeros"))],
        stages={"forward": "UNet forward + DiceCE"},
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                   help="where to measure (default: cuda when available)")
    p.add_argument("--results-dir", default=None, help="results root (default: config.RESULTS_DIR)")
    p.add_argument("--patch", type=int, default=32, help="patch edge in voxels (default 32)")
    p.add_argument("--patches", type=int, default=16, help="patches in the dataset (default 16)")
    p.add_argument("--batch-size", type=int, default=2, help="patches per training batch (default 2)")
    p.add_argument("--channels", default="8,16,32", help="UNet channels per level (default 8,16,32)")
    p.add_argument("--volume", default=None, help="your NIfTI volume (default: MNI152 from nilearn)")
    p.add_argument("--label", default=None, help="its label map (NIfTI, integer classes)")
    p.add_argument("--set", dest="SET", action="append", default=[], metavar="NAME=VALUE",
                   help="a config.py constant for the measurement, e.g. --set MEASURE_STEPS=5 --set BATCH_SIZES=1,2,4")
    return p


def settings_from(items: list[str]) -> dict:
    from common.cli import parse_set

    return parse_set(items)


@run_main
def main(argv: list[str] | None = None) -> int:
    from common.api import ComprehensiveCPUAnalyzer, ComprehensiveGPUAnalyzer

    args = build_parser().parse_args(argv)
    channels = tuple(int(c) for c in args.channels.split(","))
    pipeline = build_pipeline(args.patch, args.patches, args.batch_size, channels, args.volume, args.label)
    cls = ComprehensiveGPUAnalyzer if args.device == "cuda" else ComprehensiveCPUAnalyzer
    records = cls(results_dir=args.results_dir, **settings_from(args.SET)).analyze_custom_pipeline(pipeline)
    return 0 if all(r.status != "error" for r in records.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
