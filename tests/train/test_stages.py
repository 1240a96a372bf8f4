"""Every stage kind trains on data from data/ (shapes, folders, tar shards); previews; export to a cascade."""

import io
import tarfile

import pytest
import torch
import yaml
from train_helpers import BASE, TINY_UNET, load_latest, merge

from imagen_video.cascade import Cascade, repeat_frames
from imagen_video.cli import main
from imagen_video.config import dataclass_from_dict
from imagen_video.data import ShapesDataset
from imagen_video.errors import UserError
from imagen_video.io import read_video, to_uint8, write_video
from imagen_video.models import VideoUNet
from imagen_video.train.config import TrainConfig, build_stage
from imagen_video.train.distributed import Dist
from imagen_video.train.examples import ExampleMaker, conditioning
from imagen_video.train.export import export_stage
from imagen_video.train.stage import StageTask

SR_UNET = {**TINY_UNET, "temporal_levels": [False, True]}
TSR = {"name": "tsr", "kind": "tsr", "frames": 8, "height": 8, "width": 8, "fps": 8,
       "unet": {**SR_UNET, "preset": "tiny/tsr1", "temporal": "conv"}}  # fmt: skip
SSR = {"name": "ssr", "kind": "ssr", "frames": 4, "height": 16, "width": 16, "fps": 4,
       "unet": {**SR_UNET, "preset": "tiny/ssr1", "temporal": "conv"}}  # fmt: skip


def _config(**changes) -> TrainConfig:
    return dataclass_from_dict(TrainConfig, merge(BASE, changes))


def test_conditioning_is_the_previous_stage_view_upsampled():
    clip = torch.rand(1, 3, 8, 8, 8) * 2 - 1
    tsr = build_stage(_config(stage=TSR))
    assert torch.equal(conditioning(clip, tsr, (4, 8, 8)), repeat_frames(clip[:, :, ::2], 2))
    flat = torch.full((1, 3, 4, 16, 16), 0.3)  # a constant clip survives down- and up-sampling
    ssr = build_stage(_config(stage=SSR))
    torch.testing.assert_close(conditioning(flat, ssr, (4, 8, 8)), flat)


def test_examples_are_pure_functions_of_step_and_position():
    config = _config(stage=SSR, condition={"cond_aug_max": 0.5})
    make = ExampleMaker(config, build_stage(config))
    item = ShapesDataset(frames=4, height=16, width=16, fps=4, length=4)[0]
    a, b, c = make(item, 5, 1, False), make(item, 5, 1, False), make(item, 5, 2, False)
    assert all(torch.equal(a[k], b[k]) for k in ("x", "t", "eps", "lowres", "cond_aug_level"))
    assert not torch.equal(a["eps"], c["eps"]) and a["t"] != c["t"]
    assert a["lowres"].shape == a["x"].shape and 0 <= a["cond_aug_level"] <= 0.5


def test_image_positions_run_in_image_mode(monkeypatch):
    seen = []
    forward = VideoUNet.forward

    def spy(self, *args, image_mode=None, **kwargs):
        seen.append(image_mode)
        return forward(self, *args, image_mode=image_mode, **kwargs)

    monkeypatch.setattr(VideoUNet, "forward", spy)
    task = StageTask(_config(data={"image_fraction": 0.5}), Dist())
    batch = next(task.batches(0, micro_batch=2))
    assert batch["image"].tolist() == [False, True]
    assert [c.split()[-1] for c in batch["caption"]][1] not in ("left", "right", "up", "down")
    assert torch.isfinite(task.loss(task.model, batch))
    assert seen[-1].tolist() == [False, True]


@pytest.mark.parametrize("stage", [TSR, SSR], ids=["tsr", "ssr"])
def test_sr_stage_trains_previews_and_exports(make_config, tmp_path, stage):
    config = make_config(stage=stage, loop={"steps": 2, "sample_every": 2}, data={"image_fraction": 0.5})
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out)]) == 0
    video, fps = read_video(out / "samples" / "step_00000002.gif")
    assert video.shape == (stage["frames"], 3 * stage["height"], 2 * stage["width"], 3)  # sample/cond/real
    assert fps == pytest.approx(stage["fps"], rel=0.05)
    # the real clip row of the preview is the first training clip
    shape = {k: stage[k] for k in ("frames", "height", "width", "fps")}
    real = ShapesDataset(**shape, length=64)[0]["video"]
    expected = to_uint8(real[None])[0][:, :, : stage["width"]]
    got = video[:, 2 * stage["height"] :, : stage["width"]].astype(int)
    assert abs(got - expected.astype(int)).mean() < 8  # gif palette quantisation only
    assert (out / "samples" / "step_00000002.txt").read_text().count("\n") == 2


