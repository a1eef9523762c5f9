"""Spike normalisation neuron SN (Eq. 9) and spike-driven self-attention E-SDSA (Eq. 10-11).

Tokens are time-first and channel-last, ``[T, B, N, C]``: T time steps (FSVE: the K sub-blocks),
N tokens (spatial positions), C channels. The transformer keeps a real-valued membrane stream
``U`` between blocks (membrane shortcut, as in MS-ResNet); every ``nn.Linear`` reads spikes and
every product of two moving signals is a :class:`SpikeMatmul` of two spike tensors, so the whole
block is spike-driven (accumulate-only). No softmax, no LayerNorm.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fsve.nn.neurons import LIF, LIFParams, rect_spike
from fsve.nn.norm import TDBN1d

__all__ = [
    "ESDSA",
    "SN",
    "AttentionSN",
    "SpikeMatmul",
    "SpikeProjection",
    "SpikingMLP",
    "SpikingTransformerBlock",
    "reparam_spike",
]

SN_EPS = 1e-6  # floor of E|x| in V_th = α·E|x|, so an all-zero channel does not fire


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class SN(nn.Module):
    """Spike normalisation neuron of Eq. 9: ``SN(x) = Θ(x − V_th)``, ``V_th = α·E[|x|]``.

    ``α`` is one learnable scalar (init ``alpha``). ``E|x|`` is per channel (``dim`` of the input,
    size ``num_features``) over all other dimensions, e.g. over ``T·B·N`` for ``[T, B, N, C]``:

    - training: ``E|x|`` is the statistic of the current batch (gradients flow through it, as
      through BN's batch mean), and ``running_abs_mean`` [C] is updated like BN's running mean,
      ``r <- (1 - momentum) r + momentum E|x|``;
    - eval: ``V_th = α·running_abs_mean`` is a FIXED number per channel
      (:meth:`inference_threshold`), so a sample's spikes do not depend on the rest of the batch
      and an exported network has static thresholds.

    Stateless in time (no membrane carried between steps). ``E|x|`` is floored at ``SN_EPS``.
    Backward: the rectangular surrogate of Eq. 8 with half-width ``lens`` (:func:`rect_spike`).
    """

    def __init__(
        self,
        num_features: int,
        dim: int = -1,
        alpha: float = 1.0,
        momentum: float = 0.1,
        lens: float = 0.5,
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
        if not 0.0 < _finite("momentum", momentum) <= 1.0:
            raise ValueError(f"momentum must lie in (0, 1], got {momentum!r}")
        if _finite("lens", lens) <= 0:
            raise ValueError(f"lens must be > 0, got {lens!r}")
        self.num_features = num_features
        self.dim = int(dim)
        self.momentum = float(momentum)
        self.lens = float(lens)
        self.alpha = nn.Parameter(torch.tensor(_finite("alpha", alpha)))  # α, dimensionless
        self.register_buffer("running_abs_mean", torch.ones(num_features))  # [C], input units

    def _channel_dim(self, x: torch.Tensor) -> int:
        d = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else None
        if d is None or x.shape[d] != self.num_features:
            raise ValueError(
                f"{type(self).__name__} expects {self.num_features} channels in dim {self.dim},"
                f" got shape {tuple(x.shape)}"
            )
        return d

    def _batch_stat(self, x: torch.Tensor, d: int) -> torch.Tensor:
        """``E|x|`` per channel ``[C]`` over all dims but ``d``."""
        return x.abs().mean(dim=[i for i in range(x.ndim) if i != d])

    def _threshold(self, x: torch.Tensor, d: int) -> torch.Tensor:
        """``V_th`` broadcastable to ``x``; updates the running estimate in training."""
        if self.training:
            stat = self._batch_stat(x, d)
            with torch.no_grad():
                self.running_abs_mean.lerp_(stat.detach().to(self.running_abs_mean), self.momentum)
        else:
            stat = self.running_abs_mean.to(x.dtype)
        v_th = self.alpha * stat.clamp_min(SN_EPS)  # [C]
        shape = [1] * x.ndim
        shape[d] = self.num_features
        return v_th.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v_th = self._threshold(x, self._channel_dim(x))
        return rect_spike(x - v_th, self.lens)

    def inference_threshold(self) -> torch.Tensor:
        """The fixed eval threshold ``α·running_E|x|`` per channel, ``[C]`` (no gradient)."""
        return (self.alpha * self.running_abs_mean.clamp_min(SN_EPS)).detach()

    def extra_repr(self) -> str:
        return f"{self.num_features}, dim={self.dim}, momentum={self.momentum}, lens={self.lens}"


def reparam_spike(
    counts: torch.Tensor, v_threshold: torch.Tensor | float, scale: float, lens: float = 0.5
) -> torch.Tensor:
    """Eq. 11: ``Θ(scale·counts − V_th)`` computed as ``Θ(counts − V_th/scale)``.

    ``counts`` are raw integer spike products (e.g. ``Q_S K_S^T``), ``scale > 0``. The threshold
    is moved instead of every count being multiplied; the surrogate window becomes
    ``lens/scale`` so the gradient w.r.t. ``counts`` is also identical
    (``scale/(2 lens)·1(|scale·counts − V_th| <= lens)``).
    """
    if _finite("scale", scale) <= 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    return rect_spike(counts - v_threshold / scale, lens / scale)


class AttentionSN(SN):
    """SN' on the attention map ``scale·Q_S K_S^T`` (Eq. 10) with threshold re-parameterisation.

    Input: raw counts ``[T, B, heads, N, N]``; channels are heads (``dim=2``). Mathematically
    ``SN(scale·counts)`` with ``V_th = α·E|scale·counts|`` per head (``running_abs_mean`` and
    :meth:`inference_threshold` are in these scaled units); computed by :func:`reparam_spike` on
    the raw counts with ``V'_th = V_th/scale`` (Eq. 11), so no count is multiplied. In eval the
    integer-count comparator is :meth:`count_threshold`.
    """

    def __init__(
        self,
        num_heads: int,
        scale: float,
        dim: int = 2,
        alpha: float = 1.0,
        momentum: float = 0.1,
        lens: float = 0.5,
    ) -> None:
        super().__init__(num_heads, dim, alpha, momentum, lens)
        if _finite("scale", scale) <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.scale = float(scale)

    def _batch_stat(self, x: torch.Tensor, d: int) -> torch.Tensor:
        return super()._batch_stat(x, d) * self.scale  # E|scale·x| = scale·E|x|, per head

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        v_th = self._threshold(counts, self._channel_dim(counts))
        return reparam_spike(counts, v_th, self.scale, self.lens)

    def count_threshold(self) -> torch.Tensor:
        """Eval threshold on the raw counts, ``V_th/scale`` per head ``[heads]`` (Eq. 11)."""
        return self.inference_threshold() / self.scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale:.6g}"


class SpikeMatmul(nn.Module):
    """``a @ b`` for two moving signals (spike tensors), as a module so hooks can see it.

    Records and checks nothing itself; energy counting and the spike-driven check attach forward
    hooks to every instance.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


class SpikeProjection(nn.Module):
    """``SN(TDBN1d(Linear(S)))``, Eq. 9: spikes ``[T, B, N, C_in]`` -> spikes ``[T, B, N, C]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        v_threshold: float = 1.0,
        tdbn_alpha: float = 1.0,
        sn_alpha: float = 1.0,
        sn_momentum: float = 0.1,
        lens: float = 0.5,
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=False)
        self.bn = TDBN1d(out_features, alpha=tdbn_alpha, v_threshold=v_threshold)
        self.sn = SN(out_features, -1, sn_alpha, sn_momentum, lens)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.sn(self.bn(self.fc(s)))


class ESDSA(nn.Module):
    """Efficient spike-driven self-attention (Eq. 9-11) on membrane tokens ``[T, B, N, C]``.

    With ``S = LIF(U)`` the spikes of the block input ``U`` and ``h`` heads of ``d = C/h``::

        Q_S, K_S, V_S = SN(TDBN1d(Linear(S)))                       (Eq. 9, per head [.., N, d])
        A   = SN'(scale · Q_S K_S^T),  scale = d^-0.5 · scale_factor  (Eq. 10; via Eq. 11)
        U'  = U + TDBN1d(Linear(SN(A V_S)))                         (membrane shortcut)

    ``A`` is computed by :class:`AttentionSN` on the raw integer counts with threshold
    ``V_th/scale`` (Eq. 11): no multiplication anywhere. Multiplication order is ``(Q K^T) V``
    because SN' sits on the ``N x N`` attention map (Eq. 10): per head and time step
    ``Q_S K_S^T`` costs ``N·N·d`` and ``A V_S`` another ``N·N·d`` accumulations of spike
    products (2·N²·C over all heads), against ``2·N·d²`` for the linear-attention order
    ``Q (K^T V)`` of SDT-V2, which would leave no map to threshold. Both products go through
    :class:`SpikeMatmul` modules (``qk``, ``av``) so counters can see them.

    ``A V_S`` are integer counts whose size grows with N and the firing rates; the neuron after
    it is an SN (per-channel adaptive threshold), not a fixed-threshold LIF, so the output
    projection reads binary spikes without a hand-tuned rescaling (SDT-V3 multiplies by
    ``2·scale`` instead). Attention mixes tokens within each time step; the LIFs carry time.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        lif: LIFParams | None = None,
        tdbn_alpha: float = 1.0,
        sn_alpha: float = 1.0,
        sn_momentum: float = 0.1,
        scale_factor: float = 1.0,
    ) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads} (heads >= 1)")
        if _finite("scale_factor", scale_factor) <= 0:
            raise ValueError(f"scale_factor must be > 0, got {scale_factor!r}")
        p = LIFParams() if lif is None else lif
        self.dim, self.heads = dim, heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5 * float(scale_factor)
        args = (p.v_threshold, tdbn_alpha, sn_alpha, sn_momentum, p.lens)
        self.lif = LIF(p)
        self.q = SpikeProjection(dim, dim, *args)
        self.k = SpikeProjection(dim, dim, *args)
        self.v = SpikeProjection(dim, dim, *args)
        self.qk = SpikeMatmul()
        self.attn_sn = AttentionSN(heads, self.scale, 2, sn_alpha, sn_momentum, p.lens)
        self.av = SpikeMatmul()
        self.out_sn = SN(dim, -1, sn_alpha, sn_momentum, p.lens)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.proj_bn = TDBN1d(dim, alpha=tdbn_alpha, v_threshold=p.v_threshold)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(2, 3)  # [T, B, h, N, d]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Membrane tokens ``[T, B, N, C]`` -> membrane tokens ``[T, B, N, C]``."""
        if u.ndim != 4 or u.shape[-1] != self.dim:
            raise ValueError(f"ESDSA expects [T, B, N, {self.dim}], got shape {tuple(u.shape)}")
        s = self.lif(u)  # spikes [T, B, N, C]
        q, k, v = self._heads(self.q(s)), self._heads(self.k(s)), self._heads(self.v(s))
        a = self.attn_sn(self.qk(q, k.transpose(-2, -1)))  # spikes [T, B, h, N, N]
        y = self.av(a, v)  # integer counts [T, B, h, N, d]
        y = y.transpose(2, 3).flatten(-2)  # [T, B, N, C]
        return u + self.proj_bn(self.proj(self.out_sn(y)))


