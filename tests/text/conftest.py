import pytest
import torch

from imagen_video.text import load_text_encoder


@pytest.fixture(scope="session")
def minilm():
    """The default encoder, loaded once per test session (about 1-2 s)."""
    return load_text_encoder("minilm", max_length=16)


@pytest.fixture
def tiny_t5_dir(tmp_path):
    """A factory: model_type -> folder with a tiny random T5-family encoder and its tokenizer."""
    return lambda model_type="t5": _save_tiny_t5(tmp_path / model_type, model_type)


def _save_tiny_t5(folder, model_type):
    """A randomly initialised 2-layer T5 (or UMT5) encoder plus a Unigram tokenizer, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5Config, T5EncoderModel, T5TokenizerFast, UMT5Config, UMT5EncoderModel

    words = "a red blue green circle square triangle moving left right up down the fast slow".split()
    pieces = ["<pad>", "</s>", "<unk>", "▁"] + [f"▁{w}" for w in words] + list("abcdefghijklmnopqrstuvwxyz")
    tok = Tokenizer(models.Unigram([(p, -1.0) for p in pieces], unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = T5TokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )
    sizes = dict(
        vocab_size=len(pieces),
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
    )
    torch.manual_seed(0)
    if model_type == "umt5":
        model = UMT5EncoderModel(UMT5Config(**sizes))
    else:
        model = T5EncoderModel(T5Config(**sizes))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