def test_export_puts_ema_weights_into_a_cascade_folder(make_config, tmp_path):
    base_out, tsr_out, cascade = tmp_path / "base", tmp_path / "tsr", tmp_path / "cascade"
    assert main(["train", str(make_config(loop={"steps": 2})), "--out", str(base_out)]) == 0
    tsr_stage = {**TSR, "frames": 8, "height": 8, "width": 8, "fps": 8}
    tsr_config = make_config("tsr.yaml", stage=tsr_stage, loop={"steps": 2})
    assert main(["train", str(tsr_config), "--out", str(tsr_out)]) == 0
    # SR stage first, then the base: the folder ends up ordered base -> tsr
    assert main(["train", str(tsr_config), "--out", str(tsr_out), "--export", str(cascade)]) == 0
    export_stage(base_out / "latest.pt", cascade)
    data = yaml.safe_load((cascade / "cascade.yaml").read_text())
    assert [s["name"] for s in data["stages"]] == ["base", "tsr"] and data["text_encoder"]["name"] == "hash:8"
    loaded = Cascade.load(cascade)
    for name, out in (("base", base_out), ("tsr", tsr_out)):
        ema, unet = load_latest(out)["ema"], loaded.unet(name).state_dict()
        assert all(torch.equal(unet[k], v) for k, v in ema.items())
    assert loaded.stage("tsr").frames == 8 and loaded.stage("base").unet.text_dim == 8
    other = make_config("other.yaml", text={"encoder": "hash:16"}, loop={"steps": 1})
    assert main(["train", str(other), "--out", str(tmp_path / "other")]) == 0
    with pytest.raises(UserError, match="text encoder"):
        export_stage(tmp_path / "other" / "latest.pt", cascade)


def test_export_of_an_ssr_trained_on_frame_crops_keeps_the_folder_frames(make_config, tmp_path):
    cascade = tmp_path / "cascade"
    crops = {**SSR, "frames": 2, "fps": 2}  # SSR itself has the base's 4 frames
    for name, stage in (("base", None), ("full", SSR), ("crops", crops)):
        changes = {"stage": stage} if stage else {}
        config = make_config(f"{name}.yaml", loop={"steps": 1}, **changes)
        assert main(["train", str(config), "--out", str(tmp_path / name)]) == 0
        assert main(["train", str(config), "--out", str(tmp_path / name), "--export", str(cascade)]) == 0
    loaded = Cascade.load(cascade)
    assert (loaded.stage("ssr").frames, loaded.stage("ssr").fps) == (4, 4)
    ema, unet = load_latest(tmp_path / "crops")["ema"], loaded.unet("ssr").state_dict()
    assert all(torch.equal(unet[k], v) for k, v in ema.items())


def _shapes_files(n: int, folder) -> list[tuple[bytes, str]]:
    """n ShapesDataset clips as gif bytes with their captions."""
    ds = ShapesDataset(frames=8, height=16, width=16, fps=8, length=n, seed=1)
    out = []
    for i in range(n):
        item = ds[i]
        path = write_video(folder / f"_clip_{i}.gif", to_uint8(item["video"][None])[0], 8)
        out.append((path.read_bytes(), item["caption"]))
        path.unlink()
    return out


