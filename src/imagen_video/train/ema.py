"""Exponential moving average of the weights as a float32 shadow (sharded like the model under FSDP2)."""

from __future__ import annotations

import torch
from torch import nn


def ema_decay_at(step: int, decay: float, warmup: bool) -> float:
    """Decay used after optimizer step `step` (0-based): min(decay, (1 + step) / (10 + step)) with warmup."""
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


def _full(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's full value (a collective: every rank calls it), or the tensor itself."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


class EMA:
    """shadow <- decay * shadow + (1 - decay) * param, per trainable parameter, always float32."""

    def __init__(self, model: nn.Module):
        self.shadow = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        """One EMA step: lerp every shadow towards its parameter by (1 - decay)."""
        for name, param in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(param.detach().float(), 1.0 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Full (unsharded) float32 shadow on CPU, keyed by parameter name."""
        return {n: _full(t).detach().cpu().clone() for n, t in self.shadow.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the shadow from full tensors (re-sharded like the current shadow where it is a DTensor)."""
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"EMA state lacks {missing[:3]}")
        for name, t in self.shadow.items():
            full = state[name].to(device=t.device, dtype=torch.float32)
            if hasattr(t, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                full = distribute_tensor(full, t.device_mesh, t.placements)
            t.copy_(full)

    def model_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """A full state dict for `model` (unwrapped): EMA weights cast to its dtypes, buffers as they are."""
        shadow = self.state_dict()
        state = {}
        for name, value in model.state_dict().items():
            value = _full(value).detach().cpu()
            state[name] = shadow[name].to(value.dtype) if name in shadow else value.clone()
        return state
