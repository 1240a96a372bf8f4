import warnings

import pytest
import torch

from imagen_video.errors import UserError
from imagen_video.text import EmbeddingCache, TextEncoder, load_text_encoder, pad_token_embeddings


def test_minilm_offline_shapes_and_padding_mask(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert isinstance(minilm, TextEncoder)
    assert (minilm.name, minilm.dim, minilm.max_length) == ("minilm", 384, 16)
    assert not any(p.requires_grad for p in minilm.model.parameters()) and not minilm.model.training
    emb, mask = minilm.encode(["a red circle moving left", "blue"])
    # [CLS] a red circle moving left [SEP] = 7 tokens; [CLS] blue [SEP] = 3
    assert emb.dtype == torch.float32 and emb.shape == (2, 7, 384)
    assert mask.tolist() == [[True] * 7, [True] * 3 + [False] * 4]
    assert torch.all(emb[1, 3:] == 0) and emb[1, :3].abs().sum() > 0
    # the short prompt's embeddings do not depend on how much padding the batch needed
    alone, alone_mask = minilm.encode(["blue"])
    assert alone.shape == (1, 3, 384) and alone_mask.all()
    torch.testing.assert_close(emb[1, :3], alone[0], atol=1e-5, rtol=1e-5)
    assert not emb.requires_grad


def test_minilm_truncates_long_prompt_with_warning(minilm):
    long_prompt = " ".join(["red"] * 40)
    with pytest.warns(UserWarning, match=r"prompt 1 has 42 tokens.*max_length 16"):
        emb, mask = minilm.encode(["blue", long_prompt])
    assert emb.shape == (2, 16, 384) and mask[1].all()


def test_empty_or_missing_prompt_is_user_error(minilm):
    with pytest.raises(UserError, match="prompt 1 is empty"):
        minilm.encode(["ok", "   "])
    with pytest.raises(UserError, match="no prompt"):
        minilm.encode([])


@pytest.mark.parametrize("model_type", ["t5", "umt5"])
def test_tiny_random_t5_folder_loads_and_encodes(tiny_t5_dir, model_type):
    folder = tiny_t5_dir(model_type)
    encoder = load_text_encoder(folder, max_length=8, dtype="float32")
    assert encoder.dim == 16 and encoder.name == f"{model_type}:{folder.resolve()}"
    assert type(encoder.model).__name__ == f"{model_type.upper()}EncoderModel"
    emb, mask = encoder.encode(["a red circle", "blue"])
    # "▁a ▁red ▁circle </s>" and "▁blue </s>"
    assert emb.shape == (2, 4, 16) and mask.tolist() == [[True] * 4, [True, True, False, False]]
    alone, _ = encoder.encode(["blue"])
    torch.testing.assert_close(emb[1, :2], alone[0], atol=1e-5, rtol=1e-5)
    with pytest.warns(UserWarning, match="truncated"):
        emb, mask = encoder.encode(["a red circle moving left up down fast"])
    assert emb.shape == (1, 8, 16)
    half = load_text_encoder(folder, max_length=8, dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert half.encode(["blue"])[0].dtype == torch.float32


def test_minilm_input_is_the_input_embeddings_beside_the_last_layer(minilm):
    """ "minilm+input" = [MiniLM's last layer | hidden state 0 (BERT embeddings of the token ids)]; its second
    half tells "left" from "right" about as well as "red" from "blue", where the last layer does not."""
    both = load_text_encoder("minilm+input", max_length=16)
    assert (both.name, both.dim) == ("minilm+input", 768)
    prompts = [
        f"a {c} circle moving to the {d}" for c, d in (("red", "left"), ("red", "right"), ("blue", "left"))
    ]
    emb, mask = both.encode(prompts + ["blue"])
    last, last_mask = minilm.encode(prompts + ["blue"])
    assert torch.equal(mask, last_mask)
    torch.testing.assert_close(emb[..., :384], last, atol=1e-6, rtol=0)
    ids = minilm.tokenizer(prompts + ["blue"], padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        inputs = minilm.model.embeddings(input_ids=ids) * mask[..., None]
    torch.testing.assert_close(emb[..., 384:], inputs, atol=1e-6, rtol=0)

    def distance(i, j, half):
        return (emb[i, :, half] - emb[j, :, half]).norm()

    last_half, input_half = slice(0, 384), slice(384, 768)
    left_right, red_blue = distance(0, 1, input_half), distance(0, 2, input_half)
    assert left_right > 0.9 * red_blue  # 10.7 vs 10.9
    assert distance(0, 1, last_half) < 0.5 * distance(0, 2, last_half)  # 5.7 vs 14.1


def test_bad_encoder_specs(tmp_path):
    with pytest.raises(UserError, match="neither 'minilm', 'minilm\\+input' nor an existing folder"):
        load_text_encoder(tmp_path / "nope")
    with pytest.raises(UserError, match="cannot load a T5 encoder"):
        load_text_encoder(tmp_path)
    with pytest.raises(UserError, match="dtype"):
        load_text_encoder("minilm", dtype="float64")
    with pytest.raises(UserError, match="max_length"):
        load_text_encoder("minilm", max_length=0)


def test_pad_token_embeddings_values():
    emb, mask = pad_token_embeddings([torch.ones(2, 3), 2 * torch.ones(1, 3)])
    assert emb.tolist() == [[[1.0] * 3] * 2, [[2.0] * 3, [0.0] * 3]]
    assert mask.tolist() == [[True, True], [True, False]]


class CountingEncoder:
    """Wraps an encoder and records which prompts reach it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.name, self.dim, self.max_length = inner.name, inner.dim, inner.max_length

    def encode(self, prompts):
        self.calls.append(list(prompts))
        return self.inner.encode(prompts)


def test_embedding_cache_hits_match_direct_encoding(tmp_path, minilm):
    counting = CountingEncoder(minilm)
    cache = EmbeddingCache(tmp_path / "cache", counting)
    prompts = ["a red circle moving left", "blue", "a red circle moving left"]
    emb, mask = cache.encode(prompts)
    direct, direct_mask = minilm.encode(prompts)
    assert counting.calls == [["a red circle moving left", "blue"]]  # duplicates encoded once
    assert torch.equal(mask, direct_mask)
    torch.testing.assert_close(emb, direct, atol=1e-5, rtol=1e-5)
    files = sorted(p.relative_to(tmp_path / "cache") for p in (tmp_path / "cache").rglob("*"))
    assert len([f for f in files if f.suffix == ".safetensors"]) == 2
    assert not [f for f in files if f.suffix == ".tmp"]
    key = cache.key("blue")
    assert cache.path("blue") == tmp_path / "cache" / key[:2] / f"{key}.safetensors"
    # second pass: all hits, no encoder call, identical values
    emb2, mask2 = cache.encode(["blue", "a red circle moving left"])
    assert len(counting.calls) == 1
    assert torch.equal(emb2[0, :3], emb[1, :3]) and torch.equal(emb2[1], emb[0])
    # a corrupt file is recomputed, and the key depends on max_length
    cache.path("blue").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.encode(["blue"])
    assert counting.calls[-1] == ["blue"]
    other = EmbeddingCache(tmp_path / "cache", load_text_encoder("minilm", max_length=8))
    assert other.key("blue") != key
