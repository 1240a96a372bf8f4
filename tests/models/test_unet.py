"""VideoUNet invariants: image mode, temporal mixing and receptive field, text and masking, resolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imagen_video.errors import UserError
from imagen_video.models import VideoUNet, presets
from imagen_video.models.blocks import SpaceTimeConv
from imagen_video.models.unet import coordinate_grid

from .helpers import inputs, make_model, randomize_zero_init, small_config


@pytest.mark.parametrize("temporal, spacetime", [("attention", False), ("conv", False), ("attention", True)])
def test_image_mode_equals_each_frame_alone(temporal, spacetime):
    """Must show 1: a T-frame batch in image mode equals every frame run on its own (< 1e-5)."""
    cfg = small_config(temporal, lowres_channels=3, spacetime_conv=spacetime)
    model = make_model(cfg)
    kw = inputs(cfg, b=2, t=4)
    with torch.no_grad():
        batched = model(**kw, image_mode=True)
        video = model(**kw)
        mixed = model(**kw, image_mode=torch.tensor([True, False]))
        for k in range(4):
            alone = dict(kw, z=kw["z"][:, :, k : k + 1], lowres=kw["lowres"][:, :, k : k + 1])
            single = model(**alone, image_mode=True)
            assert (batched[:, :, k : k + 1] - single).abs().max() < 1e-5
    assert (video - batched).abs().max() > 1e-2  # the temporal layers do act in video mode
    assert (mixed[0] - batched[0]).abs().max() < 1e-5  # per-sample flag: sample 0 is images
    assert (mixed[1] - video[1]).abs().max() < 1e-5  # ... sample 1 is a video


def test_temporal_attention_mixes_all_frames():
    """Must show 2a: in video mode, perturbing frame k changes the outputs of every other frame."""
    cfg = small_config("attention")
    model = make_model(cfg)
    kw = inputs(cfg, b=1, t=6)
    z2 = kw["z"].clone()
    z2[:, :, 2] += 1.0
    with torch.no_grad():
        diff = (model(**kw) - model(**dict(kw, z=z2))).abs().amax(dim=(0, 1, 3, 4))
    assert (diff > 1e-4).all(), diff


@pytest.mark.parametrize("spacetime", [False, True])
def test_temporal_conv_changes_only_frames_in_receptive_field(spacetime):
    """Must show 2b: with temporal conv, perturbing frame k changes exactly the frames within the radius."""
    cfg = small_config("conv", spatial_attention=(False, False), spacetime_conv=spacetime)
    model = make_model(cfg)
    radius = model.temporal_receptive_radius()
    # one temporal conv (radius 1) per block, all on the deepest path: 1 + 1 down, 2 middle, 2 + 2 up; a
    # space-time conv after each doubles it
    assert radius == (16 if spacetime else 8)
    frames, k = radius + 4, 1
    kw = inputs(cfg, b=1, t=frames)
    z2 = kw["z"].clone()
    z2[:, :, k] += 1.0
    with torch.no_grad():
        diff = (model(**kw) - model(**dict(kw, z=z2))).abs().amax(dim=(0, 1, 3, 4))
    inside = torch.arange(frames) <= k + radius
    assert (diff[inside] > 0).all(), diff  # the edge frame k + radius is reached (faintly: ~1e-7)
    assert (diff[~inside] == 0).all(), diff  # nothing beyond it


def test_spacetime_conv_reads_the_previous_frame_one_pixel_left():
    """SpaceTimeConv with a one-hot kernel at (dt, dy, dx) = (-1, 0, -1): the residual at frame t, pixel
    (y, x) is silu(LayerNorm(x)) at frame t - 1, pixel (y, x - 1), zero outside the video; masked samples
    keep x."""
    ch, b, t, h, w = 4, 2, 3, 5, 6
    layer = SpaceTimeConv(ch)
    with torch.no_grad():
        for c in range(ch):
            layer.conv.weight[c, c, 0, 1, 0] = 1.0
    x = torch.randn(b * t, ch, h, w).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        residual = (layer(x, t, None) - x).reshape(b, t, ch, h, w)
        masked = layer(x, t, torch.tensor([0.0, 1.0]))
    act = F.silu(F.layer_norm(x.permute(0, 2, 3, 1), (ch,))).permute(0, 3, 1, 2).reshape(b, t, ch, h, w)
    expected = torch.zeros_like(act)
    expected[:, 1:, :, :, 1:] = act[:, :-1, :, :, :-1]
    assert (residual - expected).abs().max() < 1e-6
    assert torch.equal(masked[:t], x[:t]) and not torch.equal(masked[t:], x[t:])


def test_text_matters_and_padding_does_not():
    """Must show 3: outputs depend on the text; embeddings at masked positions change nothing."""
    cfg = small_config("conv")
    model = make_model(cfg)
    kw = inputs(cfg, b=2, t=2, text_len=6)
    mask = kw["text_mask"]
    other_text = torch.randn_like(kw["text_emb"])
    garbage_at_pads = torch.where(mask[..., None], kw["text_emb"], 1e3 * torch.randn_like(kw["text_emb"]))
    assert not mask[1].all()
    with torch.no_grad():
        out = model(**kw)
        assert (out - model(**dict(kw, text_emb=other_text))).abs().amax(dim=(1, 2, 3, 4)).min() > 1e-3
        assert torch.equal(out, model(**dict(kw, text_emb=garbage_at_pads)))
        # a fully masked row is the unconditional branch: the same as passing no text at all
        no_text = model(**dict(kw, text_emb=None, text_mask=None))
        all_masked = model(**dict(kw, text_mask=torch.zeros_like(mask)))
    assert (no_text - all_masked).abs().max() < 1e-5
    assert (no_text - out).abs().amax(dim=(1, 2, 3, 4)).min() > 1e-3


def test_pooled_text_is_masked_mean():
    """The text is pooled as the mean over real tokens only; all-masked rows pool to zero."""
    cfg = small_config("conv")
    model = VideoUNet(cfg)
    emb = torch.randn(3, 4, cfg.text_dim)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    ctx, ctx_mask, text_mean = model._context(3, emb, mask, torch.float32)
    expected = torch.stack([emb[0].mean(0), (emb[1, 0] + emb[1, 2]) / 2, torch.zeros(cfg.text_dim)])
    assert torch.allclose(text_mean, expected, atol=1e-6)
    assert torch.equal(model.text_pool(text_mean)[2], torch.zeros(model.text_pool.out_features))
    assert ctx.shape == (3, 5, ctx.shape[-1]) and ctx_mask[:, 0].all() and torch.equal(ctx_mask[:, 1:], mask)


@pytest.mark.parametrize("name", ["cond_aug_log_snr", "guidance_weight", "log_snr"])
def test_scalar_conditioning_matters(name):
    """Noise level, augmentation level and guidance weight each change the output."""
    cfg = small_config("conv", lowres_channels=3, guidance_embedding=True)
    model = make_model(cfg)
    kw = inputs(cfg, b=2, t=2)
    kw["guidance_weight"] = torch.tensor([1.0, 4.0])
    with torch.no_grad():
        diff = (model(**kw) - model(**dict(kw, **{name: kw[name] + 2.0}))).abs().max()
    assert diff > 1e-3


def test_fully_convolutional_preset_runs_at_two_resolutions():
    """Must show 4a: one set of weights, two frame sizes; each output frame matches a crop-free run alone."""
    cfg = presets.tiny()["tsr2"]
    assert not any(cfg.spatial_attention)
    model = make_model(cfg)
    with torch.no_grad():
        for h, w in [(8, 8), (16, 24)]:
            kw = inputs(cfg, b=1, t=2, h=h, w=w)
            out = model(**kw)
            assert out.shape == (1, 3, 2, h, w) and torch.isfinite(out).all() and out.abs().max() > 0


def test_attention_preset_accepts_allowed_and_rejects_other_resolutions():
    """Must show 4b: an attention preset runs at the sizes its config allows, names the problem otherwise."""
    cfg = presets.tiny()["base"]  # 3 levels: sides divisible by 4; level-1 attention over <= 256 positions
    model = VideoUNet(cfg).eval()
    with torch.no_grad():
        for h, w in [(8, 8), (16, 16), (24, 40), (32, 32)]:
            assert model(**inputs(cfg, b=1, t=2, h=h, w=w)).shape == (1, 3, 2, h, w)
    with pytest.raises(UserError, match=r"18x18 .* not divisible by 4"):
        model(**inputs(cfg, b=1, t=2, h=18, w=18))
    with pytest.raises(UserError, match=r"level 1 would attend over 32x32=1024 .* max_attention_tokens=256"):
        model(**inputs(cfg, b=1, t=2, h=64, w=64))


def test_bad_inputs_are_user_errors():
    cfg = small_config("conv", lowres_channels=3)
    model = VideoUNet(cfg)
    kw = inputs(cfg, b=1, t=2)
    with pytest.raises(UserError, match="lowres must be"):
        model(**dict(kw, lowres=None))
    with pytest.raises(UserError, match="text_emb must be"):
        model(**dict(kw, text_emb=torch.randn(1, 5, 7)))
    with pytest.raises(UserError, match="z must be"):
        model(**dict(kw, z=torch.randn(1, 3, 8, 8)))


def test_gradient_checkpointing_gives_same_gradients():
    """Must show 5a: activation checkpointing changes memory, not gradients (< 1e-5)."""
    cfg = small_config("attention", lowres_channels=3)
    plain = make_model(cfg).train()
    ckpt = VideoUNet(cfg.replace(gradient_checkpointing=True)).train()
    ckpt.load_state_dict(plain.state_dict())
    kw = inputs(cfg, b=2, t=3)
    for model in (plain, ckpt):
        model(**kw).square().mean().backward()
    worst = max(
        (a.grad - b.grad).abs().max().item()
        for a, b in zip(plain.parameters(), ckpt.parameters(), strict=True)
    )
    assert worst < 1e-5
    assert max(p.grad.abs().max().item() for p in plain.parameters()) > 1e-3


def test_bf16_forward_is_finite_and_close_to_fp32():
    """Must show 5b: the same weights in bfloat16 give finite outputs within a few % of float32."""
    cfg = small_config("attention", lowres_channels=3)
    model = make_model(cfg)
    kw = inputs(cfg, b=2, t=3)
    with torch.no_grad():
        ref = model(**kw)
        out = model.to(torch.bfloat16)(
            **{k: v.bfloat16() if v.is_floating_point() else v for k, v in kw.items()}
        )
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    rel = (out.float() - ref).norm() / ref.norm()
    assert rel < 0.05, rel


def _symmetric_position_bias(model: VideoUNet) -> VideoUNet:
    """Make every temporal relative position bias symmetric in the frame offset (as training leaves it)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("rel_bias"):
                p.copy_((p + p.flip(-1)) / 2)
    return model


