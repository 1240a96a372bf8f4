"""The least-squares fit of a base's text prior mean (train.prior_fit, `imagen-video fit-prior`)."""

import pytest
import torch

from imagen_video.cascade import Cascade
from imagen_video.cli import main
from imagen_video.diffusion import alpha_sigma_from_log_snr
from imagen_video.errors import UserError
from imagen_video.models import VideoUNet
from imagen_video.models.blocks import TextPriorMean, masked_text_mean
from imagen_video.train.prior_fit import (
    batch_statistics,
    fit_net,
    fit_text_prior,
    prior_loss,
    sigma2_log_snr,
    upsample_matrix,
)


def test_upsample_matrix_is_trilinear_interpolation():
    grid = torch.randn(2, 1, *TextPriorMean.GRID)
    u = upsample_matrix(TextPriorMean.GRID, (3, 8, 6))
    direct = torch.nn.functional.interpolate(grid, size=(3, 8, 6), mode="trilinear", align_corners=True)
    torch.testing.assert_close(grid.flatten(1) @ u.T, direct.flatten(1), rtol=1e-5, atol=1e-6)


RICH_PRIOR = dict(text_prior_depth=2, text_prior_noise_level=True, text_prior_rank=2)


@pytest.mark.parametrize("form", [{}, RICH_PRIOR])
def test_statistics_loss_equals_the_x_space_loss_up_to_a_constant(micro_cascade, form):
    """prior_loss on the cached statistics differs from mean ||x - x_hat||^2 / (C P) of the full U-Net (layers
    plus prior) by a constant: the difference between any two priors is the same both ways. A noise-level
    prior reads log_snr back from the statistics' sigma^2."""
    base = micro_cascade.stages[0]
    config = base.unet.replace(text_prior_mean=True, **form)
    unet = VideoUNet(config).eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(3)
    b, shape = 6, base.shape
    x = torch.rand(b, 3, *shape, generator=g) * 2 - 1
    noise = torch.randn(x.shape, generator=g)
    log_snr = torch.linspace(-8.0, -1.0, b)
    emb = torch.randn(b, 5, config.text_dim, generator=g)
    mask = torch.ones(b, 5, dtype=torch.bool)
    mask[1, 3:] = False
    mask[4] = False  # a dropped text
    u = upsample_matrix(TextPriorMean.GRID, shape)
    prior, unet.prior_mean = unet.prior_mean, None
    with torch.no_grad():
        stats = batch_statistics(unet, x, log_snr, noise, emb, mask, u)
    unet.prior_mean = prior
    assert torch.equal(stats["text_mean"], masked_text_mean(emb, mask))

    def x_space_loss() -> torch.Tensor:
        alpha, sigma = (a.reshape(-1, 1, 1, 1, 1) for a in alpha_sigma_from_log_snr(log_snr))
        z = alpha * x + sigma * noise
        x_hat = alpha * z - sigma * unet(z, log_snr, emb, mask)
        return ((x - x_hat) ** 2).mean()

    def stats_loss() -> torch.Tensor:
        inputs = prior.inputs(stats["text_mean"], sigma2_log_snr(stats["sigma2"]))
        return prior_loss(prior.head, prior.SCALE, dict(stats, text_mean=inputs), u.T @ u, 3, u.shape[0])

    losses = []
    with torch.no_grad():
        for seed in (10, 11):
            torch.manual_seed(seed)
            for p in prior.parameters():
                p.copy_(0.3 * torch.randn_like(p))
            losses.append((x_space_loss().double(), stats_loss().double()))
    (direct_a, cached_a), (direct_b, cached_b) = losses
    assert abs(cached_a - cached_b) > 1e-3  # the two priors differ in loss
    torch.testing.assert_close(direct_a - direct_b, cached_a - cached_b, rtol=1e-4, atol=1e-6)


def test_fit_net_reaches_the_least_squares_solution():
    """Statistics made by a known linear prior G*(c) = W c (y = sigma^2 M G*): the fit recovers W."""
    torch.manual_seed(0)
    shape, n, d, channels = (4, 8, 8), 400, 6, 3
    u = upsample_matrix(TextPriorMean.GRID, shape)
    m = u.T @ u
    inputs = torch.randn(n, d)
    truth = torch.randn(channels * 64, d) * 0.1
    sigma2 = torch.rand(n) * 0.2 + 0.8
    grid = (inputs @ truth.T).reshape(n, channels, 64)
    stats = {"sigma2": sigma2, "y": sigma2[:, None, None] * grid @ m}
    net = torch.nn.Linear(d, channels * 64, bias=False)
    torch.nn.init.zeros_(net.weight)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-2)
    held_out = fit_net(net, 1.0, inputs, stats, shape, optimizer, epochs=300, seed=0, channels=channels)
    error = (net.weight - truth).norm() / truth.norm()
    assert error < 0.02, error
    assert held_out < 0


