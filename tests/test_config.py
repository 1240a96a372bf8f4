from dataclasses import dataclass, field

import pytest

from imagen_video.config import dataclass_from_dict, dataclass_to_dict, load_dataclass
from imagen_video.errors import UserError


@dataclass(frozen=True)
class Inner:
    rate: float = 1.0
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_round_trip_and_coercion():
    cfg = dataclass_from_dict(Outer, {"name": "a", "inner": {"rate": 2, "sizes": [3, 4, 5]}, "maybe": 7})
    assert cfg == Outer("a", Inner(2.0, (3, 4, 5)), 7)
    assert isinstance(cfg.inner.rate, float)
    assert dataclass_from_dict(Outer, dataclass_to_dict(cfg)) == cfg


def test_unknown_key_is_named():
    with pytest.raises(UserError, match=r"'lr'.*Inner"):
        dataclass_from_dict(Outer, {"inner": {"lr": 1}}, "run.yaml")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dataclass(Outer, tmp_path / "nope.yaml")
