"""Evaluation (paper §3, Table 1): CLIP score, CLIP R-precision, the synthetic-data judge, the table."""

from imagen_video.eval.clip import ClipScorer
from imagen_video.eval.judge import judge_r_precision, judge_video, judge_videos
from imagen_video.eval.table import EvalRow, markdown_table

__all__ = ["ClipScorer", "EvalRow", "judge_r_precision", "judge_video", "judge_videos", "markdown_table"]
