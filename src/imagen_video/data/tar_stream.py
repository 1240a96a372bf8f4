"""TarVideoStream: webdataset-format tar shards streamed as an IterableDataset, split over ranks and workers.

A shard is a tar whose members KEY.EXT are grouped by KEY (the member path up to the first dot of its file
name, as webdataset does); a sample needs one video member (mp4/gif/webm) and a txt caption. Read with the
standard library's tarfile, one pass per shard, nothing extracted to disk.
"""

from __future__ import annotations

import glob
import io
import re
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from imagen_video.data.decode import decode_clip
from imagen_video.errors import UserError

VIDEO_EXTENSIONS = ("mp4", "gif", "webm")


def expand_shards(shards: str | Path | list | tuple) -> list[str]:
    """Shard paths from a list, a directory (its *.tar, sorted), a glob or a brace range "s{000..099}.tar"."""
    if isinstance(shards, (list, tuple)):
        return [str(s) for s in shards]
    spec = str(shards)
    if Path(spec).is_dir():
        return sorted(str(p) for p in Path(spec).glob("*.tar"))
    match = re.search(r"\{(\d+)\.\.(\d+)\}", spec)
    if match:
        first, last = match.groups()
        return [
            spec[: match.start()] + str(i).zfill(len(first)) + spec[match.end() :]
            for i in range(int(first), int(last) + 1)
        ]
    return sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]


def split_key(name: str) -> tuple[str, str]:
    """webdataset key and extension of a member: "dir/a.b.mp4" -> ("dir/a", "b.mp4")."""
    directory, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{directory}/{stem}" if directory else stem), extension.lower()


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's DDP rank and world size: given, else torch.distributed's, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class TarVideoStream(torch.utils.data.IterableDataset):
    """Samples dict(video float [C, T, H, W] in [-1, 1], caption, image=False, key, skipped) from tar shards.

    Work is split over (rank, dataloader worker) pairs: with at least as many shards as pairs, pair p reads
    shards p, p + P, ...; with fewer, every pair reads every shard and keeps samples p, p + P, ... (so no rank
    is ever left without data). shuffle=True permutes the shard order per epoch (set_epoch), seeded by seed.
    Bad samples (missing video or caption, undecodable video) and unreadable shards are skipped with a
    warning, counted in num_skipped and num_bad_shards (per process; `skipped` in each sample counts skips
    since the previous sample, so summing it over batches also counts skips made in workers).
    """

    def __init__(
        self,
        shards: str | Path | list | tuple,
        frames: int = 16,
        height: int = 32,
        width: int = 32,
        fps: float = 8.0,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.shards = expand_shards(shards)
        if not self.shards:
            raise UserError(
                f"no tar shards found for {shards!r}; give a directory, a glob or a list of .tar paths"
            )
        self.frames, self.height, self.width, self.fps = frames, height, width, float(fps)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.rank, self.world_size = rank, world_size
        self.num_skipped = 0
        self.num_bad_shards = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the shard order of `epoch` (with shuffle=True)."""
        self.epoch = epoch

    def _groups(self, shard: str) -> Iterator[tuple[str, dict[str, bytes]]]:
        """(key, {extension: bytes}) for consecutive members sharing a key; a broken shard ends, warned."""
        key, members = None, {}
        try:
            with tarfile.open(shard, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    member_key, extension = split_key(member.name)
                    if member_key != key and key is not None:
                        yield key, members
                        members = {}
                    key = member_key
                    members[extension] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as error:
            self.num_bad_shards += 1
            warnings.warn(f"skipping the rest of unreadable shard {shard}: {error}", stacklevel=2)
            return
        if key is not None:
            yield key, members

    def _sample(self, key: str, members: dict[str, bytes]) -> dict:
        """Decode one grouped sample; raises if it lacks a video or caption or does not decode."""
        video_ext = next((e for e in VIDEO_EXTENSIONS if e in members), None)
        if video_ext is None or "txt" not in members:
            raise ValueError(f"needs a video ({'/'.join(VIDEO_EXTENSIONS)}) and a txt, has {sorted(members)}")
        caption = members["txt"].decode("utf-8").strip()
        video, _ = decode_clip(io.BytesIO(members[video_ext]), self.frames, self.height, self.width, self.fps)
        return {"video": video, "caption": caption, "image": False, "key": key}

    def __iter__(self) -> Iterator[dict]:
        rank, world = _rank_and_world(self.rank, self.world_size)
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        part, parts = rank * workers + worker, world * workers
        shards = list(self.shards)
        if self.shuffle:
            order = torch.randperm(
                len(shards), generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            )
            shards = [shards[i] for i in order.tolist()]
        by_shard = len(shards) >= parts
        skipped, position = 0, 0
        for shard in shards[part::parts] if by_shard else shards:
            for key, members in self._groups(shard):
                position += 1
                if not by_shard and (position - 1) % parts != part:
                    continue
                try:
                    sample = self._sample(key, members)
                except Exception as error:  # any bad sample: skip it, never crash the stream
                    self.num_skipped += 1
                    skipped += 1
                    warnings.warn(
                        f"skipping sample {key!r} of {shard}: {type(error).__name__}: {error}", stacklevel=2
                    )
                    continue
                yield {**sample, "skipped": skipped}
                skipped = 0