@pytest.mark.parametrize("rotary", [False, True])
def test_rotary_breaks_time_reversal_symmetry(rotary):
    """Without rotary embeddings and with a symmetric bias the U-Net commutes with reversing time, so it
    cannot tell "moving left" from the reversed video ("moving right"); rotary embeddings break that."""
    cfg = small_config("attention", temporal_rotary=rotary)
    model = _symmetric_position_bias(make_model(cfg))
    kw = inputs(cfg, b=2, t=6)
    with torch.no_grad():
        reversed_in = model(**dict(kw, z=kw["z"].flip(2))).flip(2)
        forward = model(**kw)
    gap = (reversed_in - forward).abs().max().item()
    if rotary:
        assert gap > 1e-2
    else:
        assert gap < 1e-5


def test_rotary_scores_depend_only_on_offset_and_content():
    """RoFormer: <rot(q)_i, rot(k)_j> = <q, rot_{j-i}(k)>: a Toeplitz score matrix for frame-constant q and
    k, not symmetric in i, j; rotation keeps norms."""
    from imagen_video.models.blocks import rotate_frames

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 8, dtype=torch.float64, generator=g)
    frames = 7
    rq, rk = rotate_frames(q.expand(frames, 8)), rotate_frames(k.expand(frames, 8))
    scores = rq @ rk.T
    for offset in range(-frames + 1, frames):
        diagonal = torch.diagonal(scores, offset)
        assert (diagonal - diagonal[0]).abs().max() < 1e-12
    assert (scores - scores.T).abs().max() > 1e-3
    assert (rq.norm(dim=-1) - q.norm()).abs().max() < 1e-12
    assert torch.equal(rotate_frames(q)[0], q[0])  # frame 0 is not rotated


