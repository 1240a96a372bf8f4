"""Training metrics: one CSV row per step (always) and TensorBoard scalars (when tensorboard is installed)."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("step", "loss", "lr", "grad_norm", "seconds")


class MetricsLogger:
    """Append to `out_dir/metrics.csv`; on resume, rows after the resumed step (a killed run's tail) go."""

    def __init__(self, out_dir: str | Path, start_step: int, tensorboard: bool = True):
        self.path = Path(out_dir) / "metrics.csv"
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.file = open(self.path, "a", newline="")  # noqa: SIM115 - kept open for the run
        self.writer = csv.DictWriter(self.file, fieldnames=COLUMNS)
        self.tb = _summary_writer(Path(out_dir) / "tensorboard") if tensorboard else None

    def log(self, step: int, **values: float) -> None:
        """One CSV row (flushed, so a killed run keeps its rows) and one TensorBoard scalar per value."""
        self.writer.writerow({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})
        self.file.flush()
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(f"train/{name}", value, step)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def _summary_writer(folder: Path):
    """A TensorBoard SummaryWriter, or None when tensorboard is not installed (lazy import: it is slow)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """metrics.csv -> rows of floats (step as int)."""
    with open(path, newline="") as f:
        return [
            {k: (int(v) if k == "step" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)
        ]
