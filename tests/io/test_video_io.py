import os
import warnings

import av
import numpy as np
import pytest
import torch

from imagen_video.errors import UserError
from imagen_video.io import read_video, write_video


def _video(t=6, h=16, w=24, seed=0):
    """Frames that differ from each other: a bright square moving right on a gradient."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, w, dtype=np.float32)[None, None, :, None] * np.ones((t, h, w, 3), np.float32)
    video = base + rng.uniform(0, 20, (t, h, w, 3))
    for i in range(t):
        video[i, 4:10, 2 * i : 2 * i + 6] = 255
    return video.astype(np.uint8)


@pytest.mark.parametrize("fps", [24, 7.5])
def test_mp4_round_trip_frames_size_rate_and_pixels(tmp_path, fps):
    video = _video()
    out = write_video(tmp_path / "v.mp4", video, fps)
    back, rate = read_video(out)
    assert back.shape == video.shape and back.dtype == np.uint8
    assert rate == pytest.approx(fps)
    # lossy but close: crf 18 on smooth content
    assert np.abs(back.astype(float) - video.astype(float)).mean() < 12
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temp file left behind


def test_mp4_accepts_tensor_and_pads_odd_sizes(tmp_path):
    video = torch.from_numpy(_video(t=3, h=7, w=9))
    with pytest.warns(UserWarning, match="even"):
        write_video(tmp_path / "odd.mp4", video, 3)
    back, _ = read_video(tmp_path / "odd.mp4")
    assert back.shape == (3, 8, 10, 3)


def test_gif_round_trip_exact_frames_and_rate(tmp_path):
    video = _video(t=5, h=8, w=8)
    video[2] = video[1]  # identical neighbours get merged by the GIF encoder; read_video repeats them back
    write_video(tmp_path / "v.gif", video, 10)
    back, rate = read_video(tmp_path / "v.gif")
    assert back.shape == video.shape
    assert rate == pytest.approx(10.0)
    assert np.array_equal(back[1], back[2])
    # even a GIF whose frames are all identical (merged into one by the encoder) reads back whole
    still = np.repeat(video[:1], 3, axis=0)
    write_video(tmp_path / "still.gif", still, 10)
    back, rate = read_video(tmp_path / "still.gif")
    assert back.shape == still.shape and rate == pytest.approx(10.0)
    # GIF keeps 10 ms units: 24 fps is stored as 40 ms frames
    write_video(tmp_path / "w.gif", video, 24)
    assert read_video(tmp_path / "w.gif")[1] == pytest.approx(25.0)


def test_unwritable_and_bad_paths_raise_user_error(tmp_path):
    video = _video(t=2)
    with pytest.raises(UserError, match="does not exist"):
        write_video(tmp_path / "missing" / "v.mp4", video, 8)
    with pytest.raises(UserError, match="suffix"):
        write_video(tmp_path / "v.avi", video, 8)
    with pytest.raises(UserError, match="fps"):
        write_video(tmp_path / "v.mp4", video, 0)
    with pytest.raises(UserError, match="uint8"):
        write_video(tmp_path / "v.mp4", video.astype(np.float32), 8)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="does not exist"):
        write_video(tmp_path / "file" / "v.mp4", video, 8)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match="not writable"):
            write_video(locked / "v.mp4", video, 8)
    else:  # root may write anywhere os.access can see; /proc still refuses new files
        with pytest.raises(UserError, match="not writable"):
            write_video("/proc/imagen_video_test.mp4", video, 8)
    assert not any(p.suffix in (".mp4", ".avi", ".tmp") for p in tmp_path.rglob("*"))
    assert not os.path.exists("/proc/imagen_video_test.mp4")


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import imagen_video.io.video as vmod

    def broken(path, frames, fps):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(vmod, "_write_mp4", broken)
    with pytest.raises(UserError, match="disk full"):
        write_video(tmp_path / "v.mp4", _video(t=2), 8)
    assert list(tmp_path.iterdir()) == []


def test_read_missing_or_garbage_is_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_video(tmp_path / "nope.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    (tmp_path / "bad.gif").write_bytes(b"not a gif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("bad.mp4", "bad.gif"):
            with pytest.raises(UserError, match="cannot read"):
                read_video(tmp_path / name)
