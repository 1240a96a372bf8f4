"""Read and write videos: uint8 [T, H, W, C] <-> .mp4 (H.264) and .gif; library <-> edge conversions."""

from imagen_video.io.convert import from_uint8, to_uint8
from imagen_video.io.video import SUFFIXES, check_video_path, read_video, write_video

__all__ = ["SUFFIXES", "check_video_path", "from_uint8", "read_video", "to_uint8", "write_video"]
