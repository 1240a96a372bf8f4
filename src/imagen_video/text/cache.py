"""On-disk text-embedding cache for training: the frozen encoder runs once per distinct prompt.

One safetensors file per prompt, holding its unpadded token embeddings [L_i, D], at
`root/<key[:2]>/<key>.safetensors` with key = sha256(encoder.name, max_length, prompt) (256 shard folders).
Writes are atomic (temp file + rename), so several processes (DDP ranks) may share one cache folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from imagen_video.atomic import atomic_write
from imagen_video.text.encoder import TextEncoder, check_prompts


def pad_token_embeddings(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[L_i, D] per prompt -> (emb [B, max L_i, D] zero-padded, mask bool [B, max L_i], True = token)."""
    length = max(row.shape[0] for row in rows)
    emb = rows[0].new_zeros(len(rows), length, rows[0].shape[1])
    mask = torch.zeros(len(rows), length, dtype=torch.bool, device=rows[0].device)
    for i, row in enumerate(rows):
        emb[i, : row.shape[0]] = row
        mask[i, : row.shape[0]] = True
    return emb, mask


class EmbeddingCache:
    """encode(prompts) like a TextEncoder, reading each prompt's embeddings from disk when cached."""

    def __init__(self, root: str | Path, encoder: TextEncoder, dtype: torch.dtype = torch.float32):
        self.root = Path(root)
        self.encoder = encoder
        self.dtype = dtype  # storage dtype; encode() always returns float32
        self.name, self.dim, self.max_length = encoder.name, encoder.dim, encoder.max_length

    def key(self, prompt: str) -> str:
        """sha256 over the encoder identity, its max_length and the prompt text."""
        text = f"{self.encoder.name}\n{self.encoder.max_length}\n{prompt}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path(self, prompt: str) -> Path:
        key = self.key(prompt)
        return self.root / key[:2] / f"{key}.safetensors"

    def _load(self, prompt: str) -> torch.Tensor | None:
        """Cached [L, D] for `prompt`, or None when absent or unreadable (then it is recomputed)."""
        path = self.path(prompt)
        if not path.is_file():
            return None
        try:
            return load_file(path)["emb"].float()
        except (SafetensorError, OSError, KeyError):
            return None

    def _store(self, prompt: str, row: torch.Tensor) -> None:
        """Write [L, D] atomically: a temp file in the same folder, then os.replace."""
        row = row.to(self.dtype).contiguous().cpu()
        atomic_write(self.path(prompt), lambda tmp: save_file({"emb": row}, tmp, metadata={"prompt": prompt}))

    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts -> (emb float32 [B, L, D], mask bool [B, L]); misses are encoded as one batch, stored."""
        prompts = check_prompts(prompts)
        rows: dict[str, torch.Tensor | None] = {p: self._load(p) for p in dict.fromkeys(prompts)}
        missing = [p for p, row in rows.items() if row is None]
        if missing:
            emb, mask = self.encoder.encode(missing)
            for i, prompt in enumerate(missing):
                row = emb[i, mask[i]].cpu()  # [L_i, D]
                self._store(prompt, row)
                rows[prompt] = row.to(self.dtype).float()
        return pad_token_embeddings([rows[p] for p in prompts])
