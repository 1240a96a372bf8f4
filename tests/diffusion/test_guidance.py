import pytest
import torch

from imagen_video.diffusion import (
    ConstantGuidance,
    OscillatingGuidance,
    dynamic_threshold,
    guided_v,
    static_clip,
)
from imagen_video.diffusion.guidance import _quantile_per_sample
from imagen_video.errors import UserError

H, L = 15.0, 1.0


def test_guided_v_formula():
    v_cond, v_uncond = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, -1.0]])
    assert torch.equal(guided_v(v_cond, v_uncond, 0.0), v_cond)
    torch.testing.assert_close(
        guided_v(v_cond, v_uncond, 6.0), torch.tensor([[7 * 1.0 - 6 * 0.5, 14.0 + 6.0]])
    )
    per_example = guided_v(v_cond.repeat(2, 1), v_uncond.repeat(2, 1), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(per_example, torch.tensor([[1.0, 2.0], [1.5, 5.0]]))


def test_constant_guidance():
    assert [ConstantGuidance(6.0)(i, 8) for i in range(8)] == [6.0] * 8


def test_oscillating_guidance_20_steps():
    # ceil(0.1 * 20) = 2 constant high steps, then high, low, high, low, ...
    expected = [H, H] + [H, L] * 9
    assert [OscillatingGuidance(15, 1)(i, 20) for i in range(20)] == expected


def test_oscillating_guidance_256_steps():
    sequence = [OscillatingGuidance(15.0, 1.0)(i, 256) for i in range(256)]
    assert OscillatingGuidance().num_constant_steps(256) == 26  # ceil(25.6)
    assert sequence[:26] == [H] * 26
    assert sequence[26:] == [H, L] * 115
    assert sequence.count(H) == 141 and sequence.count(L) == 115


@pytest.mark.parametrize(("steps", "n_const"), [(1, 1), (8, 1), (10, 1), (30, 3), (64, 7), (128, 13)])
def test_oscillating_constant_part_is_ceil_of_fraction(steps, n_const):
    guidance = OscillatingGuidance()
    assert guidance.num_constant_steps(steps) == n_const  # 0.1 * 30 = 3.0000000000000004 must give 3
    sequence = [guidance(i, steps) for i in range(steps)]
    assert sequence[:n_const] == [H] * n_const
    assert sequence[n_const:] == ([H, L] * steps)[: steps - n_const]


def test_oscillating_rejects_bad_fraction():
    with pytest.raises(UserError, match="constant_fraction"):
        OscillatingGuidance(constant_fraction=1.5)


def test_dynamic_threshold_hand_made():
    x = torch.tensor(
        [
            [0.1, 0.2, 0.3, 5.0],  # |x| quantile(0.5) = 0.25 < 1: s = 1, only the 5 is clipped
            [-3.0, 1.0, 2.0, 4.0],  # |x| = 1, 2, 3, 4: quantile(0.5) = 2.5 > 1: clip to 2.5 and divide
        ]
    )
    expected = torch.tensor([[0.1, 0.2, 0.3, 1.0], [-1.0, 0.4, 0.8, 1.0]])
    torch.testing.assert_close(dynamic_threshold(x, 0.5), expected)
    # p = 0.995 on 4 values: position 0.995 * 3 = 2.985, s = q3 + 0.985 (q4 - q3); both rows above 1 now
    s0, s1 = 0.3 + 0.985 * (5.0 - 0.3), 3.0 + 0.985 * (4.0 - 3.0)
    expected = torch.tensor([[0.1 / s0, 0.2 / s0, 0.3 / s0, 1.0], [-3.0 / s1, 1.0 / s1, 2.0 / s1, 1.0]])
    torch.testing.assert_close(dynamic_threshold(x, 0.995), expected)


def test_dynamic_threshold_is_per_sample_on_video_shapes():
    x = torch.randn(3, 3, 2, 4, 4) * torch.tensor([0.1, 2.0, 5.0]).reshape(3, 1, 1, 1, 1)
    out = dynamic_threshold(x, 0.9)
    assert torch.equal(out[0], x[0])  # all |x| < 1: unchanged
    for b in (1, 2):
        s = torch.quantile(x[b].abs().flatten(), 0.9)
        torch.testing.assert_close(out[b], x[b].clamp(-s, s) / s)
        assert out[b].abs().max() == pytest.approx(1.0)


def test_quantile_matches_torch_quantile():
    a = torch.rand(4, 1001, dtype=torch.float64)
    for p in (0.0, 0.3, 0.995, 1.0):
        torch.testing.assert_close(_quantile_per_sample(a, p), torch.quantile(a, p, dim=1))


def test_dynamic_threshold_rejects_bad_percentile():
    with pytest.raises(UserError, match="percentile"):
        dynamic_threshold(torch.zeros(1, 3), 99.5)


def test_static_clip():
    assert static_clip(torch.tensor([-3.0, -0.5, 0.5, 2.0])).tolist() == [-1.0, -0.5, 0.5, 1.0]
