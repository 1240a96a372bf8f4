"""Video U-Nets: the space-time factorized VideoUNet, its config, and the paper / tiny presets."""

from imagen_video.models import presets
from imagen_video.models.unet import UNetConfig, VideoUNet

__all__ = ["UNetConfig", "VideoUNet", "presets"]
