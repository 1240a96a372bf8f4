"""Distillation (SPEC §7): guided (Meng et al.) then progressive (Salimans & Ho) students of a cascade stage.

The math is pure (targets, losses over `(z, t) -> v` callables); `imagen-video distill guided|progressive`
(distill/cli.py, distill/run.py) runs it on the training loop and writes cascade folders.
"""

from imagen_video.distill.guided import guided_loss
from imagen_video.distill.progressive import halving_schedule, progressive_loss, teacher_two_steps
from imagen_video.distill.targets import ddim_step, progressive_times, progressive_x_target

__all__ = [
    "ddim_step",
    "guided_loss",
    "halving_schedule",
    "progressive_loss",
    "progressive_times",
    "progressive_x_target",
    "teacher_two_steps",
]
