"""common.transforms: the batched tutorial chain reproduces MONAI's transforms (same random
parameters), its identities hold, zoom matrices match MONAI Zoom, scale_intensity matches
MONAI ScaleIntensity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.transforms import (
    ROTATE_RANGE,
    ZOOM_RANGE,
    AugParams,
    BatchedAugment2D,
    monai_reference,
    scale_intensity,
    zoom_matrix,
)

TOL = 1e-4
N = 12


@pytest.fixture(scope="module")
def aug() -> BatchedAugment2D:
    return BatchedAugment2D()


def _images(seed: int, n: int = N) -> torch.Tensor:
    """Random images in [0, 1] with some structure (smooth blobs plus noise), (n, 1, 64, 64)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
    x = 0.7 * smooth + 0.3 * torch.rand(n, 1, 64, 64, generator=g)
    return scale_intensity(x)


def _forced(p: AugParams, which: str) -> AugParams:
    n = p.angle.shape[0]
    on, off = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    return AugParams(
        do_rotate=on if which in ("rotate", "all") else off,
        angle=p.angle,
        do_flip=on if which in ("flip", "all") else off,
        do_zoom=on if which in ("zoom", "all") else off,
        zoom=p.zoom,
    )


def _reference(x: torch.Tensor, p: AugParams) -> torch.Tensor:
    return torch.stack([monai_reference(x[i, 0].numpy(), p, i) for i in range(x.shape[0])])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("which", ["rotate", "flip", "zoom", "all"])
def test_batched_chain_matches_monai(aug, seed, which):
    x = _images(seed)
    p = _forced(aug.sample(N, "cpu", torch.Generator().manual_seed(100 + seed)), which)
    # the parameters really are random and in range
    assert p.angle.abs().max() <= ROTATE_RANGE and p.angle.std() > 0
    assert ((p.zoom >= ZOOM_RANGE[0]) & (p.zoom <= ZOOM_RANGE[1])).all() and p.zoom.std() > 0
    out = aug.apply(x, p)
    ref = _reference(x, p)
    assert out.shape == ref.shape == x.shape
    err = float((out - ref).abs().max())
    assert err < TOL, f"{which}, seed {seed}: max |batched - MONAI| = {err:.2e}"
    if which != "flip":  # the transform did something (flip is checked against MONAI above)
        assert float((out - x).abs().max()) > 1e-2


@pytest.mark.parametrize("seed", [3, 4])
def test_batched_chain_matches_monai_at_tutorial_probabilities(aug, seed):
    """The unforced parameters (each transform p=0.5) give a mix; still MONAI's result per sample."""
    x = _images(seed, n=16)
    p = aug.sample(16, "cpu", torch.Generator().manual_seed(seed))
    assert 0 < int(p.do_rotate.sum()) < 16 or 0 < int(p.do_zoom.sum()) < 16
    out = aug.apply(x, p)
    assert float((out - _reference(x, p)).abs().max()) < TOL


def test_forward_is_seeded_and_keeps_dtype_and_shape(aug):
    x = _images(5, n=4)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    c = aug(x, torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)
    assert aug(x.double(), torch.Generator().manual_seed(7)).dtype == torch.float64


def test_identities(aug):
    x = _images(6)
    n = x.shape[0]
    on, off = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    zero, one = torch.zeros(n), torch.ones(n)
    rot0 = aug.apply(x, AugParams(on, zero, off, off, one))
    # grid_sample recomputes the pixel centres in float32: the identity holds to float rounding
    assert float((rot0 - x).abs().max()) < 1e-5, "rotation by 0 must give the input back"
    flip = AugParams(off, zero, on, off, one)
    once = aug.apply(x, flip)
    assert torch.equal(once, x.flip(-2))
    assert torch.equal(aug.apply(once, flip), x), "flipping twice must be exact"
    assert torch.equal(aug.apply(x, AugParams(off, zero, off, on, one)), x), "zoom 1.0 must be exact"
    assert torch.equal(aug.apply(x, AugParams(off, zero, off, off, one)), x), "nothing fires: input unchanged"


@pytest.mark.parametrize("size", range(57, 71))
def test_zoom_matrix_matches_monai_zoom(size):
    from monai.transforms import Zoom

    zoom = (size + 0.25) / 64  # floor and round of 64 * zoom both give ``size``
    assert math.floor(64 * zoom) == size
    x = _images(size, n=1)[0]
    m = zoom_matrix(64, size)
    assert m.shape == (64, 64)
    ours = m @ x[0] @ m.T
    ref = torch.as_tensor(Zoom(zoom=zoom, keep_size=True)(x)).float()[0]
    err = float((ours - ref).abs().max())
    assert err < TOL, f"size {size}: max |M x M^T - MONAI Zoom| = {err:.2e}"


def test_zoom_matrix_rows_are_averages():
    for s in (57, 64, 70):
        m = zoom_matrix(64, s)
        assert torch.allclose(m.sum(1), torch.ones(64), atol=1e-6)  # area interpolation keeps constants
        assert (m >= 0).all()
    assert torch.equal(zoom_matrix(64, 64), torch.eye(64))


def test_scale_intensity_matches_monai_per_image():
    from monai.transforms import ScaleIntensity

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 1, 64, 64), generator=g, dtype=torch.uint8)
    x[1] = x[1] // 4 + 100  # a narrower range
    ours = scale_intensity(x)
    assert ours.dtype == torch.float32
    for i in range(x.shape[0]):
        ref = torch.as_tensor(ScaleIntensity()(x[i].float())).float()
        assert float((ours[i] - ref).abs().max()) < 1e-6
        assert float(ours[i].min()) == 0.0 and float(ours[i].max()) == 1.0


def test_scale_intensity_constant_images_give_zeros():
    from monai.transforms import ScaleIntensity

    x = torch.stack([torch.full((1, 64, 64), 0.0), torch.full((1, 64, 64), 77.0), torch.rand(1, 64, 64)])
    out = scale_intensity(x)
    assert torch.equal(out[0], torch.zeros(1, 64, 64)) and torch.equal(out[1], torch.zeros(1, 64, 64))
    assert not torch.isnan(out).any()
    assert float(out[2].max()) == 1.0
    ref = torch.as_tensor(ScaleIntensity()(x[1])).float()
    assert torch.equal(out[1], ref)


def test_scale_intensity_any_shape_and_dtype():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    out = scale_intensity(torch.from_numpy(x))
    assert out.shape == (2, 3, 4, 5) and out.dtype == torch.float32
    for i in range(2):  # per image (over all channels), not per channel
        assert float(out[i].min()) == 0.0 and float(out[i].max()) == 1.0
