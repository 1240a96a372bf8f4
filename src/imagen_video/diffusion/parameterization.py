"""v-parameterization (SPEC §5; Salimans & Ho 2022): conversions between x, eps, v and z, plus adapters.

With z = alpha x + sigma eps and alpha^2 + sigma^2 = 1:
    v = alpha eps - sigma x,   x = alpha z - sigma v,   eps = sigma z + alpha v.
alpha and sigma may be per-example tensors [B] (broadcast over the other axes with `expand_like`),
tensors already broadcastable to x, or Python floats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from imagen_video.diffusion.schedule import CosineSchedule

Scalar = Tensor | float


def expand_like(a: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-example tensor a [B] to [B, 1, ..., 1] so it broadcasts against x [B, ...]."""
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))


def _bc(a: Scalar, x: Tensor) -> Scalar:
    """Broadcast alpha/sigma against x: [B] tensors get trailing singleton axes, floats pass through."""
    if isinstance(a, Tensor) and 0 < a.ndim < x.ndim:
        return expand_like(a, x)
    return a


def v_from_x_eps(x: Tensor, eps: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """v = alpha eps - sigma x."""
    return _bc(alpha, x) * eps - _bc(sigma, x) * x


def x_from_z_v(z: Tensor, v: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """x = alpha z - sigma v."""
    return _bc(alpha, z) * z - _bc(sigma, z) * v


def eps_from_z_v(z: Tensor, v: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """eps = sigma z + alpha v."""
    return _bc(sigma, z) * z + _bc(alpha, z) * v


def v_from_z_x(z: Tensor, x: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """v = (alpha z - x) / sigma (ill-conditioned only as sigma -> 0, which the truncated schedule avoids)."""
    return (_bc(alpha, z) * z - x) / _bc(sigma, z)


def v_from_z_eps(z: Tensor, eps: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """v = (eps - sigma z) / alpha (ill-conditioned as alpha -> 0, the usual weakness of eps-prediction)."""
    return (eps - _bc(sigma, z) * z) / _bc(alpha, z)


def x_from_z_eps(z: Tensor, eps: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """x = (z - sigma eps) / alpha."""
    return (z - _bc(sigma, z) * eps) / _bc(alpha, z)


def eps_from_z_x(z: Tensor, x: Tensor, alpha: Scalar, sigma: Scalar) -> Tensor:
    """eps = (z - alpha x) / sigma."""
    return (z - _bc(alpha, z) * x) / _bc(sigma, z)


class _Adapter:
    """Turns a model predicting some other target into the `model(z, t, cond) -> v` convention.

    `.guided(z, t, cond, w)` forwards to the wrapped model's `.guided` when it has one, else calls it twice;
    the conversion to v is affine in the prediction, so guiding eps or x equals guiding v.
    """

    def __init__(self, model: Callable[..., Tensor], schedule: CosineSchedule | None = None) -> None:
        self.model = model
        self.schedule = schedule if schedule is not None else CosineSchedule()

    def _to_v(self, z: Tensor, t: Tensor, prediction: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, z: Tensor, t: Tensor, cond: Any = None) -> Tensor:
        """v_hat from the wrapped model's prediction at (z, t, cond)."""
        return self._to_v(z, t, self.model(z, t, cond))

    def guided(self, z: Tensor, t: Tensor, cond: Any, w: float) -> Tensor:
        """v_hat of the guided prediction (1 + w) pred(z, t, cond) - w pred(z, t, None)."""
        if hasattr(self.model, "guided"):
            prediction = self.model.guided(z, t, cond, w)
        else:
            prediction = (1 + w) * self.model(z, t, cond) - w * self.model(z, t, None)
        return self._to_v(z, t, prediction)


class EpsModel(_Adapter):
    """Wraps an eps-predicting `model(z, t, cond) -> eps_hat` as a v-model: v = (eps - sigma z) / alpha."""

    def _to_v(self, z: Tensor, t: Tensor, prediction: Tensor) -> Tensor:
        alpha, sigma = self.schedule.alpha_sigma(t)
        return v_from_z_eps(z, prediction, alpha, sigma)


class XModel(_Adapter):
    """Wraps an x-predicting `model(z, t, cond) -> x_hat` as a v-model: v = (alpha z - x) / sigma."""

    def _to_v(self, z: Tensor, t: Tensor, prediction: Tensor) -> Tensor:
        alpha, sigma = self.schedule.alpha_sigma(t)
        return v_from_z_x(z, prediction, alpha, sigma)


def residual_z(z: Tensor, base: Tensor, alpha: Scalar) -> Tensor:
    """z of the residual r = x - base at the same noise: z_r = alpha r + sigma eps = z - alpha base."""
    return z - _bc(alpha, z) * base


def v_from_residual_v(v_r: Tensor, base: Tensor, sigma: Scalar) -> Tensor:
    """v of x from v of the residual r = x - base: v = alpha eps - sigma x = v_r - sigma base."""
    return v_r - _bc(sigma, v_r) * base
