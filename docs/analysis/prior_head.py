"""Is the text prior held back by the text features or by its head? On cached `fit-prior --stats` statistics:

1. a linear probe from the masked-mean text to the first object's motion class (held-out tenth, texts not
   dropped): can the features the prior reads tell the motions apart at all?
2. a wider head than TextPriorMean's (two SiLU layers of 512) on the masked-mean text plus the noise level,
   feeding prior_ceiling.Bilinear (colour x pattern, rank 4): shares at log_snr -6 as in prior_ceiling.py.

    python docs/analysis/prior_head.py CASCADE STATS.pt

RESULT (session 20, this CPU, 65536 samples of tiny's base, runs/tiny-prior-fit64k.stats.pt; ~4 min): the
probe is right on 100.0 % of 5905 held-out texts, so the features carry the motion; the wide noise-aware
bilinear head reaches held-out loss -0.00110 and shares left/right / up/down / growing/shrinking 0.706 /
0.786 / 0.687 (TextPriorMean's one 128-wide layer, shipped: 0.51 / 0.83 / 0.48; the same on 64k samples 0.53
/ 0.53 / 0.81; prior_ceiling.py's oracle of the attributes with the noise level -0.00122, 0.75 / 0.72 /
1.03). The head is the limit: TextPriorMean wants width, the noise level and a colour x pattern term
(docs/analysis/logs/cpu_prior_head_64k.txt).

SESSION 21: TextPriorMean got those options and `fit-prior` fitted them (held-out loss -0.00119, shares 0.63
/ 0.60 / 0.88), but the redistilled cascade sampled worse motion (55.0 % at w=6 against the shipped 76.0 %;
README, "The shipped tiny cascade"): these statistics do not predict the sampled motion.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import prior_ceiling as pc  # noqa: E402

from imagen_video.cascade import Cascade  # noqa: E402
from imagen_video.diffusion import alpha_sigma_from_log_snr  # noqa: E402
from imagen_video.models.blocks import TextPriorMean, masked_text_mean  # noqa: E402
from imagen_video.train.prior_fit import HELD_OUT_EVERY, upsample_matrix  # noqa: E402

WIDTH = 512


def probe_accuracy(text_mean: torch.Tensor, labels: torch.Tensor) -> float:
    """Held-out accuracy of a linear softmax probe text_mean -> labels (Adam, 300 full-batch steps)."""
    held = torch.arange(len(labels)) % HELD_OUT_EVERY == 0
    probe = nn.Linear(text_mean.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(300):
        loss = nn.functional.cross_entropy(probe(text_mean[~held]), labels[~held])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((probe(text_mean[held]).argmax(1) == labels[held]).float().mean())


def main(cascade_name: str, stats_path: str) -> None:
    torch.manual_seed(0)
    stats = torch.load(stats_path)
    kept = ~stats["dropped"]
    accuracy = probe_accuracy(stats["text_mean"][kept], stats["attributes"][kept, 2])
    print(f"linear probe, masked-mean text -> motion class: held-out accuracy {100 * accuracy:.1f} %")
    cascade = Cascade.load(cascade_name)
    stage = cascade.stages[0]
    u = upsample_matrix(TextPriorMean.GRID, stage.shape)
    _, sigma = alpha_sigma_from_log_snr(torch.tensor(-6.0))
    diffs = [(a, b, (pc.data_mean(stage, *a) - pc.data_mean(stage, *b)).flatten(1)) for a, b in pc.PAIRS]
    width = stats["text_mean"].shape[1]
    features = nn.Sequential(nn.Linear(width + 2, WIDTH), nn.SiLU(), nn.Linear(WIDTH, WIDTH), nn.SiLU())
    net = pc.Bilinear(features, WIDTH, 3, u.shape[1])
    inputs = torch.cat([stats["text_mean"], pc.noise_features(stats["sigma2"])], 1)
    loss = pc.fit(net, inputs, stats, stage.shape, wd=0.1)
    extra = pc.noise_features(sigma[None] ** 2)

    def grid(attr) -> torch.Tensor:
        emb, mask = cascade.text_encoder.encode([f"a {attr[0]} circle{pc.WORDS[attr[1]]}"])
        mean = masked_text_mean(emb, mask)
        return net(torch.cat([mean, extra], 1)).reshape(3, -1)

    with torch.no_grad():
        cells = [
            f"{float(((sigma**2 * (grid(a) - grid(b)) @ u.T) * d).sum() / (d * d).sum()):.3f}"
            for a, b, d in diffs
        ]
    shares = " / ".join(cells)
    print(f"text + noise level, {WIDTH}x2 head, bilinear: held-out loss {loss:.5f}, shares {shares}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1], sys.argv[2])
