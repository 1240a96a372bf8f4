"""Read and write videos: uint8 [T, H, W, C] <-> .mp4 (H.264) and .gif."""

from imagen_video.io.video import check_video_path, read_video, write_video

__all__ = ["check_video_path", "read_video", "write_video"]
