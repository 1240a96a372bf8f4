"""VideoTextFolder: mp4/gif/webm + .txt pairs, fps resampling, corrupt files skipped and counted."""

from __future__ import annotations

import warnings

import pytest
import torch

from imagen_video.data import VideoTextFolder
from imagen_video.errors import UserError

from .video_files import ramp_video, write_video


def grey_levels(video: torch.Tensor) -> list[float]:
    """Mean grey level (0..255) of each frame of a clip [C, T, H, W] in [-1, 1]."""
    return ((video.mean(dim=(0, 2, 3)) + 1) * 127.5).tolist()


@pytest.fixture
def folder(tmp_path):
    """a.mp4, b.gif, c.webm with captions, a garbage d.mp4 with a caption, and e.mp4 without one."""
    ramp = ramp_video(12, 16, 24)
    for name in ("a.mp4", "b.gif", "c.webm", "e.mp4"):
        write_video(tmp_path / name, ramp, fps=8)
    (tmp_path / "d.mp4").write_bytes(b"\x00not a video" * 50)
    for name in "abcd":
        (tmp_path / f"{name}.txt").write_text(f"caption {name}\n", encoding="utf-8")
    return tmp_path


def test_reads_every_format_at_the_target_fps(folder):
    with pytest.warns(UserWarning, match="no same-named .txt"):
        ds = VideoTextFolder(folder, frames=6, height=8, width=8, fps=4)
    assert len(ds) == 4 and ds.num_missing_captions == 1
    for i, name in enumerate("abc"):
        sample = ds[i]
        assert sample["caption"] == f"caption {name}" and sample["video"].shape == (3, 6, 8, 8)
        # 8 fps source, 4 fps clip: source frames 0, 2, 4, ... whose grey level is 20 * index (lossy codecs)
        assert grey_levels(sample["video"]) == pytest.approx([0, 40, 80, 120, 160, 200], abs=10)


def test_corrupt_file_is_skipped_and_counted_once(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = VideoTextFolder(folder, frames=4, height=8, width=8, fps=8)
    with pytest.warns(UserWarning, match="skipping unreadable video .*d.mp4"):
        sample = ds[3]
    assert sample["caption"] == "caption a" and sample["skipped"] == 1  # the next good file, wrapping round
    assert ds.num_skipped == 1 and [p.name for p in ds.skipped_paths] == ["d.mp4"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning for a known bad file
        loader = torch.utils.data.DataLoader(ds, batch_size=4)
        batch = next(iter(loader))
    assert batch["video"].shape == (4, 3, 4, 8, 8) and int(batch["skipped"].sum()) == 1
    assert ds.num_skipped == 1


def test_short_video_holds_its_last_frame(tmp_path):
    write_video(tmp_path / "short.mp4", ramp_video(3), fps=8)
    (tmp_path / "short.txt").write_text("short", encoding="utf-8")
    ds = VideoTextFolder(tmp_path, frames=5, height=16, width=16, fps=8)
    assert grey_levels(ds[0]["video"]) == pytest.approx([0, 20, 40, 40, 40], abs=6)
    assert ds.num_padded == 1


def test_missing_or_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        VideoTextFolder(tmp_path / "nope")
    with pytest.raises(UserError, match="no captioned videos"):
        VideoTextFolder(tmp_path)
