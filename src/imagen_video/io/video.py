"""Video files at the edge: uint8 [T, H, W, C] arrays <-> .mp4 (H.264 via PyAV) and .gif (Pillow)."""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from imagen_video.atomic import atomic_write
from imagen_video.errors import UserError

SUFFIXES = (".mp4", ".gif")
GIF_COMMENT = "imagen-video frame_ms="


def check_video_path(path: str | Path) -> Path:
    """Validate an output path before any work: known suffix and an existing, writable folder."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path}: unknown video suffix {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"{path}: output folder {folder} does not exist; create it first")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name ending in {' or '.join(SUFFIXES)}")
    try:  # the only reliable writability test (permissions, read-only mounts, root in /proc) is to write
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise UserError(
            f"{path}: output folder {folder} is not writable ({err.strerror}); choose another path"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def _as_uint8_frames(video: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 [T, H, W, C] with C = 3 (a single channel is repeated to grey RGB)."""
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    video = np.asarray(video)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] not in (1, 3) or video.shape[0] < 1:
        raise UserError(
            f"write_video expects uint8 [T, H, W, C] with C in (1, 3) and T >= 1, "
            f"got {video.dtype} {tuple(video.shape)}"
        )
    if video.shape[-1] == 1:
        video = np.repeat(video, 3, axis=-1)
    return np.ascontiguousarray(video)


def _fps_fraction(fps: float) -> Fraction:
    """A frame rate as an exact fraction (24 -> 24/1, 7.5 -> 15/2, 23.976 -> 2997/125)."""
    if not (isinstance(fps, (int, float, Fraction)) and math.isfinite(fps) and fps > 0):
        raise UserError(f"fps must be a positive number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """H.264 yuv420p needs even sizes: replicate the last row / column where a size is odd."""
    t, h, w, c = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    warnings.warn(
        f"H.264 (yuv420p) needs even sizes: padding {h}x{w} to {h + h % 2}x{w + w % 2} by edge replication",
        stacklevel=3,
    )
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(path: Path, frames: np.ndarray, fps: Fraction) -> None:
    """H.264 (libx264, yuv420p, crf 18) in an mp4 container, one packet stream, exact frame rate."""
    frames = _pad_to_even(frames)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "18"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_gif(path: Path, frames: np.ndarray, fps: Fraction) -> None:
    """Animated GIF, looping; GIF stores 10 ms units, so the frame duration is round(100 / fps) * 10 ms.
    Pillow merges identical neighbouring frames; a comment records the frame duration to undo that."""
    duration_ms = max(1, round(100 / fps)) * 10
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=0,
        comment=f"{GIF_COMMENT}{duration_ms}",
    )


def write_video(path: str | Path, video: np.ndarray | torch.Tensor, fps: float) -> Path:
    """Write uint8 [T, H, W, C] to .mp4 / .gif by suffix, atomically (temp file in the folder, rename)."""
    path = check_video_path(path)
    frames = _as_uint8_frames(video)
    rate = _fps_fraction(fps)
    writer = _write_mp4 if path.suffix.lower() == ".mp4" else _write_gif
    try:
        atomic_write(path, lambda tmp: writer(tmp, frames, rate))
    except (OSError, av.FFmpegError) as err:
        raise UserError(f"{path}: cannot write the video ({err}); choose another path") from None
    return path


def _read_gif(path: Path) -> tuple[np.ndarray, float]:
    """GIF frames as RGB; frames merged by the encoder (identical neighbours) are repeated back, using the
    frame duration recorded by write_video (else the shortest frame duration)."""
    with Image.open(path) as im:
        comment = im.info.get("comment", b"").decode("utf-8", "replace")
        frames, durations = [], []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            frames.append(np.asarray(im.convert("RGB")))
            durations.append(int(im.info.get("duration", 0)) or 100)
    recorded = comment.removeprefix(GIF_COMMENT)
    base = int(recorded) if comment.startswith(GIF_COMMENT) and recorded.isdigit() else min(durations)
    repeats = [max(1, round(d / base)) for d in durations]
    video = np.stack([f for f, r in zip(frames, repeats, strict=True) for _ in range(r)])
    return video, 1000.0 / base


def _read_av(path: Path) -> tuple[np.ndarray, float]:
    """Every decoded frame of the first video stream as RGB, and its average frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    if not frames:
        raise UserError(f"{path}: no video frames in this file")
    return np.stack(frames), float(rate)


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """Read a video file -> (uint8 [T, H, W, C] RGB, fps); .gif via Pillow, anything else via PyAV."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video file not found: {path}")
    try:
        return _read_gif(path) if path.suffix.lower() == ".gif" else _read_av(path)
    except (OSError, av.FFmpegError, IndexError, ValueError) as err:
        if isinstance(err, UserError):
            raise
        raise UserError(f"{path}: cannot read as a video ({err})") from None