def test_rotary_needs_even_head_width():
    with pytest.raises(UserError, match="temporal_rotary"):
        small_config("attention", temporal_rotary=True, channels=12, head_dim=3, norm_groups=4)


@pytest.mark.parametrize("frame_embedding", [False, True])
def test_only_a_frame_embedding_lets_identical_frames_differ(frame_embedding):
    """From a time-constant input (pure noise looks alike at every frame, in distribution) offset-only
    layers give every frame the same output, so E[x | "moving left"] cannot be drawn; a frame embedding
    can."""
    cfg = small_config("attention", temporal_rotary=True, frame_embedding=frame_embedding)
    model = make_model(cfg)
    kw = inputs(cfg, b=2, t=5)
    kw["z"] = kw["z"][:, :, :1].expand(-1, -1, 5, -1, -1).contiguous()
    with torch.no_grad():
        out = model(**kw)
    spread = (out - out[:, :, :1]).abs().max().item()
    if frame_embedding:
        assert spread > 1e-2
    else:
        assert spread < 1e-5


def test_frame_embedding_starts_as_the_identity_and_skips_images():
    """Zero-initialised: a trained model with the embedding added computes the same; image mode ignores it."""
    cfg = small_config("attention")
    trained = make_model(cfg)
    extended = VideoUNet(cfg.replace(frame_embedding=True)).eval()
    missing = extended.load_state_dict(trained.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("frame_emb.") for k in missing)
    kw = inputs(cfg, b=2, t=4)
    with torch.no_grad():
        assert torch.equal(extended(**kw), trained(**kw))
        randomized = randomize_zero_init(extended)
        assert (randomized(**kw) - trained(**kw)).abs().max() > 1e-3
        images = randomized(**kw, image_mode=torch.tensor([True, False]))
        assert torch.equal(images[0], trained(**kw, image_mode=True)[0])


