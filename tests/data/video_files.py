"""Write small test videos with PyAV and webdataset-style tar shards."""

from __future__ import annotations

import io
import tarfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODECS = {".mp4": ("libx264", "yuv420p"), ".webm": ("libvpx", "yuv420p"), ".gif": ("gif", "rgb8")}


def ramp_video(frames: int, height: int = 16, width: int = 16, step: int = 20) -> np.ndarray:
    """uint8 [T, H, W, 3] whose frame k is the flat grey level k * step (the frame index is readable back)."""
    video = np.zeros((frames, height, width, 3), dtype=np.uint8)
    video[:] = (np.arange(frames) * step).astype(np.uint8)[:, None, None, None]
    return video


def write_video(path: str | Path, video: np.ndarray, fps: float) -> None:
    """Encode uint8 [T, H, W, 3] to .mp4 (H.264), .webm (VP8) or .gif with PyAV."""
    codec, pix_fmt = CODECS[Path(path).suffix]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width, stream.pix_fmt = video.shape[1], video.shape[2], pix_fmt
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def video_bytes(video: np.ndarray, fps: float, suffix: str = ".mp4", tmp: Path | None = None) -> bytes:
    """The encoded file's bytes (written through a temporary file in `tmp`)."""
    path = Path(tmp) / f"_encode{suffix}"
    write_video(path, video, fps)
    return path.read_bytes()


def write_shard(path: str | Path, members: list[tuple[str, bytes]]) -> None:
    """A tar with the given (member name, bytes) in order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
