"""Training data: procedural ShapesDataset, video folders, tar shard streams, per-stage views (issue 6)."""

from imagen_video.data.folder import VideoTextFolder
from imagen_video.data.shapes import (
    COLORS,
    HELDOUT_TRIPLES,
    MOTIONS,
    SHAPES,
    ShapesDataset,
    caption,
    parse_caption,
    render,
    shapes_prompts,
)
from imagen_video.data.tar_stream import TarVideoStream
from imagen_video.data.views import resize_video, stage_condition, stage_view

__all__ = [
    "COLORS",
    "HELDOUT_TRIPLES",
    "MOTIONS",
    "SHAPES",
    "ShapesDataset",
    "TarVideoStream",
    "VideoTextFolder",
    "caption",
    "parse_caption",
    "render",
    "resize_video",
    "shapes_prompts",
    "stage_condition",
    "stage_view",
]