@pytest.mark.filterwarnings("ignore:prompt .* truncated")  # micro.yaml's max_length 16
def test_fit_prior_command_fits_the_base_and_keeps_everything_else(micro_cascade, tmp_path, capsys):
    source = micro_cascade.save(tmp_path / "source")
    args = ["fit-prior", str(source), str(tmp_path / "out"), "--samples", "40", "--epochs", "3",
            "--text-encoder", "minilm+input", "--stats", str(tmp_path / "stats.pt"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "held-out loss -" in capsys.readouterr().out  # below 0: better than no prior on held-out samples
    out, old = Cascade.load(tmp_path / "out"), Cascade.load(source)
    assert out.config.text_encoder.name == "minilm+input" and out.stages[0].unet.text_prior_mean
    fitted = out.unet("base").state_dict()
    assert fitted["prior_mean.net.2.weight"].abs().max() > 0
    for name, weight in old.unet("base").state_dict().items():
        if not name.startswith(("text_pool.", "text_proj.0.")):  # widened text inputs (test_retext)
            assert torch.equal(fitted[name], weight), name
    for stage in old.stages[1:]:  # the SR stages: only their text inputs widened
        wide = out.unet(stage.name).state_dict()
        for name, weight in old.unet(stage.name).state_dict().items():
            assert torch.equal(wide[name], weight) or name.startswith(("text_pool.", "text_proj.0.")), name
    # the cached statistics make a refit exact, and a mismatched cache is refused by name
    assert main(args[:2] + [str(tmp_path / "again")] + args[3:]) == 0
    again = Cascade.load(tmp_path / "again").unet("base").state_dict()
    assert all(torch.equal(again[k], v) for k, v in fitted.items())
    # refitting the fitted cascade starts again from the seeded prior: the same fit
    assert main(["fit-prior", str(tmp_path / "out"), str(tmp_path / "refit")] + args[3:7] + args[9:]) == 0
    refit = Cascade.load(tmp_path / "refit").unet("base").state_dict()
    assert all(torch.equal(refit[k], v) for k, v in fitted.items())
    # the statistics do not depend on the prior's form: the same cache fits a richer prior
    rich = ["--width", "16", "--depth", "2", "--noise-level", "--rank", "2", "--lr", "1e-3"]
    assert main(args[:2] + [str(tmp_path / "rich")] + args[3:] + rich) == 0
    assert "held-out loss -" in capsys.readouterr().out
    config = Cascade.load(tmp_path / "rich").stages[0].unet
    assert (config.text_prior_width, config.text_prior_depth, config.text_prior_rank) == (16, 2, 2)
    log_snr = sigma2_log_snr(torch.load(tmp_path / "stats.pt")["sigma2"])  # the band of the statistics
    assert config.text_prior_noise_level
    assert config.text_prior_log_snr_range == (float(log_snr.min()), float(log_snr.max()))
    # refitted in the default form, the rich prior's options and band go with it
    assert main(["fit-prior", str(tmp_path / "rich"), str(tmp_path / "plain")] + args[3:7] + args[9:]) == 0
    plain = Cascade.load(tmp_path / "plain").stages[0].unet
    assert plain == out.stages[0].unet and plain.text_prior_log_snr_range is None
    bad = args[:2] + [str(tmp_path / "bad"), "--samples", "60"] + args[5:]
    assert main(bad) == 2
    assert "stats.pt: cached statistics of 40 samples" in capsys.readouterr().err


def test_fit_prior_refuses_too_few_samples_or_epochs(micro_cascade):
    cascade = micro_cascade
    with pytest.raises(UserError, match="--samples must be >= 20"):
        fit_text_prior(cascade, 10, 1, seed=0)
    with pytest.raises(UserError, match="--epochs must be >= 1"):
        fit_text_prior(cascade, 40, 0, seed=0)
