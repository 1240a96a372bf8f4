"""VideoTextFolder: videos (.mp4/.gif/.webm) with same-named .txt captions; bad files skipped and counted."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from imagen_video.data.decode import decode_clip
from imagen_video.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".gif", ".webm")


class VideoTextFolder(torch.utils.data.Dataset):
    """ds[i] -> dict(video float [C, T, H, W] in [-1, 1], caption, image=False, skipped); recursive listing.

    NAME.mp4 pairs with NAME.txt (UTF-8, stripped); videos without a caption are left out when listing
    (counted in num_missing_captions). A file that fails to read or decode is warned about once, added to
    `skipped_paths`, counted in `num_skipped`, and the next good file is returned instead, so an epoch never
    crashes on a bad file; `skipped` in the sample is how many files were skipped to reach it (sum it over a
    batch to count skips made inside DataLoader workers, whose counters are their own copies).
    Videos shorter than the clip hold their last frame (counted in num_padded).
    """

    def __init__(
        self, root: str | Path, frames: int = 16, height: int = 32, width: int = 32, fps: float = 8.0
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(
                f"video folder {self.root} does not exist; give a folder of NAME.mp4 + NAME.txt pairs"
            )
        self.frames, self.height, self.width, self.fps = frames, height, width, float(fps)
        videos = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        self.items = [(p, p.with_suffix(".txt")) for p in videos if p.with_suffix(".txt").is_file()]
        self.num_missing_captions = len(videos) - len(self.items)
        if self.num_missing_captions:
            warnings.warn(
                f"{self.num_missing_captions} video(s) under {self.root} have no same-named .txt caption; "
                "left out",
                stacklevel=2,
            )
        if not self.items:
            raise UserError(
                f"no captioned videos under {self.root}; expected NAME.mp4/.gif/.webm next to NAME.txt"
            )
        self.skipped_paths: set[Path] = set()
        self.num_skipped = 0
        self.num_padded = 0

    def __len__(self) -> int:
        return len(self.items)

    def _skip(self, path: Path, error: Exception) -> None:
        """Count and warn about a bad file once."""
        self.skipped_paths.add(path)
        self.num_skipped += 1
        warnings.warn(f"skipping unreadable video {path}: {type(error).__name__}: {error}", stacklevel=3)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} out of range for a folder of {len(self.items)} videos")
        skipped = 0
        for offset in range(len(self.items)):
            path, caption_path = self.items[(index + offset) % len(self.items)]
            if path in self.skipped_paths:
                skipped += 1
                continue
            try:
                caption = caption_path.read_text(encoding="utf-8").strip()
                video, padded = decode_clip(str(path), self.frames, self.height, self.width, self.fps)
            except Exception as error:  # any failure reading this file: skip it, never crash the epoch
                self._skip(path, error)
                skipped += 1
                continue
            self.num_padded += int(padded)
            return {"video": video, "caption": caption, "image": False, "skipped": skipped}
        raise UserError(f"none of the {len(self.items)} videos under {self.root} could be decoded")
