"""Pure pieces of training: data order, sharding, EMA, warmup, text dropout, metrics, config errors."""

import contextlib
import math

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import load_latest

from imagen_video.config import dataclass_from_dict
from imagen_video.errors import UserError
from imagen_video.train.config import OptimSpec, TrainConfig, build_stage, load_train_config
from imagen_video.train.ema import EMA, ema_decay_at
from imagen_video.train.loop import autocast, decay_factor, lr_factor, warmup_factor
from imagen_video.train.metrics import MetricsLogger, read_metrics
from imagen_video.train.order import DataOrder, is_image_position, micro_positions, sample_seed
from imagen_video.train.text import HashTextEncoder, TextConditioner


def test_data_order_is_a_pure_function_and_a_permutation_per_epoch():
    order = DataOrder(length=10, batch_size=4, seed=7)
    first = [order.index(step, j) for step in range(5) for j in range(4)]
    backwards = DataOrder(length=10, batch_size=4, seed=7)  # any call order: a pure function of (step, j)
    assert first[::-1] == [
        backwards.index(step, j) for step in reversed(range(5)) for j in reversed(range(4))
    ]
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:20]) == list(range(10))  # two epochs
    assert first[:10] != first[10:20]
    assert first != [DataOrder(10, 4, seed=8).index(s, j) for s in range(5) for j in range(4)]


@pytest.mark.parametrize("world, accum", [(1, 1), (2, 1), (2, 2), (4, 2)])
def test_micro_positions_partition_the_global_batch(world, accum):
    batch = 8
    micro = batch // (world * accum)
    seen = [j for m in range(accum) for r in range(world) for j in micro_positions(m, r, world, micro)]
    assert sorted(seen) == list(range(batch))


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1 / 3, 1.0])
def test_image_positions_hit_the_ratio_exactly(fraction):
    batch = 12
    images = sum(is_image_position(j, fraction) for j in range(batch))
    assert images == math.floor(batch * fraction)


def test_sample_seed_depends_on_every_key():
    seeds = {sample_seed(0, s, j) for s in range(20) for j in range(20)}
    assert len(seeds) == 400 and sample_seed(1, 2, 3) == sample_seed(1, 2, 3) < 2**63


def test_ema_matches_closed_form():
    model = nn.Linear(3, 2).to(torch.bfloat16)
    start = model.weight.detach().float().clone()
    ema = EMA(model)
    assert ema.shadow["weight"].dtype == torch.float32
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(3):
        ema.update(model, 0.9)
    expected = 0.9**3 * start + (1 - 0.9**3) * 1.0
    torch.testing.assert_close(ema.shadow["weight"], expected)
    state = ema.model_state_dict(model)
    assert state["weight"].dtype == torch.bfloat16
    restored = EMA(nn.Linear(3, 2))
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.shadow["weight"], ema.shadow["weight"])


