"""Per-stage views: frame skipping, antialiased resize, time-aligned conditioning (SPEC §3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imagen_video.data.views import resize_cover, resize_video, stage_condition, stage_view
from imagen_video.errors import UserError


def frame_indexed_clip(frames: int, height: int = 16, width: int = 24) -> torch.Tensor:
    """[3, T, H, W] whose frame k is the constant k (so a view's frames name their source frames)."""
    return torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1).expand(3, frames, height, width)


def test_stage_view_skips_frames_and_resizes_constants_exactly():
    view = stage_view(frame_indexed_clip(20), frames=8, height=6, width=9, source_fps=24, target_fps=12)
    assert view.shape == (3, 8, 6, 9)
    expected = torch.arange(0, 16, 2, dtype=torch.float32).view(1, 8, 1, 1).expand_as(view)
    assert torch.allclose(view, expected, atol=1e-5)  # frame k of the view is source frame 2k, still constant


def test_resize_is_antialiased():
    stripes = (torch.arange(32) % 4 == 0).float().expand(3, 2, 32, 32)  # one lit column in four, mean 1/4
    small = resize_video(stripes, 32, 8)
    assert torch.allclose(small[..., 1:-1], torch.full_like(small[..., 1:-1], 0.25), atol=1e-6)
    aliased = F.interpolate(stripes.transpose(0, 1), size=(32, 8), mode="bilinear", antialias=False)
    assert aliased.abs().max() == 0  # plain bilinear samples between the lit columns: the stripes vanish


def test_batched_and_unbatched_views_agree():
    clip = torch.randn(2, 3, 12, 16, 16)
    batched = stage_view(clip, 6, 8, 8, source_fps=8, target_fps=4)
    assert torch.allclose(batched[1], stage_view(clip[1], 6, 8, 8, source_fps=8, target_fps=4))


def test_tsr_condition_is_time_aligned_with_the_target():
    clip = frame_indexed_clip(64)
    target = stage_view(clip, frames=32, height=12, width=20, source_fps=24, target_fps=12)
    cond = stage_condition(
        clip, 24, 32, 12, 20, 12, cond_frames=16, cond_height=12, cond_width=20, cond_fps=6
    )
    assert cond.shape == (3, 16, 12, 20)
    assert torch.equal(cond, target[:, ::2])  # condition frame j shows target frame 2j


def test_ssr_condition_is_the_antialiased_downsample_of_the_clip():
    clip = torch.rand(3, 4, 24, 40)
    target = stage_view(clip, 4, 24, 40, source_fps=6, target_fps=6)
    cond = stage_condition(clip, 6, 4, 24, 40, 6, cond_frames=4, cond_height=12, cond_width=20, cond_fps=6)
    assert torch.equal(target, clip)
    # antialiased 2x bilinear downsampling of a box is the 4x4 tent filter; on the interior it averages 2x2
    # blocks with weights (1, 3, 3, 1) / 8 per axis
    weights = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    kernel = (weights[:, None] * weights[None, :]).expand(3, 1, 4, 4)
    expected = F.conv2d(clip.transpose(0, 1), kernel, stride=2, padding=1, groups=3).transpose(0, 1)
    assert torch.allclose(cond[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-6)


def test_resize_cover_keeps_aspect_and_crops_the_centre():
    columns = torch.arange(32, dtype=torch.float32).view(1, 1, 1, 32).expand(3, 2, 16, 32)
    out = resize_cover(columns, 16, 16)
    assert out.shape == (3, 2, 16, 16)
    assert torch.equal(out[0, 0, 0], torch.arange(8, 24, dtype=torch.float32))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: stage_view(c, 4, 8, 8, source_fps=8, target_fps=3),  # 8/3 is not whole
        lambda c: stage_view(c, 16, 8, 8, source_fps=8, target_fps=4),  # needs 31 frames, has 20
        lambda c: stage_condition(c, 8, 8, 8, 8, 8, cond_frames=8, cond_height=8, cond_width=8, cond_fps=4),
    ],
)
def test_impossible_views_are_user_errors(call):
    with pytest.raises(UserError):
        call(frame_indexed_clip(20))
