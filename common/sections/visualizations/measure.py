"""visualizations/: the 3D volume pipeline on the analysed device -- it trains a 3D UNet and
renders the volume. (The section keeps the README's folder name, ``visualizations/``, which is
part of the results tree's contract; what it measures is the 3D pipeline.)

Preprocess, 3D augmentation timing, a short 3D UNet training on the volume's tissue maps,
sliding-window inference (probabilities, confidence, uncertainty, Dice, tissue volumes),
the same inference on the CPU in fp32 as reference, and a volume rendering computed on the
device, all in the device's fast precision (common.workloads.precision)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from common.analysis.context import Context
from common.data.volumes import load_volume
from common.quality import dice
from common.workloads import volume3d as v3
from common.workloads.precision import fast_precision

NAME = "visualizations"


def _slices(vol: np.ndarray, c: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Axial, coronal and sagittal planes through the crosshair of a (X, Y, Z) RAS volume,
    oriented for display (superior / anterior up)."""
    x, y, z = c
    return {
        "axial": np.flipud(vol[:, :, z].T),
        "coronal": np.flipud(vol[:, y, :].T),
        "sagittal": np.flipud(vol[x, :, :].T),
    }


def measure(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    dev = ctx.device
    timer = ctx.timer(NAME)
    vol = load_volume(s.volume_path, s.label_path)
    prep = v3.preprocess(vol, dev, s.volume_spacing_mm, timer)
    precision = fast_precision(dev)[0]
    patch = min(s.patch_size, *prep.image.shape[1:]) if min(prep.image.shape[1:]) < s.patch_size else s.patch_size
    batch = s.volume_batch_size
    out: dict[str, Any] = {
        "volume": vol.describe(),
        "synthetic": bool(vol.synthetic),
        "preprocess_s": prep.stage_s,
        "nonfinite_voxels_replaced": prep.nonfinite_voxels,
        "prepared_shape": list(prep.image.shape[1:]),
        "spacing_mm": list(prep.spacing),
        "precision": precision,
    }
    out["augmentation_3d"] = v3.augmentation_timing(prep, dev, patch, n=s.volume_augmentation_patches,
                                                    repeats=max(2, s.repeats))
    seg_ref = prep.label
    if seg_ref is None:
        out["training"] = None
        out["training_reason"] = "no label map: the volume has no reference segmentation to learn"
        return out
    bar = ctx.tqdm(s.volume_train_steps, "3D UNet training")
    model, info = v3.train_unet(prep, dev, s.volume_train_steps, patch, batch, s.unet_channels, precision,
                                seed=s.seed, timer=timer, progress=bar)
    bar.close()
    out["training"] = info
    _, warm_s = v3.sliding_window(model, prep.image, patch, precision)
    probs, sw_s = v3.sliding_window(model, prep.image, patch, precision)
    out["sliding_window"] = {"seconds": sw_s, "warmup_seconds": warm_s, "roi": patch, "overlap": 0.25,
                             "voxels": int(prep.image[0].numel()),
                             "voxels_per_s": int(prep.image[0].numel()) / sw_s}
    seg = probs.argmax(0)
    conf = probs.max(0).values
    n_cls = probs.shape[0]
    entropy = -(probs.clamp_min(1e-8) * probs.clamp_min(1e-8).log()).sum(0) / math.log(n_cls)
    ref = seg_ref[0]
    names = vol.class_names or [f"class_{i}" for i in range(n_cls)]
    voxel_ml = float(np.prod(prep.spacing)) / 1000.0
    out["dice"] = {names[c]: dice(seg, ref, c) for c in range(1, n_cls)}
    out["tissue_volume_ml"] = {
        names[c]: {"predicted": float((seg == c).sum()) * voxel_ml, "reference": float((ref == c).sum()) * voxel_ml}
        for c in range(1, n_cls)}
    out["confidence"] = {"mean": float(conf.mean()), "mean_in_brain": float(conf[ref > 0].mean()) if (ref > 0).any()
                         else None, "low_confidence_fraction": float((conf < 0.6).float().mean())}
    out["dice_note"] = ("trained and evaluated on the same volume for a short time: Dice measures fit, "
                        "not generalization")
    # CPU fp32 reference of the same trained model
    cpu_model = copy.deepcopy(model).to("cpu").float()
    ref_probs, ref_s = v3.sliding_window(cpu_model, prep.image.cpu(), patch, "fp32")
    diff = (probs.cpu() - ref_probs).abs()
    agree = float((ref_probs.argmax(0) == seg.cpu()).float().mean())
    out["cpu_reference"] = {"seconds": ref_s, "precision": "fp32", "max_abs_prob_diff": float(diff.max()),
                            "mean_abs_prob_diff": float(diff.mean()), "label_agreement": agree,
                            "identical_computation": dev.type == "cpu" and precision == "fp32"}
    # rendering on the device
    az = [float(a) for a in s.render_azimuths_deg]
    size = s.render_size
    v3.render(prep.image, seg, az[:1], size=size)  # warm-up
    views, secs = v3.render(prep.image, seg, az, size=size)
    out["render"] = {"azimuths_deg": az, "size": size, "seconds_per_view": secs, "device": str(dev)}
    maps = {"image": prep.image[0].cpu().numpy(), "reference": ref.cpu().numpy().astype(np.int8),
            "segmentation": seg.cpu().numpy().astype(np.int8), "confidence": conf.cpu().numpy(),
            "entropy": entropy.cpu().numpy(), "diff_vs_cpu": diff.max(0).values.numpy()}
    ctx.cache.figure_arrays["visualizations"] = _figure_arrays(out, maps, views)
    return out


def _figure_arrays(out: dict[str, Any], maps: dict[str, np.ndarray], views: np.ndarray) -> dict[str, np.ndarray]:
    """The planes the figures draw, through a crosshair at the labelled tissue's centre (recorded
    in ``out`` with the display window), and the renderings."""
    img, lab = maps["image"], maps["reference"]
    fg = np.argwhere(lab > 0)
    centre = tuple(int(v) for v in (fg.mean(0) if len(fg) else np.array(img.shape) / 2))
    out["crosshair_voxel"] = list(centre)
    lo, hi = np.percentile(img[lab > 0] if len(fg) else img, [1, 99])
    out["window_level"] = {"window": float(hi - lo), "level": float((hi + lo) / 2), "from": "1st-99th percentile"}
    arrays: dict[str, np.ndarray] = {"renders": views.astype(np.float16)}
    for key, volume in maps.items():
        for plane, arr in _slices(volume, centre).items():
            arrays[f"{key}_{plane}"] = arr.astype(np.float16) if arr.dtype.kind == "f" else arr
    return arrays