class SpikingMLP(nn.Module):
    """``U + TDBN(Linear(LIF(TDBN(Linear(LIF(U))))))`` on membrane tokens ``[T, B, N, C]``."""

    def __init__(
        self, dim: int, hidden: int, lif: LIFParams | None = None, tdbn_alpha: float = 1.0
    ) -> None:
        super().__init__()
        p = LIFParams() if lif is None else lif
        self.lif1 = LIF(p)
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.bn1 = TDBN1d(hidden, alpha=tdbn_alpha, v_threshold=p.v_threshold)
        self.lif2 = LIF(p)
        self.fc2 = nn.Linear(hidden, dim, bias=False)
        self.bn2 = TDBN1d(dim, alpha=tdbn_alpha, v_threshold=p.v_threshold)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.fc1(self.lif1(u)))
        return u + self.bn2(self.fc2(self.lif2(y)))


class SpikingTransformerBlock(nn.Module):
    """One block of the spiking temporal transformer: :class:`ESDSA` then :class:`SpikingMLP`."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: int = 4,
        lif: LIFParams | None = None,
        tdbn_alpha: float = 1.0,
        sn_alpha: float = 1.0,
        sn_momentum: float = 0.1,
        scale_factor: float = 1.0,
    ) -> None:
        super().__init__()
        self.attn = ESDSA(dim, heads, lif, tdbn_alpha, sn_alpha, sn_momentum, scale_factor)
        self.mlp = SpikingMLP(dim, mlp_ratio * dim, lif, tdbn_alpha)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Membrane tokens ``[T, B, N, C]`` -> same shape."""
        return self.mlp(self.attn(u))