def test_video_folder_source_skips_a_corrupt_file(make_config, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i, (data, caption) in enumerate(_shapes_files(3, tmp_path)):
        (folder / f"clip{i}.gif").write_bytes(data)
        (folder / f"clip{i}.txt").write_text(caption)
    (folder / "broken.gif").write_bytes(b"not a gif")
    (folder / "broken.txt").write_text("a broken clip")
    config = make_config(data={"source": "folder", "path": str(folder)}, loop={"steps": 2, "batch_size": 4})
    with pytest.warns(UserWarning, match="skipping unreadable video"):
        assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    assert load_latest(tmp_path / "run")["step"] == 2


def test_tar_shards_source_resumes_exactly(make_config, tmp_path):
    shard = tmp_path / "shard-000.tar"
    with tarfile.open(shard, "w") as tar:
        for i, (data, caption) in enumerate(_shapes_files(3, tmp_path)):
            for suffix, payload in ((".gif", data), (".txt", caption.encode())):
                info = tarfile.TarInfo(f"clip{i}{suffix}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    config = _config(data={"source": "shards", "path": str(shard)})
    task = StageTask(config, Dist())
    batches = task.batches(0, micro_batch=2)
    from_start = [next(batches) for _ in range(4)]  # steps 0..3: wraps around the 3-clip shard
    resumed = next(task.batches(2, micro_batch=2))
    assert all(torch.equal(resumed[k], from_start[2][k]) for k in ("x", "eps", "t"))
    assert resumed["caption"] == from_start[2]["caption"]
    assert torch.isfinite(task.loss(task.model, resumed))


def test_cli_guards_resume_and_existing_runs(make_config, tmp_path, capsys):
    config, out = make_config(loop={"steps": 1}), tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", str(config), "--out", str(out)]) == 0
    assert main(["train", str(config), "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["train", str(config), "--out", str(out), "--resume", "--max-steps", "2"]) == 0
    assert load_latest(out)["step"] == 2


def test_dataloader_workers_and_text_in_workers_change_nothing(make_config, tmp_path):
    plain = make_config("plain.yaml", loop={"steps": 3}, data={"image_fraction": 0.5})
    workers = make_config(
        "workers.yaml",
        loop={"steps": 3},
        data={"image_fraction": 0.5, "num_workers": 1},
        text={"in_workers": True},
    )
    assert main(["train", str(plain), "--out", str(tmp_path / "plain")]) == 0
    assert main(["train", str(workers), "--out", str(tmp_path / "workers")]) == 0
    a, b = load_latest(tmp_path / "plain")["model"], load_latest(tmp_path / "workers")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_init_from_starts_from_trained_weights(make_config, tmp_path):
    """init_from (a cascade folder, a stage file, a checkpoint's EMA) replaces the random U-Net with the
    stored weights; a file saved for another U-Net is a UserError naming the tensor."""
    out, cascade = tmp_path / "base", tmp_path / "cascade"
    config = str(make_config(loop={"steps": 2}))
    assert main(["train", config, "--out", str(out)]) == 0
    assert main(["train", config, "--out", str(out), "--export", str(cascade)]) == 0
    stored = Cascade.load(cascade).unet("base").state_dict()
    for source in (cascade, cascade / "base.safetensors", out / "latest.pt"):
        model = StageTask(_config(init_from=str(source)), Dist()).model
        assert all(torch.equal(model.state_dict()[k], v) for k, v in stored.items())
    random_model = StageTask(_config(), Dist()).model
    assert any(not torch.equal(random_model.state_dict()[k], v) for k, v in stored.items())
    wider = {**BASE["stage"], "unet": {**TINY_UNET, "channels": 16}}
    for source in (cascade, out / "latest.pt"):
        with pytest.raises(UserError, match="different U-Net config"):
            StageTask(_config(stage=wider, init_from=str(source)), Dist())
    with pytest.raises(UserError, match="missing"):
        StageTask(_config(init_from=str(tmp_path / "nowhere")), Dist())


def test_trainable_trains_only_the_named_layers(make_config, tmp_path):
    """trainable [prior_mean.] on a fine-tune from a checkpoint: every other weight stays exactly the
    checkpoint's EMA weight through training and export, the prior's zero output layer moves; a prefix naming
    no parameter is a UserError naming it."""
    source, tune, cascade = tmp_path / "source", tmp_path / "tune", tmp_path / "cascade"
    assert main(["train", str(make_config(loop={"steps": 2})), "--out", str(source)]) == 0
    prior_stage = {**BASE["stage"], "unet": {**TINY_UNET, "text_prior_mean": True}}
    changes = dict(stage=prior_stage, init_from=str(source / "latest.pt"), trainable=["prior_mean."])
    optim = {"lr": 1e-2, "warmup_steps": 0}
    config = str(make_config("tune.yaml", loop={"steps": 3}, optim=optim, **changes))
    assert main(["train", config, "--out", str(tune)]) == 0
    assert main(["train", config, "--out", str(tune), "--export", str(cascade)]) == 0
    start = load_latest(source)
    start = {**start["model"], **start["ema"]}
    final = load_latest(tune)
    exported = Cascade.load(cascade).unet("base").state_dict()
    frozen = [k for k in exported if not k.startswith("prior_mean.")]
    assert frozen and set(final["ema"]) == {k for k in exported if k.startswith("prior_mean.")}
    assert all(torch.equal(final["model"][k], start[k]) for k in frozen)
    assert all(torch.equal(exported[k], start[k]) for k in frozen)
    out_layer = [k for k in final["ema"] if k.endswith("weight")][-1]
    assert final["model"][out_layer].abs().max() > 0 and exported[out_layer].abs().max() > 0
    with pytest.raises(UserError, match="'prior_man.'"):
        StageTask(_config(stage=prior_stage, trainable=["prior_man."]), Dist())
    for bad in ("prior_mean.", [""], [3]):
        with pytest.raises(UserError, match="trainable must be a list"):
            _config(stage=prior_stage, trainable=bad)


def test_resume_does_not_reload_init_from(make_config, tmp_path):
    """A resumed fine-tune continues bit-identical from its checkpoint alone: init_from is read only at the
    start, so moving the file away does not stop the run."""
    source = tmp_path / "source"
    assert main(["train", str(make_config(loop={"steps": 2})), "--out", str(source)]) == 0
    tune = str(make_config("tune.yaml", init_from=str(source / "latest.pt"), loop={"steps": 4}))
    assert main(["train", tune, "--out", str(tmp_path / "whole")]) == 0
    assert main(["train", tune, "--out", str(tmp_path / "split"), "--max-steps", "2"]) == 0
    (source / "latest.pt").rename(tmp_path / "moved.pt")
    assert main(["train", tune, "--out", str(tmp_path / "split"), "--resume"]) == 0
    whole, split = load_latest(tmp_path / "whole"), load_latest(tmp_path / "split")
    assert split["step"] == 4
    assert all(torch.equal(whole["model"][k], split["model"][k]) for k in whole["model"])
