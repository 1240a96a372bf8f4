"""Colour vs direction at high noise only: how fast does the base U-Net learn each conditional mean?

Four prompts, {red, blue} circle x {moving to the left, moving to the right}, 4 frames of 16x16 (as
growth_toy.py), v-loss at log_snr ~ U[-8, -4] only, where the ideal prediction is E[x | prompt], batch 16 (or
BATCH), AdamW 1e-3. Every EVERY steps: the share (motion_mean_share.pair_share, log_snr -6) of red vs blue
(both moving left) and of left vs right (both red). VARIANT `frames` is the U-Net with rotary frame positions
and the frame embedding; `ramp` also gives it the frame index as an input channel, f / (T - 1) - 1/2 at every
pixel of frame f; `coords` gives it that and the pixel's row and column the same way (CoordConv in x, y, t);
`prod` also the products frame x row and frame x column (x 4), the shape of E[x | left] - E[x | right]; a
suffix `_init` (`frames_init`, `coords_init`) starts the frame embedding's output layer at PyTorch's default
init instead of zero, `_nozero` every zero-initialised layer (residual outputs, output conv); `_hash` replaces
MiniLM by the tests' hash encoder (each word an independent random vector), `_white` whitens MiniLM's token
states (covariance of 1500 training captions' tokens), `_layer0` gives MiniLM's input embeddings (hidden state
0) beside its last layer (768 wide, as text encoder "minilm+input"), `_words` appends the hash encoder's word
vectors to MiniLM's tokens (one sequence, 384 wide), `_growth` uses growing / shrinking in place of left /
right. SEED seeds the U-Net's initialisation and the data. Runs on cuda when there is one.

    python docs/analysis/direction_toy.py [STEPS] [VARIANT] [BATCH] [SEED]      # default 300 frames 16 0

TOY_THREADS (default 2) sets torch's CPU threads, e.g. 1 for two runs side by side on a 2-core CPU.

Session 9, 2-core CPU (~1 s/step), one run each, seed 0. `frames`, 1600 steps: red vs blue 0.47, 0.64, 0.86,
0.73, 0.88, 0.95 at steps 150-400 and 0.72-1.14 after; left vs right within +-0.002 to step 550, at most 0.018
in size to step 1600 (1600: 0.001). Steps 50-400 of the variants: `ramp` colour 0.11 at 100, 0.59-0.84 from
150, direction |share| <= 0.002; `coords` colour 0.45-0.81 from 200, direction <= 0.001; `frames_init` colour
0.65-0.91 from 200, direction <= 0.002; `coords_init` colour 0.44-0.93 from 150, direction <= 0.001.
`frames_nozero` colour 0.35 at 100, 0.67-0.87 from 150, direction <= 0.005; `frames_hash` (left and right
independent random word vectors) colour 0.25-1.02 from 150, direction <= 0.007. Colour is learnt in ~200
steps, the direction not in 1600, whether or not the U-Net is handed the frame index and the pixel position,
starts without zero layers, or reads left and right as unrelated words. `frames_growth`, 1200 steps: growing
vs shrinking between -0.05 and 0.12 to step 750, then 0.21, 0.04, 0.59, 0.49, 0.90, 0.70, 0.48, 0.70, 1.005 at
steps 800-1200 (colour 0.70-0.93 from 450): a plateau, then the pattern is learnt; left / right had not left
its plateau at step 1600. `frames_growth` at batch 32 (`600 frames_growth 32`): -0.06 to 0.14 to step 550,
0.33 at 600 (batch 16 left the plateau at ~900 steps, 14 400 clips; batch 32 perhaps at ~600, 19 200 clips;
one run each).

Session 10, a lent H200, batch 32, four runs side by side for 285 s (~1900 steps each; logs in
logs/gpu_direction_toy_*_b32.txt): `frames` left vs right between -0.03 and 0.02 throughout; `frames_hash`
-0.05 to 0.11 to step 1400, then 0.23 at 1450 and 0.63-0.85 from 1500 to 1950; `frames_white` -0.07 to
0.07; `frames_growth` 0.34 at 600, 0.11 at 650, 0.51-1.15 from 700. The 400-step `frames_hash` run above was
too short: with the hash encoder (every word an independent random vector) the direction is learnt (at
~1450 steps here), with MiniLM's last layer (left / right 0.41 of red / blue apart) not by 1900, nor after
whitening (0.59).
`frames_layer0` (MiniLM's input embeddings beside its last layer; left / right 0.68 of red / blue apart),
this CPU, batch 32, 2000 steps (~85 min; logs/cpu_direction_toy_frames_layer0_b32.txt): colour 0.58-1.00
from step 200, left vs right -0.03 to 0.03 throughout: not the hash encoder's result (one run each, another
device and random stream).

Session 11, this CPU, `1700 frames_words 32` (MiniLM's tokens followed by the hash word vectors, ~50 min;
logs/cpu_direction_toy_frames_words_b32.txt): colour 0.50-1.02 from step 200, left vs right -0.033 to 0.041
throughout: no exit by 1700 either. Only the GPU `frames_hash` run has left the plateau; direction_seeds.py
runs several seeds per variant side by side to tell a late exit from none.

Session 12, this CPU, `1800 frames_hash 32 1` (seed 1, TOY_THREADS=1 beside another job, ~90 min;
logs/cpu_direction_toy_frames_hash_b32_s1.txt): colour 0.46 at step 200, 0.65-1.03 after; left vs right
-0.063 to 0.030 through step 1800: no exit. So the hash encoder's exit at ~1450 (GPU, seed 0) is not
reproduced by another seed on this CPU; one exit in the four word-feature runs past 1700 steps (hash seeds 0
and 1, words, layer0). (A seed-2 run beside it was stopped at step 550 to free the core.)

Session 13, this CPU, `1800 prod 32` (seed 0, TOY_THREADS=1 beside a TSR run; stopped at step 1050, ~65 min;
logs/cpu_direction_toy_prod_b32.txt): MiniLM's last layer as shipped, the input channels frame, row, column
and the products frame x row, frame x column. Colour 0.69 at step 200, 0.71-1.04 after; left vs right -0.005
to 0.030 to step 550, 0.063 at 600, then 0.435 at 650 and 0.65-0.91 at every check from 700 to 1050: the
first exit with MiniLM, and the earliest of any variant (the hash encoder's at ~1450). (`coords` beside it,
the same without the products, was stopped at step 50 to free the core: not measured past 400 steps.) One
run: the product channels hand the U-Net the shape of E[x | left] - E[x | right] at high noise, which it
otherwise has to build from the frame embedding, the text and the zero padding, and that is the step it does
not find.
"""

