"""Prompt sets for `imagen-video eval`, each prompt with the attributes the judge checks (or None).

Sources (--prompts):
- shapes:heldout | shapes:train | shapes:all: ShapesDataset captions of a split.
- builtin:NAME: an annotated file shipped in imagen_video/eval/prompts/; builtin:paraphrases holds 50
  hand-written one-object prompts in words and sentences the caption templates never use.
- FILE.jsonl: annotated prompts, one JSON object per non-blank line:
  {"prompt": "a scarlet disc drifting to the left", "color": "red", "shape": "circle", "motion": "left"}
  color / shape / motion from data.vocab COLORS / SHAPES / MOTIONS; motion may be left out or "none" (not
  judged); "color2" and "shape2" (both or neither, "none" = absent) make a two-object prompt. Other keys are
  rejected.
- any other FILE: plain text, one prompt per non-blank line, attributes from parse_caption where it parses.
"""

from __future__ import annotations

import json
from pathlib import Path

from imagen_video.data.captions import parse_caption
from imagen_video.data.vocab import COLORS, MOTIONS, NONE, SHAPES
from imagen_video.errors import UserError

SHAPES_PREFIX = "shapes:"
SHAPES_SPLITS = ("heldout", "train", "all")
DEFAULT_SHAPES_NUM = 100
BUILTIN_PREFIX = "builtin:"
BUILTIN_DIR = Path(__file__).resolve().parent / "prompts"
ANNOTATED_SUFFIX = ".jsonl"
REQUIRED_KEYS = ("prompt", "color", "shape")
OPTIONAL_KEYS = ("motion", "color2", "shape2")
_CHOICES = {"color": tuple(COLORS), "shape": SHAPES, "motion": (*MOTIONS, NONE)}
_CHOICES.update(color2=(*COLORS, NONE), shape2=(*SHAPES, NONE))

Prompts = tuple[list[str], list[dict | None]]


def load_prompts(source: str, num: int | None, seed: int) -> Prompts:
    """--prompts -> (prompts, attributes): the source's first `num` prompts, attributes None where unknown."""
    if num is not None and num < 1:
        raise UserError(f"--num must be >= 1, got {num}")
    if source.startswith(SHAPES_PREFIX):
        prompts = _shapes_split(source, num or DEFAULT_SHAPES_NUM, seed)
        return prompts, caption_attributes(prompts)
    path = _builtin_path(source) if source.startswith(BUILTIN_PREFIX) else Path(source).expanduser()
    prompts, attributes = read_prompt_file(path, source)
    return prompts[:num], attributes[:num]


def _shapes_split(source: str, num: int, seed: int) -> list[str]:
    """ShapesDataset captions of the split named by 'shapes:SPLIT'."""
    split = source[len(SHAPES_PREFIX) :]
    if split not in SHAPES_SPLITS:
        raise UserError(
            f"--prompts {source!r}: unknown split; use one of shapes:{', shapes:'.join(SHAPES_SPLITS)}"
        )
    from imagen_video.data.shapes import shapes_prompts

    return shapes_prompts(split, num, seed)


def builtin_names() -> list[str]:
    """Names of the prompt files shipped with the package (builtin:NAME)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob(f"*{ANNOTATED_SUFFIX}"))


def _builtin_path(source: str) -> Path:
    """Path of the packaged prompt file named by 'builtin:NAME'."""
    name = source[len(BUILTIN_PREFIX) :]
    if name not in builtin_names():
        choices = ", ".join(BUILTIN_PREFIX + n for n in builtin_names())
        raise UserError(f"--prompts {source!r}: no such packaged prompt set; use one of {choices}")
    return BUILTIN_DIR / f"{name}{ANNOTATED_SUFFIX}"


def read_prompt_file(path: Path, source: str | None = None) -> Prompts:
    """Prompts and attributes of an annotated .jsonl file or a plain text file (one prompt per line)."""
    source = str(path) if source is None else source
    if not path.is_file():
        raise UserError(
            f"--prompts {source!r}: no such file; give a text file (one prompt per line), an annotated "
            f"{ANNOTATED_SUFFIX} file, builtin:paraphrases or shapes:heldout"
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--prompts {source!r}: cannot read it as UTF-8 text ({err})") from None
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise UserError(f"--prompts {source!r}: the file has no prompts (one prompt per non-blank line)")
    if path.suffix != ANNOTATED_SUFFIX:
        prompts = [line for _, line in numbered]
        return prompts, caption_attributes(prompts)
    pairs = [parse_annotation(line, f"{path}, line {n}") for n, line in numbered]
    return [p for p, _ in pairs], [a for _, a in pairs]


def caption_attributes(prompts: list[str]) -> list[dict | None]:
    """parse_caption of each prompt: ShapesDataset attributes, or None where no colour or shape is named."""
    return [parse_caption(p) for p in prompts]


def parse_annotation(line: str, where: str) -> tuple[str, dict]:
    """One annotated line -> (prompt, judge attributes); a UserError at `where` (file, line) if invalid."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise UserError(f'{where}: expected a JSON object like {{"prompt": ..., "color": ...}}')
    unknown = sorted(set(record) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {allowed}")
    for key in REQUIRED_KEYS:
        if key not in record:
            raise UserError(f"{where}: missing key {key!r}")
    if not isinstance(record["prompt"], str) or not record["prompt"].strip():
        raise UserError(f"{where}: 'prompt' must be a non-empty string, got {record['prompt']!r}")
    for key in (k for k in _CHOICES if k in record):
        _check_choice(record, key, where)
    return record["prompt"].strip(), _attributes(record, where)


def _check_choice(record: dict, key: str, where: str) -> None:
    """UserError unless record[key] is one of the vocabulary's values for that key."""
    if record[key] not in _CHOICES[key]:
        raise UserError(f"{where}: unknown {key} {record[key]!r}; use one of {', '.join(_CHOICES[key])}")


def _attributes(record: dict, where: str) -> dict:
    """The judge's attribute dict (parse_caption's keys) of a validated annotated record."""
    second = [record.get(k, NONE) for k in ("color2", "shape2")]
    if (second[0] == NONE) != (second[1] == NONE):
        raise UserError(f"{where}: give both 'color2' and 'shape2' for a two-object prompt, or neither")
    if second[0] == record["color"]:
        raise UserError(f"{where}: 'color2' must differ from 'color' (the judge tells objects apart by it)")
    return {
        "color": record["color"],
        "shape": record["shape"],
        "motion": record.get("motion", NONE),
        "count": 1 if second[0] == NONE else 2,
        "color2": second[0],
        "shape2": second[1],
    }
