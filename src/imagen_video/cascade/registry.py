"""Packaged cascades, selectable by name (`--cascade tiny`), resolved before paths.

A packaged cascade is a cascade folder (cascade.yaml + one safetensors per stage) at
`imagen_video/pretrained/<name>/`. `DEFAULT_NAME` is what `Cascade.default()` and a bare
`imagen-video generate` use.
"""

from __future__ import annotations

from pathlib import Path

from imagen_video.errors import UserError

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
DEFAULT_NAME = "tiny-distilled"  # issue 9: the distilled cascade, once it met item 4
# names the project ships (or will ship): the trained tiny cascade and its distilled version
PLANNED = {
    "tiny": "the trained tiny cascade (MiniLM text encoder, trained on ShapesDataset)",
    "tiny-distilled": "the tiny cascade distilled to <= 8 sampling steps per stage, one U-Net call each",
}
NOT_SHIPPED_HINT = (
    "until it ships, try the pipeline with random weights: --cascade configs/tiny.yaml "
    "(from the repository root), or pass a cascade folder you trained"
)


def packaged_cascades() -> dict[str, Path]:
    """name -> folder of every cascade shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return {}
    return {d.name: d for d in sorted(PRETRAINED_DIR.iterdir()) if (d / "cascade.yaml").is_file()}


def resolve_cascade(spec: str | Path) -> Path:
    """A packaged name, a cascade folder or a cascade YAML file -> its path (names win over paths)."""
    shipped = packaged_cascades()
    if str(spec) in shipped:
        return shipped[str(spec)]
    path = Path(spec).expanduser()
    if str(spec) in PLANNED and not path.exists():
        raise UserError(
            f"the packaged cascade {str(spec)!r} ({PLANNED[str(spec)]}) has not shipped yet; "
            + NOT_SHIPPED_HINT
        )
    if path.is_dir() or path.is_file():
        return path
    names = ", ".join(shipped) or "none shipped yet"
    raise UserError(
        f"no cascade {str(spec)!r}: not a packaged name ({names}), a cascade folder or a YAML config file"
    )


def default_cascade_path() -> Path:
    """The folder of the default packaged cascade, or a UserError saying it has not shipped yet."""
    return resolve_cascade(DEFAULT_NAME)
