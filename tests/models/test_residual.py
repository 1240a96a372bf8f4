"""Residual SR U-Nets (UNetConfig.residual): the layers denoise r = x - b, b = alpha' c_aug."""

from __future__ import annotations

import pytest
import torch

from imagen_video.diffusion import alpha_sigma_from_log_snr, expand_like, v_from_x_eps, x_from_z_v
from imagen_video.errors import UserError
from imagen_video.models import VideoUNet

from .helpers import inputs, make_model, small_config

SR = dict(lowres_channels=3)


def _base(kwargs: dict) -> torch.Tensor:
    """b = alpha' c_aug with alpha' = sqrt(sigmoid(cond_aug_log_snr)), written out."""
    alpha_c = torch.sigmoid(kwargs["cond_aug_log_snr"]).sqrt()
    return alpha_c[:, None, None, None, None] * kwargs["lowres"]


def test_untrained_residual_unet_predicts_alpha_z_plus_sigma_squared_base():
    config = small_config(**SR, residual=True)
    torch.manual_seed(0)
    unet = VideoUNet(config).eval()  # fresh: zero output conv
    kwargs = inputs(config, b=2)
    kwargs["log_snr"] = torch.tensor([-20.0, 2.0])
    with torch.no_grad():
        v = unet(**kwargs)
    alpha, sigma = (expand_like(a, v) for a in alpha_sigma_from_log_snr(kwargs["log_snr"]))
    x_hat = x_from_z_v(kwargs["z"], v, alpha, sigma)
    expected = alpha * kwargs["z"] + sigma**2 * _base(kwargs)
    torch.testing.assert_close(x_hat, expected, rtol=1e-5, atol=1e-5)
    # at log_snr -20 the prediction is the condition's estimate itself
    torch.testing.assert_close(x_hat[0], _base(kwargs)[0], rtol=0, atol=1e-3)  # alpha = 4.5e-5


def test_residual_unet_loss_is_the_plain_unet_loss_on_the_residual():
    """Same weights: the residual U-Net's v-loss on x equals the plain U-Net's v-loss on r = x - b."""
    residual = make_model(small_config(**SR, residual=True))
    plain = make_model(small_config(**SR))
    plain.load_state_dict(residual.state_dict())
    kwargs = inputs(residual.config, b=2)
    g = torch.Generator().manual_seed(1)
    x, eps = torch.randn(kwargs["z"].shape, generator=g), torch.randn(kwargs["z"].shape, generator=g)
    alpha, sigma = (expand_like(a, x) for a in alpha_sigma_from_log_snr(kwargs["log_snr"]))
    r = x - _base(kwargs)
    with torch.no_grad():
        v_x = residual(**{**kwargs, "z": alpha * x + sigma * eps})
        v_r = plain(**{**kwargs, "z": alpha * r + sigma * eps})
    loss_x = (v_x - v_from_x_eps(x, eps, alpha, sigma)).pow(2).mean(dim=(1, 2, 3, 4))
    loss_r = (v_r - v_from_x_eps(r, eps, alpha, sigma)).pow(2).mean(dim=(1, 2, 3, 4))
    assert loss_r.min() > 1e-3  # a real, non-zero loss
    torch.testing.assert_close(loss_x, loss_r, rtol=1e-4, atol=1e-6)


def test_residual_needs_a_condition_like_the_output():
    with pytest.raises(UserError, match="residual needs a condition"):
        small_config(residual=True)
