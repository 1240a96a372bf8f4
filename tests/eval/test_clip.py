"""CLIP score and CLIP R-precision against a hand computation with the raw model (issue 7, must show 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_clip import write_tiny_clip

from imagen_video.errors import UserError
from imagen_video.eval import ClipScorer
from imagen_video.eval.clip import (
    FramePreprocess,
    _load_image_processor,
    preprocess_frames,
    r_precision_from_similarity,
    resize_output_size,
    sample_distractors,
)

PROMPTS = ["a red circle", "a blue square moving left", "green", "a small red square", "mo mo mo"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("clip-vit-b32-layout"))


@pytest.fixture(scope="module")
def scorer(clip_dir):
    return ClipScorer(clip_dir, device="cpu", batch_size=7)  # batch 7: chunks cross video boundaries


def smooth_videos(b: int, t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields (realistic images, unlike i.i.d. noise) as uint8 [B, T, H, W, 3]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(b * t, 3, 4, 4, generator=g)
    up = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (up * 255).round().to(torch.uint8).reshape(b, t, 3, h, w).permute(0, 1, 3, 4, 2).numpy()


def features(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def hand_embeddings(clip_dir, videos: np.ndarray, prompts: list[str]):
    """Reference path: the transformers image processor frame by frame, the tokenizer prompt by prompt."""
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(clip_dir).eval()
    processor = _load_image_processor(clip_dir)
    tokenizer = AutoTokenizer.from_pretrained(clip_dir)
    with torch.no_grad():
        frames = [[None] * videos.shape[1] for _ in range(videos.shape[0])]
        for b in range(videos.shape[0]):
            for t in range(videos.shape[1]):
                pixels = processor(images=videos[b, t], return_tensors="pt")["pixel_values"]
                e = features(model.get_image_features(pixel_values=pixels))[0].double()
                frames[b][t] = e / e.norm()
        texts = []
        for p in prompts:
            e = features(model.get_text_features(**tokenizer([p], return_tensors="pt")))[0].double()
            texts.append(e / e.norm())
    return frames, texts


def test_preprocess_matches_the_image_processor(clip_dir):
    from transformers import CLIPImageProcessor

    frame = smooth_videos(1, 1, 24, 40)[0, 0]
    pil_processor = _load_image_processor(clip_dir)
    ours = preprocess_frames(torch.from_numpy(frame)[None], FramePreprocess.from_processor(pil_processor))[0]
    ref = pil_processor(images=frame, return_tensors="pt")["pixel_values"][0]
    pixel_error = (ours - ref).abs() * torch.tensor(pil_processor.image_std)[:, None, None] * 255
    assert ours.shape == ref.shape == (3, 32, 32)
    assert pixel_error.max() < 1e-3  # same uint8 values after resize (PIL rounds half up, as we do)
    # i.i.d. noise: PIL's fixed-point weights flip a rare rounding by one uint8 level
    noise = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    ours = preprocess_frames(torch.from_numpy(noise)[None], FramePreprocess.from_processor(pil_processor))[0]
    ref = pil_processor(images=noise, return_tensors="pt")["pixel_values"][0]
    pixel_error = (ours - ref).abs() * torch.tensor(pil_processor.image_std)[:, None, None] * 255
    assert pixel_error.max() <= 1 + 1e-3 and (pixel_error > 0.5).float().mean() < 0.005
    # the real ViT-B/32 settings: a 32x32 frame upsampled to 224, a 192x320 one down to 224x373 then cropped
    vit_b32 = CLIPImageProcessor(size=224, crop_size=224, resample=3)
    for h, w in [(32, 32), (192, 320)]:
        frame = smooth_videos(1, 1, h, w, seed=h)[0, 0]
        ours = preprocess_frames(torch.from_numpy(frame)[None], FramePreprocess.from_processor(vit_b32))[0]
        ref = vit_b32(images=frame, return_tensors="pt")["pixel_values"][0]
        pixel_error = (ours - ref).abs() * torch.tensor(vit_b32.image_std)[:, None, None] * 255
        assert ours.shape == ref.shape == (3, 224, 224)
        assert pixel_error.max() < 1e-3


def test_resize_output_size_follows_transformers():
    assert resize_output_size(192, 320, 224) == (224, 373)
    assert resize_output_size(320, 192, 224) == (373, 224)
    assert resize_output_size(32, 32, 224) == (224, 224)


def test_clip_score_equals_hand_computation(clip_dir, scorer):
    videos = smooth_videos(3, 4, 32, 32)
    prompts = PROMPTS[:3]
    frames, texts = hand_embeddings(clip_dir, videos, prompts)
    expected = 100 * np.mean([np.mean([float(f @ texts[b]) for f in frames[b]]) for b in range(3)])
    assert scorer.clip_score(videos, prompts) == pytest.approx(expected, abs=1e-3)
    assert scorer.clip_score(torch.from_numpy(videos), prompts) == pytest.approx(expected, abs=1e-3)


def test_r_precision_with_all_others_equals_hand_computation(clip_dir, scorer):
    videos = smooth_videos(5, 3, 32, 32, seed=1)
    frames, texts = hand_embeddings(clip_dir, videos, PROMPTS)

    def sim(b, p):  # SPEC §8: similarity of a video to a prompt = mean over frames of the cosine
        return np.mean([float(f @ texts[p]) for f in frames[b]])

    hits = [all(sim(b, b) > sim(b, p) for p in range(5) if p != b) for b in range(5)]
    expected = 100 * np.mean(hits)
    # fewer than 99 distinct others: all 4 are used, so no randomness is involved
    assert scorer.r_precision(videos, PROMPTS) == pytest.approx(expected, abs=1e-9)
    result = scorer.scores(videos, PROMPTS)
    assert result["num_distractors"] == 4 and result["clip_r_precision"] == pytest.approx(expected)


def test_r_precision_of_identical_videos_is_one_over_n(scorer):
    """Same video for every prompt: only the prompt CLIP ranks first is retrieved, so R = 100 / N."""
    videos = np.repeat(smooth_videos(1, 2, 32, 32, seed=2), len(PROMPTS), axis=0)
    assert scorer.r_precision(videos, PROMPTS) == pytest.approx(100 / len(PROMPTS))
    # with 1 random distractor each, the first-ranked prompt always wins and the last-ranked never does
    r1 = scorer.r_precision(videos, PROMPTS, num_distractors=1, generator=torch.Generator().manual_seed(3))
    assert 100 / len(PROMPTS) <= r1 <= 100 * (len(PROMPTS) - 1) / len(PROMPTS)


def test_duplicate_prompts_are_never_their_own_distractors(scorer):
    videos = smooth_videos(3, 2, 32, 32, seed=4)
    result = scorer.scores(videos, ["green", "green", "a red circle"])
    assert result["num_distractors"] == 1
    assert any(result["clip_r_precision"] == pytest.approx(k * 100 / 3) for k in range(4))


def test_r_precision_from_similarity_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.2], [0.5, 0.4, 0.3], [0.3, 0.3, 0.3]], dtype=torch.float64)
    true_index = torch.tensor([0, 1, 2])
    distractors = torch.tensor([[1, 2], [0, 2], [0, 1]])
    # row 0 wins, row 1 loses to 0.5, row 2 ties (ties count as misses)
    assert r_precision_from_similarity(sim, true_index, distractors) == pytest.approx(100 / 3)
    one_each = torch.tensor([[1], [2], [0]])  # rows 0 and 1 now win; row 2 still ties
    assert r_precision_from_similarity(sim, true_index, one_each) == pytest.approx(200 / 3)


def test_sample_distractors_are_distinct_others_and_seeded():
    true_index = torch.arange(50) % 30
    d = sample_distractors(true_index, 30, 29, torch.Generator().manual_seed(0))
    assert d.shape == (50, 29)
    for row, i in zip(d.tolist(), true_index.tolist(), strict=True):
        assert sorted(row) == [j for j in range(30) if j != i]
    a = sample_distractors(true_index, 30, 5, torch.Generator().manual_seed(1))
    b = sample_distractors(true_index, 30, 5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not (a == true_index[:, None]).any()


def test_clip_score_is_the_mean_of_per_video_scores(scorer):
    """Two videos scored together = the average of each scored alone (float32 batching noise only)."""
    videos = smooth_videos(2, 2, 32, 32, seed=5)
    both = scorer.clip_score(videos, PROMPTS[:2])
    each = [scorer.clip_score(videos[i : i + 1], PROMPTS[i : i + 1]) for i in range(2)]
    assert both == pytest.approx(sum(each) / 2, abs=1e-4)
    assert -100 <= both <= 100 and math.isfinite(both)


def test_pytorch_model_bin_layout_loads_the_same_weights(tmp_path, clip_dir, scorer):
    """A directory with pytorch_model.bin (and the old position_ids buffers) instead of safetensors."""
    other = ClipScorer(write_tiny_clip(tmp_path / "bin", weights="pytorch_model.bin"), device="cpu")
    videos = smooth_videos(2, 2, 32, 32, seed=6)
    assert other.clip_score(videos, PROMPTS[:2]) == pytest.approx(scorer.clip_score(videos, PROMPTS[:2]))


def test_bad_inputs_are_user_errors(tmp_path, scorer):
    with pytest.raises(UserError, match="not a CLIP directory"):
        ClipScorer(tmp_path)
    videos = smooth_videos(2, 2, 32, 32)
    with pytest.raises(UserError, match="uint8"):
        scorer.clip_score(videos.astype(np.float32), PROMPTS[:2])
    with pytest.raises(UserError, match="one prompt per video"):
        scorer.clip_score(videos, PROMPTS[:3])
    with pytest.raises(UserError, match="2 distinct prompts"):
        scorer.r_precision(videos, ["same", "same"])
