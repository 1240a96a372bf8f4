"""Frame-wise CLIP score and CLIP R-precision (paper §3 and Table 1; SPEC §8) with a local CLIP directory.

CLIP score: 100 * cos(image embedding of each frame, text embedding of the prompt), averaged over frames,
then over videos. This is the plain mean cosine as in the video papers' "CLIPSIM" (Wu et al. 2021), which
the paper's numbers (~25 for ViT-scale CLIP) match; CLIPScore's clamp w * max(cos, 0) (Hessel et al. 2021)
is not applied. For a real CLIP on real prompts the cosines are ~0.2-0.35 and the clamp never acts; it
would only change results for near-random models.

CLIP R-precision (Park et al. 2021): the similarity of a video to a prompt is the mean over frames of the
per-frame cosine; a video counts as retrieved when its own prompt scores strictly higher than each of
`num_distractors` other prompts drawn at random from the distinct other prompts of the evaluation set.
When fewer distinct others exist, all of them are used (`effective_num_distractors` says how many).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from imagen_video.errors import UserError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# PIL resampling filter id (as stored in preprocessor_config.json) -> torch mode; torch's antialiased
# modes use PIL's kernels (bicubic a = -0.5), see `preprocess_frames`.
RESAMPLE_MODES = {2: "bilinear", 3: "bicubic"}


@dataclass(frozen=True)
class FramePreprocess:
    """A CLIP image processor's settings: resize, center crop, rescale, normalise (applied in torch)."""

    shortest_edge: int | None = 224  # resize so the short side is this, aspect kept ...
    resize_hw: tuple[int, int] | None = None  # ... or to exactly (height, width)
    crop_hw: tuple[int, int] | None = (224, 224)
    mode: str = "bicubic"
    rescale: float = 1 / 255
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    @classmethod
    def from_processor(cls, processor) -> FramePreprocess:
        """Read the settings of a loaded `CLIPImageProcessor` (legacy `size: 224` files included)."""

        def get(d, key):
            return d.get(key) if isinstance(d, dict) else getattr(d, key, None)

        size, crop = processor.size, processor.crop_size
        resample = int(getattr(processor.resample, "value", processor.resample))
        if resample not in RESAMPLE_MODES:
            raise UserError(
                f"CLIP preprocessor_config.json: resample={resample} is not supported; "
                f"use 3 (bicubic) or 2 (bilinear)"
            )
        shortest_edge = resize_hw = None
        if processor.do_resize:
            if get(size, "shortest_edge"):
                shortest_edge = int(get(size, "shortest_edge"))
            elif get(size, "height") and get(size, "width"):
                resize_hw = (int(get(size, "height")), int(get(size, "width")))
            else:
                raise UserError(
                    f"CLIP preprocessor_config.json: size {size!r} is not supported; "
                    "give {'shortest_edge': N} or {'height': H, 'width': W}"
                )
        return cls(
            shortest_edge=shortest_edge,
            resize_hw=resize_hw,
            crop_hw=(int(get(crop, "height")), int(get(crop, "width"))) if processor.do_center_crop else None,
            mode=RESAMPLE_MODES[resample],
            rescale=float(processor.rescale_factor) if processor.do_rescale else 1.0,
            mean=tuple(processor.image_mean) if processor.do_normalize else (0.0, 0.0, 0.0),
            std=tuple(processor.image_std) if processor.do_normalize else (1.0, 1.0, 1.0),
        )


def resize_output_size(height: int, width: int, shortest_edge: int) -> tuple[int, int]:
    """transformers' shortest-edge rule: short side -> shortest_edge, long side -> int(s * long / short)."""
    if height <= width:
        return shortest_edge, int(shortest_edge * width / height)
    return int(shortest_edge * height / width), shortest_edge