import os
import sys

import numpy as np
import torch
from growth_toy import BATCH, clips, v_step  # this folder: run as a script
from motion_mean_share import pair_share
from torch import nn

from imagen_video.data.shapes import shapes_prompts
from imagen_video.models import VideoUNet
from imagen_video.models.presets import tiny
from imagen_video.models.unet import coordinate_grid
from imagen_video.text.encoder import HFTextEncoder, load_text_encoder
from imagen_video.train.text import HashTextEncoder

WORDS = {
    "left": "moving to the left",
    "right": "moving to the right",
    "growing": "growing",
    "shrinking": "shrinking",
}
EVERY = 50


class Coordinates(nn.Module):
    """A U-Net with more input channels: the first `extra` planes of `coordinate_grid` (frame index, then row
    and column, then 4 x frame x row and 4 x frame x column; each from -1/2 to 1/2) at every pixel. The
    U-Net's own `coordinate_channels` adds all five through a separate conv instead."""

    def __init__(self, unet: VideoUNet, extra: int):
        super().__init__()
        self.unet, self.extra = unet, extra

    def forward(self, z, log_snr, text_emb, text_mask):
        b, _, t, h, w = z.shape
        grids = coordinate_grid(t, h, w, z.device, z.dtype)[:, : self.extra]
        return self.unet(torch.cat([z, grids.expand(b, -1, -1, -1, -1)], 1), log_snr, text_emb, text_mask)


