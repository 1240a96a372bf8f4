"""guided.guidance_fidelity against analytic answers, and the report `distill guided` writes after a run.

Linear toy denoisers v(z, c) = A z and v(z) = B z make every quantity closed-form: a student
v_s(z, w) = A z + f w (A - B) z reproduces the share f of the guidance direction v_w - v(z, c) = w (A - B) z.
"""

import json

import pytest
import torch

from imagen_video.cascade import Cascade
from imagen_video.cli import main
from imagen_video.distill.config import DistillConfig, load_config
from imagen_video.distill.guided import guidance_fidelity
from imagen_video.distill.run import fidelity_weights, guided_task
from imagen_video.train import distributed

from .test_cli import teacher_dir, write_config  # noqa: F401  (teacher_dir is a fixture)

g = torch.Generator().manual_seed(0)
A, B = (
    torch.randn(6, 6, generator=g, dtype=torch.float64),
    torch.randn(6, 6, generator=g, dtype=torch.float64),
)
Z, T = torch.randn(32, 6, generator=g, dtype=torch.float64), torch.rand(32, generator=g, dtype=torch.float64)


def cond(z, t):
    return z @ A.T


def uncond(z, t):
    return z @ B.T


def student_with_share(f, w0=0.0):
    """v_s(z, w) = v(z, c) + (f w + w0) (v(z, c) - v(z)): share f of w, plus w0 applied at every w."""
    return lambda z, t, w: cond(z, t) + (f * w[:, None] + w0) * (cond(z, t) - uncond(z, t))


@pytest.mark.parametrize("w", [0.5, 6.0, 15.0])
@pytest.mark.parametrize(
    "share, w0", [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.3, 0.0), (0.0, 3.5), (0.25, 2.0)]
)
def test_fidelity_of_linear_students_is_analytic(w, share, w0):
    error, captured, effective_w = guidance_fidelity(student_with_share(share, w0), cond, uncond, Z, T, w)
    v_w = (1 + w) * cond(Z, T) - w * uncond(Z, T)
    unit = cond(Z, T) - uncond(Z, T)
    assert captured == pytest.approx(share, abs=1e-12)
    assert effective_w == pytest.approx(share * w + w0, abs=1e-12)
    assert error == pytest.approx(((w - share * w - w0) * unit).norm().item() / v_w.norm().item(), rel=1e-12)


def test_fidelity_needs_a_positive_w():
    with pytest.raises(ValueError, match="w > 0"):
        guidance_fidelity(student_with_share(1.0), cond, uncond, Z, T, 0.0)


def test_fidelity_weights_span_the_range():
    assert fidelity_weights(0.0, 15.0) == (3.75, 7.5, 15.0)
    assert fidelity_weights(2.0, 6.0) == (3.0, 4.0, 6.0)
    assert fidelity_weights(0.0, 0.0) == ()


def test_guided_run_reports_fidelity(teacher_dir, tmp_path, capsys):  # noqa: F811
    """The report after `distill guided`: a student 2 iterations from its zero-initialised guidance layer
    captures a small share; its error is about the conditional teacher's, ||v_w - v(c)|| / ||v_w||."""
    cfg = write_config(
        tmp_path / "g.yaml", teacher=str(teacher_dir), stage="base", out=str(tmp_path / "out"),
        run_dir=str(tmp_path / "run"), fidelity_examples=4,
    )  # fmt: skip
    assert main(["distill", "guided", cfg]) == 0
    report = json.loads((tmp_path / "run/guidance_fidelity.json").read_text())
    assert report["examples"] == 4 and list(report["w"]) == ["2", "4", "8"]
    for row in report["w"].values():
        assert abs(row["guidance_captured"]) < 0.5 and 0 < row["relative_error"] < 2
        assert abs(row["effective_w"]) < 8
    assert "guidance captured" in capsys.readouterr().out
    assert Cascade.load(tmp_path / "out").stage("base").unet.guidance_embedding


def test_a_fresh_student_captures_none_of_the_guidance(teacher_dir, tmp_path):  # noqa: F811
    """Before any iteration the student is the conditional teacher at every w: captured exactly 0 and the
    error is the gap between the conditional and the guided teacher, growing with w."""
    cfg = load_config(DistillConfig, write_config(
        tmp_path / "g.yaml", teacher=str(teacher_dir), stage="sr", out=str(tmp_path / "o"),
        run_dir=str(tmp_path / "r"),
    ))  # fmt: skip
    task = guided_task(cfg, distributed.setup())[1]
    table = task.fidelity(task.model, (1.0, 4.0, 8.0), 3)
    assert all(captured == 0.0 and effective_w == 0.0 for _, captured, effective_w in table.values())
    errors = [error for error, _, _ in table.values()]
    assert 0 < errors[0] < errors[1] < errors[2]
