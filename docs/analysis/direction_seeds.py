"""Several seeds of direction_toy.py's variants side by side, then when each left the left / right plateau.

One direction_toy.py process per (variant, seed), all at once (on a GPU they share it; each uses 2 CPU
threads), each logging to LOGS/<variant>_s<seed>.txt; then a table: per run, the first step whose left / right
share is >= 0.3 ("exit", or "-" if none) and the last share. One run per variant cannot tell a variant that
never leaves the plateau from one that leaves it late; several seeds can.

    python docs/analysis/direction_seeds.py STEPS BATCH SEEDS LOGS VARIANT [VARIANT ...]
    e.g. python docs/analysis/direction_seeds.py 1800 32 2 logs frames_hash frames_words frames_layer0 frames
"""

import re
import subprocess
import sys
from pathlib import Path

EXIT_SHARE = 0.3
LINE = re.compile(r"step (\d+): .*(?:left vs right|growing vs shrinking) (-?[\d.]+)")


def plateau_exit(log: str) -> tuple[int | None, float | None]:
    """(first step with left / right share >= EXIT_SHARE or None, the last share logged or None)."""
    shares = [(int(m[1]), float(m[2])) for m in LINE.finditer(log)]
    first = next((step for step, share in shares if share >= EXIT_SHARE), None)
    return first, (shares[-1][1] if shares else None)


def main(steps: int, batch: int, seeds: int, logs: Path, variants: list[str]) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    toy = Path(__file__).with_name("direction_toy.py")
    runs = [(v, s) for v in variants for s in range(seeds)]
    outs = [open(logs / f"{variant}_s{seed}.txt", "w") for variant, seed in runs]
    procs = [
        subprocess.Popen([sys.executable, str(toy), str(steps), v, str(batch), str(s)], stdout=o, stderr=o)
        for (v, s), o in zip(runs, outs, strict=True)
    ]
    failed = [run for run, p in zip(runs, procs, strict=True) if p.wait() != 0]
    for out in outs:
        out.close()
    print(f"| variant | seed | exit (share >= {EXIT_SHARE}) | last share |\n|---|---|---|---|")
    for variant, seed in runs:
        first, last = plateau_exit((logs / f"{variant}_s{seed}.txt").read_text())
        print(f"| {variant} | {seed} | {first or '-'} | {'-' if last is None else f'{last:.3f}'} |")
    if failed:
        sys.exit(f"runs that failed (see their logs): {failed}")


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:])