def whiten(encoder, emb: torch.Tensor) -> torch.Tensor:
    """(emb - mu) W with mu, W = C^(-1/2) (eigenvalues under 1e-3 of the largest clamped) of the token states
    of 1500 ShapesDataset training captions."""
    captions = shapes_prompts("train", 1500, seed=1)
    batches = (encoder.encode(captions[i : i + 100]) for i in range(0, len(captions), 100))
    tokens = torch.cat([e[m] for e, m in batches])
    mu = tokens.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((tokens - mu).T))
    return (emb - mu) @ evecs @ torch.diag(evals.clamp(min=1e-3 * evals.max()) ** -0.5) @ evecs.T


def main(steps: int, variant: str, batch: int = BATCH, seed: int = 0) -> None:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = tiny()["base"].replace(text_dim=384, frame_embedding=True, temporal_rotary=True)
    if variant.endswith("_layer0"):
        cfg = cfg.replace(text_dim=768)
    extra = {"frames": 0, "ramp": 1, "coords": 3, "prod": 5}[variant.split("_")[0]]
    net = unet = VideoUNet(cfg)
    if extra:
        unet = VideoUNet(cfg.replace(in_channels=3 + extra, out_channels=3))
        net = Coordinates(unet, extra)
    if variant.endswith("_init"):  # the frame embedding's output layer at PyTorch's default init, not zero
        unet.frame_emb.net[-1].reset_parameters()
    if variant.endswith("_nozero"):  # every zero-initialised linear / conv layer at PyTorch's default init
        for module in unet.modules():
            if isinstance(module, nn.Linear | nn.Conv2d | nn.Conv1d) and not module.weight.any():
                module.reset_parameters()
    motions = ("growing", "shrinking") if variant.endswith("_growth") else ("left", "right")
    prompts = [(c, m) for c in ("red", "blue") for m in motions]
    encoder = HashTextEncoder(384, 32) if variant.endswith("_hash") else load_text_encoder("minilm", 32)
    captions = [f"a {c} circle {WORDS[m]}" for c, m in prompts]
    layer0 = variant.endswith("_layer0")
    if layer0:  # minilm+input's two halves, input embeddings first (the order of the logged run)
        encoder = HFTextEncoder("minilm+input", encoder.tokenizer, encoder.model, 32, layers=(0, -1))
    emb, mask = encoder.encode(captions)
    if variant.endswith("_words"):  # MiniLM's tokens, then one independent random vector per word
        words, words_mask = HashTextEncoder(384, 32).encode(captions)
        emb, mask = torch.cat([emb, words], 1), torch.cat([mask, words_mask], 1)
    if variant.endswith("_white"):
        emb = whiten(encoder, emb)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, emb, mask = net.to(device), emb.to(device), mask.to(device)
    means = [clips(rng, m, 512, c).mean(0) for c, m in prompts]
    pairs = {"red vs blue": (0, 2), f"{motions[0]} vs {motions[1]}": (0, 1)}
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for step in range(1, steps + 1):
        label = torch.randint(0, len(prompts), (batch,))
        x = torch.cat([clips(rng, prompts[i][1], 1, prompts[i][0]) for i in label.tolist()]).to(device)
        loss = v_step(net, opt, x, emb[label.to(device)], mask[label.to(device)], -8.0, -4.0)
        if step % EVERY == 0:
            net.eval()
            shares = {
                name: pair_share(net, emb[[i, j]], mask[[i, j]], means[i] - means[j], -6.0)
                for name, (i, j) in pairs.items()
            }
            net.train()
            cells = ", ".join(f"{k} {v:.3f}" for k, v in shares.items())
            print(f"step {step}: loss {loss:.4f}, {cells}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("TOY_THREADS", "2")))
    args = sys.argv[1:]
    main(int(args[0]) if args else 300, args[1] if len(args) > 1 else "frames", *map(int, args[2:4]))
