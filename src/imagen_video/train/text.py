"""Text conditioning for training: the frozen encoder (or a hash stand-in for tests), cached, padded, and
dropped for classifier-free guidance (SPEC §6)."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from imagen_video.errors import UserError

HASH = "hash"


class HashTextEncoder:
    """Test stand-in for a frozen encoder: each lower-cased word maps to a fixed N(0, 1) vector seeded by its
    sha256; no model, no download, deterministic across processes and machines."""

    def __init__(self, dim: int = 32, max_length: int = 16):
        self.dim, self.max_length, self.name = dim, max_length, f"{HASH}:{dim}"

    def _token(self, word: str) -> Tensor:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little") >> 1
        return torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))

    def encode(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """prompts -> (emb float32 [B, L, D], mask bool [B, L]); L = the most words (<= max_length)."""
        words = [re.findall(r"[a-z0-9]+", p.lower())[: self.max_length] or ["<empty>"] for p in prompts]
        length = max(len(w) for w in words)
        emb = torch.zeros(len(prompts), length, self.dim)
        mask = torch.zeros(len(prompts), length, dtype=torch.bool)
        for i, row in enumerate(words):
            for k, word in enumerate(row):
                emb[i, k] = self._token(word)
            mask[i, : len(row)] = True
        return emb, mask


def build_text_encoder(name: str, max_length: int, cache: str | None):
    """'hash' / 'hash:D' (tests), 'minilm', 'minilm+input' or a T5 folder; in the on-disk EmbeddingCache if
    `cache`."""
    if name == HASH or name.startswith(f"{HASH}:"):
        dim = name.partition(":")[2] or "32"
        if not dim.isdigit():
            raise UserError(f"text.encoder {name!r}: write 'hash' or 'hash:DIM' with an integer DIM")
        encoder = HashTextEncoder(int(dim), max_length)
    else:
        from imagen_video.text import load_text_encoder

        encoder = load_text_encoder(name, max_length=max_length)
    if cache:
        from imagen_video.text import EmbeddingCache

        encoder = EmbeddingCache(Path(cache), encoder)
    return encoder


class TextConditioner:
    """captions -> (emb [B, max_length, D], mask [B, max_length]) zero-padded to a fixed length; `drop` [B]
    rows get an all-False mask and a zero embedding (the unconditional branch).

    Each caption is encoded on its own: batching captions of different lengths changes an encoder's output in
    the last bits, so this makes a caption's embedding a pure function of its text (exact resume, and the
    same numbers on any number of processes). Recent captions are memoised (LRU, about `memo_bytes`)."""

    def __init__(self, encoder, memo_bytes: float = 256e6):
        self.encoder = encoder
        self.dim, self.max_length = encoder.dim, encoder.max_length
        self.memo: OrderedDict[str, tuple[Tensor, Tensor]] = OrderedDict()
        self.memo_size = max(16, int(memo_bytes // (4 * self.dim * self.max_length)))

    def _row(self, caption: str) -> tuple[Tensor, Tensor]:
        """(emb [max_length, D], mask [max_length]) of one caption, from the memo or the encoder."""
        if caption in self.memo:
            self.memo.move_to_end(caption)
            return self.memo[caption]
        emb, mask = self.encoder.encode([caption])
        n = min(emb.shape[1], self.max_length)
        row_emb, row_mask = (
            torch.zeros(self.max_length, self.dim),
            torch.zeros(self.max_length, dtype=torch.bool),
        )
        row_emb[:n], row_mask[:n] = emb[0, :n].float().cpu(), mask[0, :n].cpu()
        self.memo[caption] = (row_emb, row_mask)
        if len(self.memo) > self.memo_size:
            self.memo.popitem(last=False)
        return row_emb, row_mask

    def __call__(self, captions: Sequence[str], drop: Tensor | None = None) -> tuple[Tensor, Tensor]:
        rows = [self._row(c) for c in captions]
        emb = torch.stack([r[0] for r in rows])  # [B, L, D]
        mask = torch.stack([r[1] for r in rows])  # [B, L]
        return drop_text(emb, mask, drop)


def drop_text(emb: Tensor, mask: Tensor, drop: Tensor | None) -> tuple[Tensor, Tensor]:
    """Classifier-free guidance dropout (SPEC §6): rows where drop [B] is True get mask all False, emb 0."""
    if drop is None:
        return emb, mask
    drop = drop.to(mask.device)
    return emb * (~drop)[:, None, None].to(emb.dtype), mask & ~drop[:, None]