def test_coordinate_grid_is_the_normalised_frame_row_column_and_their_products():
    grid = coordinate_grid(5, 4, 3, "cpu", torch.float32)
    t, y, x = torch.meshgrid(
        torch.arange(5) / 4 - 0.5, torch.arange(4) / 3 - 0.5, torch.arange(3) / 2 - 0.5, indexing="ij"
    )
    expected = torch.stack([t, y, x, 4 * t * y, 4 * t * x])[None]
    assert torch.allclose(grid, expected, atol=1e-6)
    masked = coordinate_grid(5, 4, 3, "cpu", torch.float32, torch.tensor([0.0, 1.0]))
    assert masked.shape == (2, 5, 5, 4, 3)
    assert not masked[0, [0, 3, 4]].any() and torch.equal(masked[0, 1:3], grid[0, 1:3])
    assert torch.equal(masked[1], grid[0])


def test_coordinate_channels_start_as_the_identity_then_let_identical_frames_differ():
    """Zero-initialised: a trained model with them added computes the same. Trained (random weights), frames
    of a time-constant input differ with no frame embedding; in image mode they do not (images see t = 0)."""
    cfg = small_config("attention", temporal_rotary=True)
    trained = make_model(cfg)
    extended = VideoUNet(cfg.replace(coordinate_channels=True)).eval()
    missing = extended.load_state_dict(trained.state_dict(), strict=False).missing_keys
    assert missing == ["coord_conv.weight"]
    kw = inputs(cfg, b=2, t=5)
    kw["z"] = kw["z"][:, :, :1].expand(-1, -1, 5, -1, -1).contiguous()
    with torch.no_grad():
        assert torch.equal(extended(**kw), trained(**kw))
        randomized = randomize_zero_init(extended)
        video = randomized(**kw)
        images = randomized(**kw, image_mode=torch.tensor([True, False]))
        assert (trained(**kw) - trained(**kw)[:, :, :1]).abs().max() < 1e-5
        assert (video - video[:, :, :1]).abs().max() > 1e-2
        assert (images[0] - images[0, :, :1]).abs().max() < 1e-5
        assert torch.equal(images[1], video[1])
        assert torch.equal(randomized(**kw, image_mode=True)[0], images[0])


PRIOR_FORMS = (
    {},  # the one-layer text-only prior of the shipped weights
    dict(text_prior_width=24, text_prior_depth=2, text_prior_noise_level=True, text_prior_rank=2),
)


