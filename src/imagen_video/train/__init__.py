"""Training any stage of a cascade (issue 6): `train(load_train_config(path))`, `export_stage(...)`; CLI
`imagen-video train CONFIG.yaml` or `torchrun --nproc_per_node N -m imagen_video.train CONFIG.yaml`."""

from imagen_video.train.config import TrainConfig, build_stage, load_train_config
from imagen_video.train.export import export_stage
from imagen_video.train.loop import LoopResult, TrainingDiverged, run_loop
from imagen_video.train.run import train

__all__ = [
    "LoopResult",
    "TrainConfig",
    "TrainingDiverged",
    "build_stage",
    "export_stage",
    "load_train_config",
    "run_loop",
    "train",
]
