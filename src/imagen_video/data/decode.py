"""Decode a video (path or file object) with PyAV into a fixed-size training clip."""

from __future__ import annotations

from typing import BinaryIO

import av
import numpy as np
import torch
from einops import rearrange

from imagen_video.data.views import resize_cover


def decode_clip(
    source: str | BinaryIO, frames: int, height: int, width: int, fps: float
) -> tuple[torch.Tensor, bool]:
    """The first `frames` frames at `fps` -> (float [C, T, H, W] in [-1, 1], padded).

    Resampling by frame time: output frame k shows the last source frame starting at or before k / fps (times
    from the first frame), which is index-based skipping for constant-rate video and also right for gifs with
    uneven frame durations (the last frame lasts 1 / average rate). Frames are resized to cover height x width
    (aspect kept, antialiased bilinear) and centre-cropped. A video shorter than the clip holds its last
    frame (padded=True). Raises on unreadable data or a file without video frames (callers skip it).
    """
    picked: list[np.ndarray] = []
    with av.open(source) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or fps)
        start, last, last_time = None, None, 0.0
        for index, frame in enumerate(container.decode(stream)):
            t = frame.time if frame.time is not None else index / rate
            start = t if start is None else start
            while last is not None and len(picked) < frames and t - start > len(picked) / fps + 1e-6:
                picked.append(last)
            if len(picked) >= frames:
                break
            last, last_time = frame.to_ndarray(format="rgb24"), t - start
    if last is None:
        raise ValueError("no decodable video frames")
    while len(picked) < frames and len(picked) / fps < last_time + 1 / rate - 1e-6:  # the last frame's span
        picked.append(last)
    padded = len(picked) < frames
    picked.extend([last] * (frames - len(picked)))
    video = torch.from_numpy(np.stack(picked)).float() / 127.5 - 1.0  # [T, H, W, C]
    return resize_cover(rearrange(video, "t h w c -> c t h w"), height, width), padded