@pytest.mark.parametrize("form", PRIOR_FORMS)
def test_text_prior_mean_starts_as_the_identity_and_adds_sigma_squared_b_to_x(form):
    """Zero-initialised: a trained model with it added computes the same. With the layers silenced (zero
    output conv) and the prior MLP giving a known coarse video G per text (and noise level), the prediction
    is exactly x = alpha z + sigma^2 b, b = G trilinearly upsampled (the frame average of G for images); no
    text gives the MLP's output at zero text."""
    cfg = small_config("attention")
    trained = make_model(cfg)
    extended = VideoUNet(cfg.replace(text_prior_mean=True, **form)).eval()
    missing = extended.load_state_dict(trained.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("prior_mean.") for k in missing)
    kw = inputs(cfg, b=2, t=6, h=8, w=4)
    with torch.no_grad():
        assert torch.equal(extended(**kw), trained(**kw))
        torch.nn.init.zeros_(extended.out_conv.weight)
        torch.nn.init.zeros_(extended.out_conv.bias)
        randomize_zero_init(extended.prior_mean)
        mean = torch.where(kw["text_mask"][..., None], kw["text_emb"], 0.0).sum(1)
        mean = mean / kw["text_mask"].sum(1, keepdim=True)
        prior = extended.prior_mean

        def coarse(text_mean):
            flat = prior.SCALE * prior.head(prior.inputs(text_mean.expand(2, -1), kw["log_snr"]))
            return flat.reshape(2, cfg.out_channels, 4, 4, 4)

        grid = coarse(mean)
        assert grid.std() > 1e-2

        # trilinear with corners aligned, written out: each output axis samples the grid at n_grid - 1 steps
        def upsample(g, size):
            for axis, n in zip((2, 3, 4), size, strict=True):
                pos = torch.linspace(0, g.shape[axis] - 1, n)
                lo = pos.floor().long().clamp(max=g.shape[axis] - 2)
                frac = (pos - lo).reshape([-1 if d == axis else 1 for d in range(5)])
                g = g.index_select(axis, lo) * (1 - frac) + g.index_select(axis, lo + 1) * frac
            return g

        alpha, sigma = torch.sigmoid(kw["log_snr"]).sqrt(), torch.sigmoid(-kw["log_snr"]).sqrt()
        a, s = alpha.reshape(-1, 1, 1, 1, 1), sigma.reshape(-1, 1, 1, 1, 1)
        x_hat = a * kw["z"] - s * extended(**kw)
        assert torch.allclose(x_hat, a * kw["z"] + s**2 * upsample(grid, (6, 8, 4)), atol=1e-5)
        images = extended(**kw, image_mode=torch.tensor([True, False]))
        still = upsample(grid.mean(2, keepdim=True).expand(-1, -1, 4, -1, -1), (6, 8, 4))
        assert torch.allclose(
            a[0] * kw["z"][0] - s[0] * images[0], a[0] * kw["z"][0] + s[0] ** 2 * still[0], atol=1e-5
        )
        assert torch.equal(images[1], extended(**kw)[1])
        no_text = extended(kw["z"], kw["log_snr"])
        blank = coarse(torch.zeros(1, cfg.text_dim))
        assert torch.allclose(-s * no_text, s**2 * upsample(blank, (6, 8, 4)), atol=1e-5)


