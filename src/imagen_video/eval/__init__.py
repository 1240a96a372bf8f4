"""Evaluation (paper §3, Table 1): CLIP score, CLIP R-precision, the synthetic-data judge, the table."""

from imagen_video.eval.clip import ClipScorer

__all__ = ["ClipScorer"]
