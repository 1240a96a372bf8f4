"""cascade.retext: a cascade moved from "minilm" to "minilm+input" makes the same videos."""

import pytest
import torch

from imagen_video.cascade import Cascade
from imagen_video.cascade.retext import retext_cascade, widen_text_inputs
from imagen_video.errors import UserError


def test_widened_text_inputs_read_the_old_features_and_ignore_the_new():
    state = {
        "text_pool.weight": torch.randn(5, 3),
        "text_proj.0.weight": torch.randn(4, 3),
        "x": torch.ones(1),
    }
    wide = widen_text_inputs(state, 7)
    emb = torch.randn(2, 7)
    for key in ("text_pool.weight", "text_proj.0.weight"):
        assert wide[key].shape == (state[key].shape[0], 7)
        torch.testing.assert_close(emb @ wide[key].T, emb[:, :3] @ state[key].T)
    assert wide["x"] is state["x"]
    with pytest.raises(UserError, match="more than the new 2"):
        widen_text_inputs(state, 2)


def test_retexted_cascade_makes_the_same_videos(micro_cascade, tmp_path):
    source = micro_cascade.save(tmp_path / "minilm")
    out = retext_cascade(source, "minilm+input", tmp_path / "wide")
    wide = Cascade.load(out)
    assert wide.config.text_encoder.name == "minilm+input"
    assert all(stage.unet.text_dim == 768 for stage in wide.stages)
    prompts = ["a red circle moving to the left", "a blue star growing"]
    old = Cascade.load(source)
    before = old.generate(prompts, seed=3, progress=False).videos
    after = wide.generate(prompts, seed=3, progress=False).videos
    assert before.std() > 0 and (before == after).all()
    # and in float: each U-Net on the wider embeddings gives what it gave on the old ones
    emb, mask = old.text_encoder.encode(prompts)
    wide_emb, wide_mask = wide.text_encoder.encode(prompts)
    assert wide_emb.shape[-1] == 768 and (wide_emb[..., 384:] != 0).any()
    for stage in old.stages:
        z = torch.randn(
            2, 3, stage.frames, stage.height, stage.width, generator=torch.Generator().manual_seed(0)
        )
        extra = {"lowres": torch.zeros_like(z)} if stage.kind != "base" else {}
        with torch.no_grad():
            v_old = old.unet(stage.name)(z, torch.tensor([0.0, 2.0]), emb, mask, **extra)
            v_wide = wide.unet(stage.name)(z, torch.tensor([0.0, 2.0]), wide_emb, wide_mask, **extra)
        assert v_old.abs().max() > 0
        torch.testing.assert_close(v_wide, v_old, atol=1e-5, rtol=0)
    with pytest.raises(UserError, match="cannot move a cascade on text encoder 'minilm\\+input' to 'minilm'"):
        retext_cascade(out, "minilm", tmp_path / "back")