def test_text_prior_options_read_the_noise_level_and_add_a_low_rank_colour_pattern_term():
    """text_prior_noise_level: the same text at two log_snr gives two priors (the default does not).
    text_prior_rank K: with the plain output layer zeroed, each coarse grid [C, GRID] has rank <= K."""
    cfg = small_config("attention").replace(text_prior_mean=True)
    text = torch.randn(3, cfg.text_dim)
    log_snr = torch.tensor([-8.0, -3.0, -3.0])
    plain = randomize_zero_init(VideoUNet(cfg).prior_mean)
    form = dict(text_prior_noise_level=True, text_prior_rank=2, text_prior_width=16)
    rich = randomize_zero_init(VideoUNet(cfg.replace(**form)).prior_mean)
    with torch.no_grad():
        same = text[:1].expand(3, -1)
        assert torch.equal(plain.inputs(same, log_snr), same)  # the text alone
        by_noise = rich.head(rich.inputs(same, log_snr))
        assert (by_noise[0] - by_noise[1]).abs().max() > 1e-3
        torch.testing.assert_close(by_noise[1], by_noise[2], rtol=1e-5, atol=1e-6)
        torch.nn.init.zeros_(rich.net[-1].weight)
        torch.nn.init.zeros_(rich.net[-1].bias)
        grids = rich.head(rich.inputs(text, log_snr)).reshape(3, cfg.out_channels, -1)
        ranks = torch.linalg.matrix_rank(grids.double(), rtol=1e-6)
        assert ranks.tolist() == [2, 2, 2]
    with pytest.raises(UserError, match="text_prior_depth=0 must be >= 1"):
        cfg.replace(text_prior_depth=0)


def test_noise_level_prior_reads_log_snr_clamped_to_its_band():
    """text_prior_log_snr_range (lo, hi): below lo the prior is the one at lo, above hi the one at hi; inside
    the band it still changes with log_snr. A band with lo > hi, or not two numbers, is refused by name."""
    form = dict(text_prior_mean=True, text_prior_noise_level=True, text_prior_log_snr_range=[-6, -2])
    cfg = small_config("attention").replace(**form)
    assert cfg.text_prior_log_snr_range == (-6.0, -2.0)
    prior = randomize_zero_init(VideoUNet(cfg).prior_mean)
    text = torch.randn(1, cfg.text_dim).expand(6, -1)
    log_snr = torch.tensor([-20.0, -6.0, -4.0, -2.0, 0.0, 5.0])
    with torch.no_grad():
        b = prior.head(prior.inputs(text, log_snr))
    torch.testing.assert_close(b[0], b[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b[4], b[3], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b[5], b[3], rtol=1e-5, atol=1e-6)
    assert (b[2] - b[1]).abs().max() > 1e-3 and (b[2] - b[3]).abs().max() > 1e-3
    for bad in ([-2, -6], [-6], "band"):
        with pytest.raises(UserError, match="text_prior_log_snr_range"):
            cfg.replace(text_prior_log_snr_range=bad)


def test_guided_student_prior_is_the_teachers_guided_prior():
    """A guidance-embedding U-Net (guided-distillation student) with text_prior_mean, layers silenced: its
    v at weight w is exactly (1 + w) v(c) - w v(no text) of the prior at w = 0 (guidance, linear in b)."""
    cfg = small_config("attention").replace(text_prior_mean=True, guidance_embedding=True)
    unet = VideoUNet(cfg).eval()
    kw = inputs(cfg, b=2, t=6, h=8, w=4)
    w = torch.tensor([3.0, 0.5])
    with torch.no_grad():
        torch.nn.init.zeros_(unet.out_conv.weight)
        torch.nn.init.zeros_(unet.out_conv.bias)
        randomize_zero_init(unet.prior_mean)
        v_c, v_u = unet(**kw), unet(kw["z"], kw["log_snr"])
        assert (v_c - v_u).abs().max() > 1e-2
        guided = (1 + w.reshape(-1, 1, 1, 1, 1)) * v_c - w.reshape(-1, 1, 1, 1, 1) * v_u
        torch.testing.assert_close(unet(**kw, guidance_weight=w), guided, rtol=0, atol=1e-5)
        torch.testing.assert_close(unet(**kw, guidance_weight=torch.zeros(2)), v_c, rtol=0, atol=0)


def test_forward_compiles_as_one_graph_with_the_eager_values():
    """`loop.compile`: the forward traces without graph breaks (all-True text masks included) and the traced
    graph computes what eager does."""
    cfg = small_config(temporal_rotary=True, frame_embedding=True)
    model = make_model(cfg)
    kw = inputs(cfg, t=2)
    explained = torch._dynamo.explain(model)(**dict(kw, text_mask=torch.ones_like(kw["text_mask"])))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager")
    with torch.no_grad():
        for mask in (kw["text_mask"], torch.ones_like(kw["text_mask"])):
            eager, traced = model(**dict(kw, text_mask=mask)), compiled(**dict(kw, text_mask=mask))
            assert (eager - traced).abs().max() < 1e-5
