"""Frozen text encoders (MiniLM default, local T5 / UMT5 folders) and an on-disk embedding cache."""

from imagen_video.text.cache import EmbeddingCache, pad_token_embeddings
from imagen_video.text.encoder import (
    DEFAULT_MAX_LENGTH,
    MINILM,
    MINILM_INPUT,
    HFTextEncoder,
    TextEncoder,
    check_prompts,
    load_text_encoder,
)

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "MINILM",
    "MINILM_INPUT",
    "EmbeddingCache",
    "HFTextEncoder",
    "TextEncoder",
    "check_prompts",
    "load_text_encoder",
    "pad_token_embeddings",
]
