"""common.workloads.volume3d on the synthetic phantom at a coarse spacing: preprocessing,
3D augmentation, a tiny UNet training, sliding-window probabilities and the rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.data import volumes
from common.measure.timing import Timer
from common.transforms import BatchedAugment3D
from common.workloads import volume3d as v3

SPACING_MM = 6.0  # the phantom is 96^3 at 2 mm: 32^3 voxels after resampling
PATCH = 16
CHANNELS = (8, 16)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def phantom():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(volumes, "mni152_paths", lambda: None)
        vol = volumes.load_volume()
    assert vol.source == "synthetic_phantom" and vol.synthetic
    return vol


@pytest.fixture(scope="module")
def prep(phantom):
    return v3.preprocess(phantom, CPU, SPACING_MM)


@pytest.fixture(scope="module")
def trained(prep):
    return v3.train_unet(prep, CPU, steps=3, patch=PATCH, batch=2, channels=CHANNELS, precision="fp32", seed=0)


def test_preprocess_scales_to_unit_range_with_aligned_labels(phantom, prep):
    timer = Timer("cpu")
    again = v3.preprocess(phantom, CPU, SPACING_MM, timer)
    img, lab = prep.image, prep.label
    # MONAI Spacing keeps the voxel-centre extent: ceil((n - 1) * 2 / 6) + 1 = 33 voxels per axis
    expected = tuple(math.ceil((n - 1) * volumes.PHANTOM_SPACING_MM / SPACING_MM) + 1 for n in phantom.image.shape)
    assert img.shape == (1, *expected) and img.dtype == torch.float32
    assert lab is not None and lab.shape == img.shape and lab.dtype == torch.long
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0 and float(img.max()) > 0.9
    assert set(torch.unique(lab).tolist()) == {0, 1, 2}
    assert prep.spacing == (SPACING_MM,) * 3 and prep.nonfinite_voxels == 0
    assert np.allclose(np.abs(np.diag(prep.affine)[:3]), SPACING_MM)
    # aligned: the phantom's contrast (white > grey > background) holds label by label after resampling
    means = [float(img[lab == c].mean()) for c in (0, 1, 2)]
    assert means[2] > means[1] + 0.1 > means[0] + 0.2, means
    # and a threshold between the class intensities recovers the labels almost everywhere
    guess = (img > (means[0] + means[1]) / 2).long() + (img > (means[1] + means[2]) / 2).long()
    assert float((guess == lab).float().mean()) > 0.8
    # label fractions survive the resampling
    src = np.bincount(phantom.label.ravel(), minlength=3) / phantom.label.size
    dst = torch.bincount(lab.ravel(), minlength=3).numpy() / lab.numel()
    assert np.allclose(src, dst, atol=0.03), (src, dst)
    assert set(again.stage_s) == {"vol_h2d", "orientation", "spacing", "intensity"}
    assert all(v > 0 for v in again.stage_s.values())
    assert torch.equal(again.image, img)


def test_preprocess_replaces_and_counts_nonfinite_voxels(phantom):
    import dataclasses

    img = phantom.image.copy()
    img[0, 0, :3] = [np.nan, np.inf, -np.inf]
    p = v3.preprocess(dataclasses.replace(phantom, image=img), CPU, 12.0)
    assert p.nonfinite_voxels == 3 and torch.isfinite(p.image).all()


def test_batched_augment3d_keeps_shapes_and_label_values(prep):
    g = torch.Generator().manual_seed(0)
    x, y = v3.sample_patches(prep, 4, PATCH, g)
    assert x.shape == y.shape == (4, 1, PATCH, PATCH, PATCH)
    assert set(torch.unique(y).tolist()) <= {0, 1, 2} and int((y > 0).sum()) > 0
    stages: dict[str, float] = {}
    xa, ya = BatchedAugment3D()(x, y, torch.Generator().manual_seed(1), stages=stages)
    assert xa.shape == x.shape and xa.dtype == x.dtype
    assert ya.shape == y.shape and ya.dtype == torch.long
    assert set(torch.unique(ya).tolist()) <= {0, 1, 2}
    assert not torch.equal(xa, x)  # it did something
    assert set(stages) == {"RandAffine", "RandGaussianNoise", "RandFlip"} and all(v > 0 for v in stages.values())
    xb, yb = BatchedAugment3D()(x, None, torch.Generator().manual_seed(1))
    assert yb is None and xb.shape == x.shape


def test_augmentation_timing_reports_both_sides(prep):
    res = v3.augmentation_timing(prep, CPU, PATCH, n=2, repeats=2)
    for side in ("cpu_monai_ms_per_patch", "device_batched_ms_per_patch"):
        assert set(res[side]) == {"RandAffine", "RandGaussianNoise", "RandFlip"}
        assert all(s["median"] > 0 for s in res[side].values())


def test_train_unet_returns_finite_losses(trained):
    model, info = trained
    assert isinstance(model, torch.nn.Module)
    assert len(info["losses"]) == 3 and all(math.isfinite(v) and v > 0 for v in info["losses"])
    assert info["classes"] == 3 and info["parameters"] > 0 and info["warmup_step_s"] > 0
    assert set(info["stage_s"]) == {"sample", "augment", "forward", "backward", "optimizer"}
    assert info["step_s"]["median"] > 0


def test_sliding_window_probabilities_sum_to_one(prep, trained):
    model, _ = trained
    probs, secs = v3.sliding_window(model, prep.image, PATCH, "fp32")
    assert probs.shape == (3, *prep.image.shape[1:]) and secs > 0
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
    assert torch.allclose(probs.sum(0), torch.ones(prep.image.shape[1:]), atol=1e-5)
    assert model.training  # left in training mode, as it was


def test_render_gives_images_in_unit_range(prep):
    views, secs = v3.render(prep.image, prep.label[0], [0.0, 90.0], size=32)
    assert views.shape == (2, 32, 32, 3) and len(secs) == 2 and all(s > 0 for s in secs)
    assert views.min() >= 0.0 and views.max() <= 1.0
    assert (views > 0.05).mean() > 0.05, "the rendering is (almost) empty"
    assert not np.allclose(views[0], views[1])  # another azimuth, another view
    grey, _ = v3.render(prep.image, None, [0.0], size=32)  # without a segmentation: intensity colours
    assert grey.shape == (1, 32, 32, 3) and 0 <= grey.min() and grey.max() <= 1 and grey.max() > 0
