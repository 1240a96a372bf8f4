"""TarVideoStream: webdataset shards, bad members skipped and counted, work split over ranks/workers."""

from __future__ import annotations

import tarfile
import warnings

import pytest
import torch

from imagen_video.data.tar_stream import TarVideoStream, expand_shards, split_key
from imagen_video.errors import UserError

from .video_files import ramp_video, video_bytes, write_shard


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three shards, 7 good samples; shard 1 also holds a garbage mp4 and a video without its caption."""
    tmp = tmp_path_factory.mktemp("shards")
    mp4 = video_bytes(ramp_video(6), fps=8, tmp=tmp)
    gif = video_bytes(ramp_video(6), fps=8, suffix=".gif", tmp=tmp)
    layout = {
        0: [("s0a", mp4), ("s0b", gif)],
        1: [("s1a", mp4), ("s1bad", b"garbage" * 30), ("s1nocap", mp4), ("s1b", mp4)],
        2: [("s2a", mp4), ("s2b", gif), ("s2c", mp4)],
    }
    paths = []
    for index, samples in layout.items():
        members = []
        for key, data in samples:
            suffix = "gif" if data is gif else "mp4"
            members.append((f"clips/{key}.{suffix}", data))
            if key != "s1nocap":
                members.append((f"clips/{key}.txt", key.encode()))
        paths.append(tmp / f"shard-{index:03d}.tar")
        write_shard(paths[-1], members)
    return tmp, [str(p) for p in paths]


GOOD = {"s0a", "s0b", "s1a", "s1b", "s2a", "s2b", "s2c"}


def captions(stream) -> list[str]:
    """Captions of everything the stream yields, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [sample["caption"] for sample in stream]


def test_reads_all_good_samples_and_counts_bad_ones(shards):
    _, paths = shards
    stream = TarVideoStream(paths, frames=3, height=8, width=8, fps=4)
    with pytest.warns(UserWarning, match="skipping sample"):
        samples = list(stream)
    assert {s["caption"] for s in samples} == GOOD and len(samples) == len(GOOD)
    assert stream.num_skipped == 2 and sum(s["skipped"] for s in samples) == 2
    video = samples[0]["video"]
    assert video.shape == (3, 3, 8, 8)
    assert ((video.mean(dim=(0, 2, 3)) + 1) * 127.5).tolist() == pytest.approx([0, 40, 80], abs=10)


@pytest.mark.parametrize("world", [2, 5])  # 3 shards: split by shard (2 ranks) or by sample (5 ranks)
def test_ranks_see_disjoint_parts_covering_everything(shards, world):
    _, paths = shards
    parts = [captions(TarVideoStream(paths, 2, 8, 8, 4, rank=r, world_size=world)) for r in range(world)]
    seen = [c for part in parts for c in part]
    assert sorted(seen) == sorted(GOOD)  # each good sample exactly once over all ranks


def test_dataloader_workers_split_the_stream(shards):
    _, paths = shards
    loader = torch.utils.data.DataLoader(TarVideoStream(paths, 2, 8, 8, 4), batch_size=None, num_workers=2)
    assert sorted(captions(loader)) == sorted(GOOD)


def test_truncated_shard_keeps_what_it_read_and_is_counted(shards, tmp_path):
    _, paths = shards
    with tarfile.open(paths[2]) as tar:
        gif = tar.getmember("clips/s2b.gif")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(open(paths[2], "rb").read()[: gif.offset_data + gif.size // 2])  # ends inside s2b.gif
    stream = TarVideoStream([paths[0], str(cut)], 2, 8, 8, 4)
    assert captions(stream) == ["s0a", "s0b", "s2a"] and stream.num_bad_shards == 1


def test_shard_specs_and_keys(shards):
    tmp, paths = shards
    assert expand_shards(str(tmp)) == paths
    assert expand_shards(str(tmp / "shard-{000..002}.tar")) == paths
    assert expand_shards(str(tmp / "shard-*.tar")) == paths
    assert split_key("dir/a.b.MP4") == ("dir/a", "b.mp4")
    with pytest.raises(UserError):
        TarVideoStream(str(tmp / "none-*.tar"))
