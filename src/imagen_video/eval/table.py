"""The paper-style results table (Table 1): one row per (method, guidance), as markdown and as JSON.

A row is data (`EvalRow`); metrics that were not measured (no --clip, prompts the judge cannot read, the
ground-truth row's time) are None and print as "–". Methods are free labels, so the distillation rows
("original", "SR-only distilled", "fully distilled") are just more rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from imagen_video.atomic import atomic_write

# (field, markdown header, decimals)
COLUMNS = (
    ("method", "method", None),
    ("guidance", "guidance", None),
    ("steps", "steps", None),
    ("clip_score", "CLIP score", 2),
    ("clip_r_precision", "CLIP R-precision", 2),
    ("judge_colour", "judge colour %", 1),
    ("judge_shape", "judge shape %", 1),
    ("judge_motion", "judge motion %", 1),
    ("judge_r_precision", "judge R-precision", 2),
    ("seconds_per_video", "s / video", 3),
)


@dataclass(frozen=True)
class EvalRow:
    """One line of the table: what was generated (method, guidance, steps) and how it scored."""

    method: str
    guidance: str
    steps: str
    num_videos: int
    clip_score: float | None = None
    clip_r_precision: float | None = None
    judge_colour: float | None = None
    judge_shape: float | None = None
    judge_motion: float | None = None
    judge_r_precision: float | None = None
    seconds_per_video: float | None = None
    judged: tuple[dict, ...] | None = None  # per video: prompt and judge verdicts (JSON only, not a column)
    judge_motion_by_class: dict[str, tuple[int, int]] | None = None  # (right, judged) per prompted motion


def _cell(value, decimals: int | None) -> str:
    """A markdown cell: text as is, numbers rounded, missing or NaN as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{decimals}f}" if decimals is not None else str(value).replace("|", "\\|")


def motion_table(rows: list[EvalRow]) -> list[str]:
    """Lines of a markdown table of judge motion per prompted motion ("right/judged"), one line per row that
    has it; no lines when none has."""
    rows = [r for r in rows if r.judge_motion_by_class]
    if not rows:
        return []
    motions = list(dict.fromkeys(m for r in rows for m in r.judge_motion_by_class))
    lines = [
        "| method | guidance | " + " | ".join(motions) + " |",
        "|" + "|".join(["---"] * (len(motions) + 2)) + "|",
    ]
    for r in rows:
        counts = r.judge_motion_by_class
        cells = [f"{counts[m][0]}/{counts[m][1]}" if m in counts else "–" for m in motions]
        lines.append(f"| {_cell(r.method, None)} | {_cell(r.guidance, None)} | " + " | ".join(cells) + " |")
    return ["", "judge motion by prompted motion (right/judged):", "", *lines]


def markdown_table(rows: list[EvalRow], notes: list[str] = ()) -> str:
    """Rows -> a GitHub markdown table with the paper's columns, then one line per note, then the judge's
    motion per prompted motion (motion_table) when the rows have it."""
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_cell(getattr(r, f), d) for f, _, d in COLUMNS) + " |" for r in rows]
    notes = [""] + [f"- {n}" for n in notes] if notes else []
    return "\n".join([header, rule, *body, *notes, *motion_table(rows)]) + "\n"


def _json_number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def results_json(rows: list[EvalRow], settings: dict, notes: list[str] = ()) -> dict:
    """Rows and the run's settings as one JSON-ready mapping (NaN written as null)."""
    return {
        "settings": settings,
        "rows": [{k: _json_number(v) for k, v in dataclasses.asdict(r).items()} for r in rows],
        "notes": list(notes),
        "markdown": markdown_table(rows, notes),
    }


def write_json(path: str | Path, data: dict) -> None:
    """Write `data` as indented JSON atomically (temp file in the same folder, then rename)."""
    text = json.dumps(data, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))