def test_ema_warmup_and_lr_warmup():
    assert ema_decay_at(0, 0.999, True) == pytest.approx(0.1)
    assert ema_decay_at(10_000, 0.999, True) == 0.999 and ema_decay_at(0, 0.999, False) == 0.999
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_cosine_lr_decay():
    """1 up to decay_start, half-way at the middle, final_lr_ratio from decay_end on."""
    assert [decay_factor(s, 10, 20, 0.1) for s in (0, 10, 15, 20, 25)] == pytest.approx(
        [1, 1, 0.55, 0.1, 0.1]
    )
    assert decay_factor(12, 10, 20, 0.0) == pytest.approx(0.5 * (1 + math.cos(0.2 * math.pi)))
    assert decay_factor(1000, 0, 0, 0.1) == 1.0  # decay_end 0: constant
    optim = OptimSpec(lr=1.0, warmup_steps=4, decay_start=4, decay_end=8, final_lr_ratio=0.5)
    assert [lr_factor(s, optim) for s in (0, 3, 6, 8, 9)] == pytest.approx([0.25, 1.0, 0.75, 0.5, 0.5])
    with pytest.raises(UserError, match="decay_end must be 0"):
        OptimSpec(decay_start=10, decay_end=5)


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_is_bf16_on_cuda_by_default_and_off_on_cpu():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert isinstance(autocast("auto", cpu), contextlib.nullcontext)
    assert isinstance(autocast("fp32", cuda), contextlib.nullcontext)
    for precision, device in (("auto", cuda), ("bf16", cpu)):
        context = autocast(precision, device)
        assert context.fast_dtype == torch.bfloat16 and context.device == device.type
    with autocast("bf16", cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_hash_encoder_and_cfg_dropout():
    encoder = HashTextEncoder(dim=8, max_length=4)
    emb, mask = encoder.encode(["a red circle", "A Red circle moving left now"])
    assert emb.shape == (2, 4, 8) and mask.sum(1).tolist() == [3, 4]
    assert torch.equal(emb[0, :3], emb[1, :3])  # same words, same vectors; case-insensitive
    text = TextConditioner(encoder)
    emb, mask = text(["a red circle", "a blue star"], drop=torch.tensor([False, True]))
    assert emb.shape == (2, 4, 8) and mask[0].sum() == 3
    assert not mask[1].any() and not emb[1].any()  # dropped: the unconditional branch


def test_caption_embedding_does_not_depend_on_its_batch():
    class BatchSensitive(HashTextEncoder):
        """Like real encoders, its numbers drift with the batch it is given (here: by design)."""

        def encode(self, prompts):
            emb, mask = super().encode(prompts)
            return emb + 1e-3 * len(prompts), mask

    text = TextConditioner(BatchSensitive(dim=4, max_length=6), memo_bytes=0)
    assert text.memo_size == 16
    alone = text(["a red circle"])[0][0]
    for i in range(20):
        text([f"caption {i}", "a blue star moving up"])
    assert len(text.memo) == 16 and "a red circle" not in text.memo  # evicted: encoded again below
    assert torch.equal(text(["a green box", "a red circle"])[0][1], alone)


def test_metrics_csv_drops_rows_after_the_resumed_step(tmp_path):
    log = MetricsLogger(tmp_path, 0, tensorboard=False)
    for step in range(1, 6):
        log.log(step, loss=1.0 / step, lr=0.1, grad_norm=1.0, seconds=0.5)
    log.close()
    log = MetricsLogger(tmp_path, 3, tensorboard=False)
    log.log(4, loss=9.0, lr=0.1, grad_norm=1.0, seconds=0.5)
    log.close()
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["loss"] == 9.0


def test_config_errors_name_the_key(make_config, tmp_path):
    with pytest.raises(UserError, match="unknown key.*'stepz'"):
        load_train_config(make_config(loop={"stepz": 3}))
    with pytest.raises(UserError, match="loop.parallel"):
        load_train_config(make_config(loop={"parallel": "zero"}))
    with pytest.raises(UserError, match="unknown U-Net preset"):
        load_train_config(make_config(stage={"unet": "tiny/nope"}))
    with pytest.raises(UserError, match="text_dim"):
        config = load_train_config(make_config(stage={"unet": {"text_dim": 5}}))
        build_stage(config, text_dim=8)
    with pytest.raises(UserError, match="must be a multiple"):
        tsr = {"name": "tsr", "kind": "tsr", "frames": 8, "unet": "tiny/tsr1"}
        load_train_config(make_config(stage=tsr, condition={"frames": 3}))


def test_condition_shape_defaults():
    shape = {"frames": 8, "height": 8, "width": 8, "fps": 6}
    tsr = dataclass_from_dict(
        TrainConfig, {"stage": {"name": "t", "kind": "tsr", **shape, "unet": "tiny/tsr1"}}
    )
    assert tsr.condition.shape(build_stage(tsr)) == (4, 8, 8)
    shape.update(height=16, width=16)
    ssr = dataclass_from_dict(
        TrainConfig, {"stage": {"name": "s", "kind": "ssr", **shape, "unet": "tiny/ssr1"}}
    )
    assert ssr.condition.shape(build_stage(ssr)) == (8, 8, 8)
    assert np.isclose(build_stage(ssr).fps, 6.0)


def test_shapes_data_options_reach_the_dataset(make_config):
    """data.two_object_fraction = 0 and data.paraphrase = false: one object, canonical captions only (the
    defaults give both two-object scenes and paraphrases); other sources refuse the keys."""
    from imagen_video.data.captions import caption
    from imagen_video.train.distributed import Dist
    from imagen_video.train.examples import build_source

    def samples(**data):
        size = {"height": 16, "width": 16}  # 8x8 frames have no room for a second object
        config = load_train_config(make_config(stage=size, data={"source": "shapes", **data}))
        source = build_source(config, build_stage(config), Dist())
        return [source[i] for i in range(40)]

    plain = samples(two_object_fraction=0.0, paraphrase=False)
    assert all(s["attributes"].get("count", 1) == 1 for s in plain)
    assert all(s["caption"] == caption(s["attributes"], paraphrase=False) for s in plain)
    default = samples()
    assert any(s["attributes"].get("count", 1) == 2 for s in default)
    assert any(s["caption"] != caption(s["attributes"], paraphrase=False) for s in default)
    with pytest.raises(UserError, match="shapes source only"):
        load_train_config(make_config(data={"source": "folder", "path": "videos", "paraphrase": False}))


def test_t_range_draws_t_uniformly_in_the_band(make_config):
    """t_range [a, b]: every example's t = a + (b - a) u with u the default run's draw at the same (step, j),
    so the default [0, 1] keeps old runs bit-identical; bad ranges are refused naming the key."""
    from imagen_video.train.examples import ExampleMaker

    def draws(**changes):
        config = load_train_config(make_config(**changes))
        stage = build_stage(config)
        make = ExampleMaker(config, stage)
        item = {"video": torch.zeros(3, stage.frames, stage.height, stage.width), "caption": "a red circle"}
        return torch.stack([make(item, step, j, False)["t"] for step in range(50) for j in range(4)])

    u, band = draws(), draws(t_range=[0.85, 0.99])
    seed = load_train_config(make_config()).seed
    generators = [torch.Generator().manual_seed(sample_seed(seed, s, j)) for s in range(50) for j in range(4)]
    first = [torch.rand((), generator=g) for g in generators]
    assert torch.equal(u, torch.stack(first))
    torch.testing.assert_close(band, 0.85 + 0.14 * u, rtol=0, atol=1e-7)
    assert 0.85 <= band.min() < 0.86 and 0.98 < band.max() < 0.99
    for bad in ([0.9, 0.5], [-0.1, 0.5], [0.2, 1.5], [0.5], ["low", "high"], 0.5):
        with pytest.raises(UserError, match="t_range"):
            load_train_config(make_config(t_range=bad))


@pytest.mark.slow  # inductor compiles for minutes on a 2-core CPU
def test_compiled_training_matches_eager(make_config, tmp_path):
    """loop.compile: the same run's weights after 4 steps as eager (float32 CPU, to rounding), same keys."""
    from imagen_video.cli import main

    states = []
    for compile_ in (False, True):
        config = make_config(f"c{compile_}.yaml", loop={"compile": compile_})
        assert main(["train", str(config), "--out", str(tmp_path / f"run{compile_}")]) == 0
        states.append(load_latest(tmp_path / f"run{compile_}"))
    eager, compiled = states
    assert eager["model"].keys() == compiled["model"].keys() and eager["ema"].keys() == compiled["ema"].keys()
    assert max((eager["model"][k] - compiled["model"][k]).abs().max().item() for k in eager["model"]) < 1e-5
