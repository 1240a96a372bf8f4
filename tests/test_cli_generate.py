"""`imagen-video generate`: end to end on the tiny random cascade; bad input -> one line, exit 2, no file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from imagen_video.cascade import Cascade
from imagen_video.cli import main
from imagen_video.io import read_video

REPO = Path(__file__).resolve().parents[1]
TINY_YAML = REPO / "configs" / "tiny.yaml"
MICRO_YAML = REPO / "tests" / "cascade" / "micro.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a busy shared 2-core machine, two spinning OpenMP threads are ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generate(capsys, *args):
    """Run `imagen-video generate ARGS` in-process -> (exit code, stdout, stderr)."""
    code = main(["generate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagen-video generate: error:"), err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def micro_folder(tmp_path_factory):
    """A saved micro cascade folder (random weights)."""
    return Cascade.load(MICRO_YAML, random_init=True).save(tmp_path_factory.mktemp("micro") / "cascade")


def copy_folder(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_generate_tiny_yaml_end_to_end(capsys, tmp_path):
    out = tmp_path / "out.mp4"
    options = f"--cascade {TINY_YAML} --steps 1 --quiet --guidance oscillate:15,1 --device cpu".split()
    code, stdout, err = generate(capsys, "a red circle moving left", "-o", out, *options)
    assert code == 0, err
    assert f"wrote {out} (32 frames, 32x32, 24 fps)" in stdout and "took" in stdout
    assert "random U-Nets" in err
    video, fps = read_video(out)
    assert video.shape == (32, 32, 32, 3) and fps == 24.0
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_generate_folder_with_stages_and_several_videos(capsys, tmp_path, micro_folder):
    options = f"--cascade {micro_folder} --num-videos 2 --save-stages {tmp_path / 'stages'} --quiet --seed 3"
    code, stdout, err = generate(
        capsys, "a blue square", "-o", tmp_path / "v.gif", *options.split(), "--threads", 2
    )
    assert code == 0, err
    assert torch.get_num_threads() == 2  # --threads set torch's intra-op threads (the fixture had set 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stages", "v_0.gif", "v_1.gif"]
    names = sorted(p.name for p in (tmp_path / "stages").iterdir())
    assert names == [
        f"{i}_{stage}_{k}.gif" for i, stage in enumerate(["base", "tsr", "ssr"], 1) for k in (0, 1)
    ]
    assert read_video(tmp_path / "stages" / "2_tsr_1.gif")[0].shape == (4, 8, 8, 3)
    assert read_video(tmp_path / "v_1.gif")[0].shape == (4, 16, 16, 3)


def test_too_long_prompt_is_truncated_with_a_warning(capsys, tmp_path, micro_folder):
    long_prompt = " ".join(["red"] * 30)  # micro.yaml: max_length 16 tokens
    code, stdout, err = generate(
        capsys, long_prompt, "-o", tmp_path / "v.mp4", "--cascade", micro_folder, "--quiet", "--steps", 1
    )
    assert code == 0
    assert "warning: prompt 0 has 32 tokens" in err and "truncated to 16" in err
    assert (tmp_path / "v.mp4").is_file()


def test_unknown_config_key(capsys, tmp_path):
    data = yaml.safe_load(MICRO_YAML.read_text())
    data["stages"][1]["colour"] = "red"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    code, _, err = generate(capsys, "a red circle", "-o", tmp_path / "v.mp4", "--cascade", bad)
    assert_one_line_error(code, err, "unknown key(s) 'colour'", "stages[1]", str(bad))
    data = yaml.safe_load(MICRO_YAML.read_text())
    data["stages"][0]["unet"]["chanels"] = 8
    bad.write_text(yaml.safe_dump(data))
    code, _, err = generate(capsys, "a red circle", "-o", tmp_path / "v.mp4", "--cascade", bad)
    assert_one_line_error(code, err, "'chanels'", "UNetConfig")
    assert not (tmp_path / "v.mp4").exists()


def test_missing_weight_file(capsys, tmp_path, micro_folder):
    folder = copy_folder(micro_folder, tmp_path / "c")
    (folder / "tsr.safetensors").unlink()
    code, _, err = generate(capsys, "a red circle", "-o", tmp_path / "v.mp4", "--cascade", folder)
    assert_one_line_error(code, err, str(folder / "tsr.safetensors"), "missing")
    assert not (tmp_path / "v.mp4").exists()


def test_wrong_shaped_weight_file(capsys, tmp_path, micro_folder):
    folder = copy_folder(micro_folder, tmp_path / "c")
    state = load_file(folder / "ssr.safetensors")
    state["input_conv.weight"] = state["input_conv.weight"][:, :3].contiguous()  # drop the lowres channels
    save_file(state, folder / "ssr.safetensors")
    code, _, err = generate(capsys, "a red circle", "-o", tmp_path / "v.mp4", "--cascade", folder)
    assert_one_line_error(
        code, err, str(folder / "ssr.safetensors"), "'input_conv.weight'", "[8, 3, 3, 3]", "[8, 6, 3, 3]"
    )
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["", "-o", "{tmp}/v.mp4"], ["prompt 0 is empty"]),
        (["   ", "-o", "{tmp}/v.mp4"], ["prompt 0 is empty"]),
        (["a red circle", "-o", "{tmp}/v.mp4", "--steps", "0"], ["--steps must be >= 1"]),
        (["a red circle", "-o", "{tmp}/missing/v.mp4"], ["does not exist"]),
        (["a red circle", "-o", "{tmp}/v.avi"], ["unknown video suffix '.avi'"]),
        (["a red circle", "-o", "{tmp}/v.mp4", "--guidance", "loud"], ["guidance 'loud' not understood"]),
        (["a red circle", "-o", "{tmp}/v.mp4", "--num-videos", "0"], ["--num-videos must be >= 1"]),
        (["a red circle", "-o", "{tmp}/v.mp4", "--threads", "0"], ["--threads must be >= 1"]),
        (["a red circle", "-o", "{tmp}/v.mp4", "--steps", "bass=2"], ["unknown stage 'bass'"]),
        (["a red circle", "-o", "{tmp}/v.mp4", "--cascade", "nope"], ["no cascade 'nope'"]),
    ],
)
def test_bad_input_one_line_exit_2_no_file(capsys, tmp_path, args, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--cascade" not in args:
        args += ["--cascade", str(MICRO_YAML)]
    code, _, err = generate(capsys, *args)
    assert_one_line_error(code, err, *words)
    assert list(tmp_path.rglob("*")) == []


def test_unwritable_output_path(capsys, tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/imagen_video_test.mp4")  # root can write everywhere os.access looks
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "v.mp4"
    code, _, err = generate(
        capsys, "a red circle", "-o", target, "--cascade", MICRO_YAML, "--steps", 1, "--quiet"
    )
    assert_one_line_error(code, err, str(target))
    assert not target.exists()


def test_default_cascade_not_shipped_names_the_workaround(capsys, tmp_path, monkeypatch):
    from imagen_video.cascade import registry

    monkeypatch.setattr(registry, "PRETRAINED_DIR", tmp_path / "no_packaged_cascades")
    code, _, err = generate(capsys, "a red circle", "-o", tmp_path / "v.mp4")
    assert_one_line_error(code, err, "has not shipped yet", "--cascade configs/tiny.yaml")


def test_console_script_exit_code_and_single_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "imagen_video.cli", "generate", "a red circle", "-o", str(tmp_path / "v.mp4")]
        + ["--steps", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "imagen-video generate: error: --steps must be >= 1, got 0"
    assert list(tmp_path.iterdir()) == []
