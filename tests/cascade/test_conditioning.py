import math

import pytest
import torch

from imagen_video.cascade import (
    augment,
    cond_aug_log_snr,
    condition_to_shape,
    repeat_frames,
    upsample_bilinear,
)


def _frames(values):
    """[1, 1, T, 1, 1] video whose frame i is the constant values[i]."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, -1, 1, 1)


def test_repeat_frames_order():
    video = _frames([1.0, 2.0, 3.0])
    assert repeat_frames(video, 2).flatten().tolist() == [1, 1, 2, 2, 3, 3]
    assert repeat_frames(video, 3).flatten().tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert repeat_frames(video, 2, fill="blank").flatten().tolist() == [1, 0, 2, 0, 3, 0]
    # channels, batch and pixels are carried along unchanged
    x = torch.randn(2, 3, 4, 5, 6)
    y = repeat_frames(x, 2)
    assert y.shape == (2, 3, 8, 5, 6)
    assert torch.equal(y[:, :, 0::2], x) and torch.equal(y[:, :, 1::2], x)


def test_upsample_bilinear_matches_hand_computation():
    # a 1x2 row [0, 1] upsampled to width 4, align_corners=False: output pixel j samples input
    # coordinate (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1] -> 0, 0.25, 0.75, 1
    row = torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 1, 2)
    assert upsample_bilinear(row, 1, 4).flatten().tolist() == [0.0, 0.25, 0.75, 1.0]
    # 2x2 [[0, 1], [2, 3]] -> 4x4: separable, rows interpolate 0 -> 2 the same way
    square = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 1, 2, 2)
    up = upsample_bilinear(square, 4, 4)[0, 0, 0]
    weights = torch.tensor([0.0, 0.25, 0.75, 1.0])
    expected = 2 * weights[:, None] + weights[None, :]
    torch.testing.assert_close(up, expected)
    # every frame is resized alone, frames stay in order
    video = torch.stack([square, 10 + square], dim=2).reshape(1, 1, 2, 2, 2)
    both = upsample_bilinear(video, 4, 4)
    torch.testing.assert_close(both[0, 0, 1], 10 + expected)
    assert upsample_bilinear(video, 2, 2) is video


def test_condition_to_shape_tsr_then_ssr():
    video = _frames([1.0, -1.0]).expand(1, 3, 2, 2, 2)
    cond = condition_to_shape(video, 4, 4, 4)
    assert cond.shape == (1, 3, 4, 4, 4)
    assert cond[0, 0, :, 0, 0].tolist() == [1.0, 1.0, -1.0, -1.0]


def test_augment_level_zero_is_exactly_the_condition():
    cond = torch.rand(2, 3, 2, 4, 4) * 2 - 1
    assert torch.equal(augment(cond, 0.0, torch.Generator().manual_seed(0)), cond)
    assert torch.equal(augment(cond, torch.tensor([0.0, 0.0])), cond)
    assert cond_aug_log_snr(0.0, 2).tolist() == [20.0, 20.0]


def test_augment_formula_and_per_example_levels():
    cond = torch.rand(2, 3, 2, 8, 8) * 2 - 1
    level = torch.tensor([0.0, 1.0 / 3.0])
    noisy = augment(cond, level, torch.Generator().manual_seed(7))
    noise = torch.randn(cond.shape, generator=torch.Generator().manual_seed(7))
    # t' = 1/3 on the cosine schedule is SNR 3: alpha^2 = 3/4, sigma^2 = 1/4
    assert cond_aug_log_snr(level, 2)[1].item() == pytest.approx(math.log(3.0), abs=1e-4)
    alpha, sigma = math.sqrt(0.75), math.sqrt(0.25)
    torch.testing.assert_close(noisy[1], alpha * cond[1] + sigma * noise[1], atol=1e-4, rtol=1e-4)
    assert torch.equal(noisy[0], cond[0])
    # level 1 is (almost) pure noise
    pure = augment(cond, 1.0, torch.Generator().manual_seed(7))
    torch.testing.assert_close(pure, noise, atol=1e-4, rtol=0)