def _resize_like_pil(x: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """PIL's uint8 resize: horizontal pass, round half up to uint8, vertical pass, round (x: [N,C,H,W])."""
    if x.shape[-1] != width:
        x = F.interpolate(x, size=(x.shape[-2], width), mode=mode, antialias=True, align_corners=False)
        x = (x + 0.5).floor().clamp(0, 255)
    if x.shape[-2] != height:
        x = F.interpolate(x, size=(height, width), mode=mode, antialias=True, align_corners=False)
        x = (x + 0.5).floor().clamp(0, 255)
    return x


def preprocess_frames(frames: torch.Tensor, pre: FramePreprocess) -> torch.Tensor:
    """uint8 frames [N, H, W, C] -> CLIP pixel values [N, C, h, w]: resize, crop, (x / 255 - mean) / std."""
    x = rearrange(frames, "n h w c -> n c h w").float()
    if pre.shortest_edge is not None:
        x = _resize_like_pil(x, *resize_output_size(x.shape[-2], x.shape[-1], pre.shortest_edge), pre.mode)
    elif pre.resize_hw is not None:
        x = _resize_like_pil(x, *pre.resize_hw, pre.mode)
    if pre.crop_hw is not None:
        (crop_h, crop_w), (h, w) = pre.crop_hw, x.shape[-2:]
        if crop_h > h or crop_w > w:
            raise UserError(f"CLIP center crop {crop_h}x{crop_w} is larger than the resized frame {h}x{w}")
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        x = x[..., top : top + crop_h, left : left + crop_w]
    mean = torch.tensor(pre.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(pre.std, device=x.device).view(1, -1, 1, 1)
    return (x * pre.rescale - mean) / std


def clip_score_from_embeddings(frame_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """100 * mean_b mean_t cos(frame_emb[b, t], text_emb[b]); inputs L2-normalised, [B, T, D] and [B, D]."""
    cos = torch.einsum("btd,bd->bt", frame_emb.double(), text_emb.double())
    return float(100.0 * cos.mean(dim=1).mean())


def video_text_similarity(frame_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Mean over frames of the cosine: sim[b, p] = mean_t <frame_emb[b, t], text_emb[p]>  -> [B, P]."""
    return torch.einsum("btd,pd->bp", frame_emb.double(), text_emb.double()) / frame_emb.shape[1]


def effective_num_distractors(prompts: list[str], num_distractors: int) -> int:
    """How many distractors R-precision uses: min(num_distractors, distinct prompts - 1)."""
    return min(num_distractors, len(set(prompts)) - 1)


def sample_distractors(
    true_index: torch.Tensor, num_prompts: int, num_distractors: int, generator: torch.Generator
) -> torch.Tensor:
    """For each true index [B], `num_distractors` distinct other indices in [0, num_prompts) -> [B, K]."""
    rows = []
    for i in true_index.tolist():
        others = torch.randperm(num_prompts - 1, generator=generator)[:num_distractors]
        rows.append(others + (others >= i).long())  # skip the true index
    return torch.stack(rows)


def r_precision_from_similarity(
    sim: torch.Tensor, true_index: torch.Tensor, distractors: torch.Tensor
) -> float:
    """100 * fraction of rows b with sim[b, true_index[b]] > max_k sim[b, distractors[b, k]] (ties fail)."""
    true_sim = sim.gather(1, true_index[:, None])[:, 0]
    best_other = sim.gather(1, distractors).amax(dim=1)
    return float(100.0 * (true_sim > best_other).double().mean())


def _load_image_processor(path: Path):
    """The PIL-backed CLIP processor where transformers splits backends (5.x), the classic one before."""
    try:
        from transformers import CLIPImageProcessorPil as processor_cls
    except ImportError:
        from transformers import CLIPImageProcessor as processor_cls
    return processor_cls.from_pretrained(path, local_files_only=True)


def as_uint8_videos(videos, num_prompts: int | None = None) -> torch.Tensor:
    """Validate videos at the edge: uint8 [B, T, H, W, 3] (numpy or torch) -> torch uint8 tensor."""
    videos = torch.from_numpy(np.asarray(videos)) if not isinstance(videos, torch.Tensor) else videos
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise UserError(
            f"videos must be uint8 [B, T, H, W, 3], got {videos.dtype} {tuple(videos.shape)}; "
            "convert with ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) and channels last"
        )
    if num_prompts is not None and videos.shape[0] != num_prompts:
        raise UserError(f"got {videos.shape[0]} videos but {num_prompts} prompts; give one prompt per video")
    return videos


class ClipScorer:
    """CLIP score and CLIP R-precision of uint8 videos against prompts, with a CLIP loaded from `clip_dir`."""

    def __init__(
        self, clip_dir: str | Path, device: str | torch.device | None = None, batch_size: int = 64
    ) -> None:
        from transformers import AutoTokenizer, CLIPModel

        path = Path(clip_dir)
        if not (path / "config.json").is_file() or not any((path / f).is_file() for f in WEIGHT_FILES):
            raise UserError(
                f"{path} is not a CLIP directory: it needs config.json, {' or '.join(WEIGHT_FILES)}, "
                "preprocessor_config.json and tokenizer files (e.g. a copy of openai/clip-vit-base-patch32)"
            )
        if not (path / "preprocessor_config.json").is_file():
            raise UserError(f"{path}: preprocessor_config.json is missing (CLIP image processor settings)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self.model = CLIPModel.from_pretrained(path, local_files_only=True).eval().to(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.preprocess = FramePreprocess.from_processor(_load_image_processor(path))
        self.max_length = self.model.config.text_config.max_position_embeddings

    @staticmethod
    def _features(out) -> torch.Tensor:
        """get_*_features returns a tensor (transformers 4) or an output with the projection pooled (5)."""
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    @torch.inference_mode()
    def encode_frames(self, videos) -> torch.Tensor:
        """uint8 videos [B, T, H, W, C] -> L2-normalised per-frame image embeddings [B, T, D] (CPU)."""
        videos = as_uint8_videos(videos)
        frames = rearrange(videos, "b t h w c -> (b t) h w c")
        chunks = []
        for start in range(0, frames.shape[0], self.batch_size):
            chunk = frames[start : start + self.batch_size].to(self.device)
            pixels = preprocess_frames(chunk, self.preprocess)
            emb = self._features(self.model.get_image_features(pixel_values=pixels))
            chunks.append(F.normalize(emb.float(), dim=-1).cpu())
        return rearrange(torch.cat(chunks), "(b t) d -> b t d", b=videos.shape[0])

    @torch.inference_mode()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> L2-normalised CLIP text embeddings float32 [P, D] (CPU); truncated to the context."""
        chunks = []
        for start in range(0, len(prompts), self.batch_size):
            tokens = self.tokenizer(
                list(prompts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            out = self.model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            )
            emb = self._features(out)
            chunks.append(F.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(chunks)

    def scores(
        self, videos, prompts: list[str], num_distractors: int = 99, generator: torch.Generator | None = None
    ) -> dict[str, float | int | None]:
        """Both metrics from one pass over the frames: clip_score, clip_r_precision (None with < 2 distinct
        prompts) and the num_distractors it used."""
        videos = as_uint8_videos(videos, len(prompts))
        frame_emb = self.encode_frames(videos)
        position = {p: i for i, p in enumerate(dict.fromkeys(prompts))}  # distinct prompts, first-seen order
        unique = list(position)
        true_index = torch.tensor([position[p] for p in prompts])
        text_emb = self.encode_text(unique)  # [U, D], each distinct prompt encoded once
        k = effective_num_distractors(prompts, num_distractors)
        r_precision = None
        if k > 0:
            generator = generator if generator is not None else torch.Generator().manual_seed(0)
            distractors = sample_distractors(true_index, len(unique), k, generator)
            sim = video_text_similarity(frame_emb, text_emb)
            r_precision = r_precision_from_similarity(sim, true_index, distractors)
        return {
            "clip_score": clip_score_from_embeddings(frame_emb, text_emb[true_index]),
            "clip_r_precision": r_precision,
            "num_distractors": k,
        }

    def clip_score(self, videos, prompts: list[str]) -> float:
        """Frame-wise CLIP score: 100 * cos(frame, prompt), mean over frames then videos (SPEC §8)."""
        return self.scores(videos, prompts, num_distractors=0)["clip_score"]

    def r_precision(
        self, videos, prompts: list[str], num_distractors: int = 99, generator: torch.Generator | None = None
    ) -> float:
        """CLIP R-precision x100: top-1 rate of each video's prompt among itself + distractors (SPEC §8);
        distractors drawn with `generator` (None: a fixed seed 0, so results repeat)."""
        if len(set(prompts)) < 2 or num_distractors < 1:
            raise UserError("CLIP R-precision needs num_distractors >= 1 and at least 2 distinct prompts")
        return self.scores(videos, prompts, num_distractors, generator)["clip_r_precision"]
