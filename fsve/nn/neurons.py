"""Multi-step LIF neurons with the rectangular surrogate gradient (paper Eq. 7-8, Appendix A.5).

Tensors are time-first ``[T, B, ...]`` (``[T, B, C, H, W]`` after convolutions, ``[T, B, N]``
after linear layers). One step of the dynamics, in SpikingJelly's ``LIFNode`` form::

    H[t] = V[t-1] + (X[t] - (V[t-1] - V_r)) / tau      (decay_input=True)
    H[t] = V[t-1] - (V[t-1] - V_r) / tau + X[t]        (decay_input=False)
    S[t] = Θ(H[t] - V_th)                              (Eq. 7, spike when H >= V_th)
    V[t] = S[t] V_r + (1 - S[t]) H[t]                  (hard reset, v_reset is a float)
    V[t] = H[t] - S[t] V_th                            (soft reset, v_reset is None; V_r := 0)

Backward replaces dS/dH by the rectangle of Eq. 8, ``1/(2 lens) · 1(|H - V_th| <= lens)``.
Boundary convention: by default the window is closed (``<=``, as Eq. 8 is written);
``strict_window=True`` gives the open window ``|H - V_th| < lens`` of SpikingJelly's
``surrogate.Rect(alpha=1/(2 lens))``, whose gradient is ``alpha · 1(|x| < 0.5/alpha)``. The two
differ only where ``H - V_th`` is exactly ``±lens``.

The whole sequence runs in one ``torch.autograd.Function``: the forward loop over T records no
graph and keeps only H and S; the backward is a hand-written reverse loop over T that writes
dL/dH over the saved H (so a training step allocates no [T, B, ...] buffer beyond the spikes and
H) and returns it as the input gradient. Each step uses only float elementwise ops on [B, ...]
slices. The forward arithmetic repeats SpikingJelly's operations in the same order, so spikes and
voltages are bit-identical to ``LIFNode(..., surrogate.Rect(alpha))``; gradients agree to float32
rounding. Without autograd (``torch.no_grad`` or no input needing a gradient) H is not kept.

Everything here is stateless: each call starts from ``v_init`` (default: ``V_r``, or 0 for soft
reset) and nothing is remembered between calls or batches. Pass the returned final voltage as the
next ``v_init`` to stream a long sequence in chunks (gradients then flow across chunks).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["LIF", "LIFParams", "lif_multistep", "rect_spike"]

_COMPUTE_DTYPES = (torch.float32, torch.float64)  # other dtypes (bf16, fp16, ints) run in fp32


def _is_finite_real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_lens(lens: float) -> None:
    if not (_is_finite_real(lens) and lens > 0):
        raise ValueError(f"surrogate half-width lens must be a finite number > 0, got {lens!r}")


@dataclass(frozen=True)
class LIFParams:
    """Parameters of a multi-step LIF layer (SpikingJelly ``LIFNode`` semantics, Eq. 7-8).

    Voltages are in the (dimensionless) units of the layer input; ``tau`` is in time steps.
    """

    tau: float = 2.0  # membrane time constant, time steps; > 1 (decay per step 1 - 1/tau)
    v_threshold: float = 1.0  # V_th, firing threshold
    v_reset: float | None = 0.0  # V_r for hard reset; None selects soft reset (subtract V_th)
    decay_input: bool = True  # True: the input is divided by tau as well
    detach_reset: bool = True  # True: no gradient flows through S in the reset term
    lens: float = 0.5  # half-width of the rectangular surrogate window of Eq. 8
    strict_window: bool = False  # True: open window |x| < lens (SpikingJelly Rect); else <=

    def __post_init__(self) -> None:
        if not (_is_finite_real(self.tau) and self.tau > 1):
            raise ValueError(f"tau must be a finite number > 1 (time steps), got {self.tau!r}")
        if not _is_finite_real(self.v_threshold):
            raise ValueError(f"v_threshold must be a finite number, got {self.v_threshold!r}")
        if self.v_reset is not None and not _is_finite_real(self.v_reset):
            raise ValueError(f"v_reset must be a finite number or None, got {self.v_reset!r}")
        _check_lens(self.lens)
        for name in ("decay_input", "detach_reset", "strict_window"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        # store plain floats so that torch sees Python scalars of one type
        object.__setattr__(self, "tau", float(self.tau))
        object.__setattr__(self, "v_threshold", float(self.v_threshold))
        if self.v_reset is not None:
            object.__setattr__(self, "v_reset", float(self.v_reset))
        object.__setattr__(self, "lens", float(self.lens))

    @property
    def surrogate_alpha(self) -> float:
        """``alpha`` of the equivalent SpikingJelly ``surrogate.Rect``: ``1 / (2 lens)``."""
        return 1.0 / (2.0 * self.lens)


def _rect_window(x: torch.Tensor, lens: float, strict: bool) -> torch.Tensor:
    """``1/(2 lens) · 1(|x| <= lens)`` (``<`` if strict) in the dtype of ``x`` (Eq. 8)."""
    a = x.abs()
    inside = a < lens if strict else a <= lens
    return inside.to(x.dtype) * (1.0 / (2.0 * lens))


class _RectSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lens: float, strict: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.lens = lens
        ctx.strict = strict
        return (x >= 0).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * _rect_window(x, ctx.lens, ctx.strict), None, None


def rect_spike(
    x_minus_threshold: torch.Tensor, lens: float = 0.5, strict_window: bool = False
) -> torch.Tensor:
    """Heaviside ``Θ(x)`` (1 where ``x >= 0``) with the rectangular surrogate gradient of Eq. 8.

    Backward: ``dΘ/dx ≈ 1/(2 lens) · 1(|x| <= lens)``; ``strict_window=True`` uses ``<`` as
    SpikingJelly's ``surrogate.Rect(alpha=1/(2 lens))`` does. Any shape; output dtype = input's.
    """
    _check_lens(lens)
    return _RectSpike.apply(x_minus_threshold, float(lens), bool(strict_window))


def _lif_loop(
    x_seq: torch.Tensor,
    v_init: torch.Tensor | None,
    p: LIFParams,
    s_seq: torch.Tensor,
    h_seq: torch.Tensor | None,
) -> torch.Tensor:
    """Forward loop over T without a graph: fills ``s_seq`` (and ``h_seq``), returns V[T-1].

    Each charge repeats SpikingJelly's reference operations in the same order
    (``V + (X - (V - V_r)) / tau`` or ``V - (V - V_r) / tau + X``, with ``V_r = 0`` for soft
    reset), so H, S and V are bit-identical to ``LIFNode`` with a Python-loop surrogate.
    """
    tau, v_th = p.tau, p.v_threshold
    v_r = 0.0 if p.v_reset is None else p.v_reset
    tmp = torch.empty_like(x_seq[0])  # [B, ...] scratch
    h_step = torch.empty_like(x_seq[0]) if h_seq is None else None
    v = torch.empty_like(x_seq[0])  # V[t], overwritten every step
    for t in range(x_seq.shape[0]):
        x = x_seq[t]
        h = h_step if h_seq is None else h_seq[t]
        v_prev = v_init if t == 0 else v
        if v_prev is None:  # fresh neuron, V[-1] = V_r: (V - V_r) is exactly 0
            if p.decay_input:
                torch.div(x, tau, out=h)
                if v_r != 0.0:
                    h.add_(v_r)
            else:
                torch.add(x, v_r, out=h)
        elif p.decay_input:
            if v_r != 0.0:
                torch.sub(v_prev, v_r, out=tmp)
                torch.sub(x, tmp, out=tmp)
            else:
                torch.sub(x, v_prev, out=tmp)
            tmp.div_(tau)
            torch.add(v_prev, tmp, out=h)
        else:
            if v_r != 0.0:
                torch.sub(v_prev, v_r, out=tmp)
                tmp.div_(tau)
            else:
                torch.div(v_prev, tau, out=tmp)
            torch.sub(v_prev, tmp, out=h)
            h.add_(x)
        s = s_seq[t]
        torch.ge(h, v_th, out=s)  # Eq. 7; same as (H - V_th >= 0) for finite floats
        if p.v_reset is None:
            torch.sub(h, s, alpha=v_th, out=v)  # H - S V_th (S V_th is exact)
        else:
            torch.addcmul(h, h, s, value=-1.0, out=v)  # H - H S: exactly (1 - S) H
            if v_r != 0.0:
                v.add_(s, alpha=v_r)  # + S V_r: exactly V_r where S = 1
    return v


class _LIFSequence(torch.autograd.Function):
    """Whole-sequence LIF: forward without a graph, backward through time by hand."""

    @staticmethod
    def forward(
        ctx, x_seq: torch.Tensor, v_init: torch.Tensor | None, p: LIFParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s_seq = torch.empty_like(x_seq)
        h_seq = torch.empty_like(x_seq)  # H[t]; backward overwrites it with the input gradient
        v_final = _lif_loop(x_seq, v_init, p, s_seq, h_seq)
        ctx.save_for_backward(h_seq, s_seq)
        ctx.params = p
        ctx.has_v_init = v_init is not None
        ctx.consumed = False
        return s_seq, v_final

    @staticmethod
    @once_differentiable
    def backward(
        ctx, grad_s: torch.Tensor | None, grad_v: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        if ctx.consumed:
            raise RuntimeError(
                "lif_multistep: backward through the same graph twice is not supported "
                "(its backward reuses the saved membrane buffer for the gradient); "
                "run the forward again instead of retain_graph=True"
            )
        ctx.consumed = True
        h_seq, s_seq = ctx.saved_tensors
        p: LIFParams = ctx.params
        tau, v_th = p.tau, p.v_threshold
        decay = 1.0 - 1.0 / tau  # dH[t+1]/dV[t]
        scale = 1.0 / (2.0 * p.lens)
        below = torch.lt if p.strict_window else torch.le
        sg = torch.empty_like(h_seq[0])  # dS/dH at step t, Eq. 8
        carry = torch.empty_like(h_seq[0])  # dL/dV[t] * dV[t]/dH[t] (without the decay)
        extra = torch.empty_like(h_seq[0]) if not p.detach_reset else None
        last = h_seq.shape[0] - 1
        for t in range(last, -1, -1):
            h, s, g = h_seq[t], s_seq[t], h_seq[t]  # g: dL/dH[t], written over H[t]
            torch.sub(h, v_th, out=sg)
            sg.abs_()
            below(sg, p.lens, out=sg)
            if scale != 1.0:
                sg.mul_(scale)
            # gradient reaching V[t]: from the returned final voltage, or from H[t+1]
            gv, alpha = (grad_v, 1.0) if t == last else (h_seq[t + 1], decay)
            c = gv  # dL/dV[t] * dV[t]/dH[t], the decay factor alpha still to apply
            if gv is not None:
                if p.v_reset is None:  # dV/dH = 1 (- V_th dS/dH unless detached)
                    if not p.detach_reset:
                        torch.mul(gv, sg, out=extra)
                        c = torch.add(gv, extra, alpha=-v_th, out=carry)
                else:  # dV/dH = 1 - S (+ (V_r - H) dS/dH unless detached)
                    c = torch.addcmul(gv, gv, s, value=-1.0, out=carry)  # exactly (1 - S) gv
                    if not p.detach_reset:
                        torch.sub(h, p.v_reset, out=extra)  # H - V_r
                        extra.mul_(sg)
                        carry.addcmul_(extra, gv, value=-1.0)
            if grad_s is not None:
                torch.mul(grad_s[t], sg, out=g)  # surrogate path, Eq. 8
                if c is not None:
                    g.add_(c, alpha=alpha)
            elif c is not None:
                torch.mul(c, alpha, out=g)
            else:
                g.zero_()
            if t < last and p.decay_input:
                h_seq[t + 1].div_(tau)  # dL/dX = dL/dH / tau, no longer needed as dL/dH
        grad_v_init = None
        if ctx.has_v_init and ctx.needs_input_grad[1]:
            grad_v_init = h_seq[0] * decay
        if p.decay_input:
            h_seq[0].div_(tau)
        return h_seq, grad_v_init, None


def lif_multistep(
    x_seq: torch.Tensor, v_init: torch.Tensor | None = None, params: LIFParams | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run LIF dynamics (Eq. 7, surrogate gradient Eq. 8) over a whole ``[T, B, ...]`` sequence.

    ``v_init`` (``[B, ...]``) is the membrane voltage before the first step; ``None`` means
    ``V_r`` (0 for soft reset), i.e. a fresh neuron. It is never modified.

    Returns ``(spikes, v_final)``: spikes ``[T, B, ...]`` in ``{0, 1}`` with the dtype of
    ``x_seq`` (float32 for non-float input), and the voltage after the last reset, ``[B, ...]``,
    in the compute dtype (the next chunk's ``v_init``). Both carry gradients. Inputs other than
    float32/float64 (e.g. bf16 under ``torch.autocast``) are computed in float32.
    Double backward, and a second backward through the same graph, are not supported.
    """
    p = LIFParams() if params is None else params
    if x_seq.ndim < 2 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be [T, B, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    if v_init is not None and v_init.shape != x_seq.shape[1:]:
        raise ValueError(
            f"v_init must have shape {tuple(x_seq.shape[1:])} (x_seq without T), "
            f"got {tuple(v_init.shape)}"
        )
    out_dtype = x_seq.dtype if x_seq.is_floating_point() else torch.float32
    dtype = x_seq.dtype if x_seq.dtype in _COMPUTE_DTYPES else torch.float32
    x = x_seq.to(dtype).contiguous()
    v0 = None if v_init is None else v_init.to(device=x.device, dtype=dtype).contiguous()
    with torch.autocast(x.device.type, enabled=False):
        if torch.is_grad_enabled() and (x.requires_grad or (v0 is not None and v0.requires_grad)):
            spikes, v_final = _LIFSequence.apply(x, v0, p)
        else:  # inference: no H sequence to keep
            spikes = torch.empty_like(x)
            v_final = _lif_loop(x, v0, p, spikes, None)
    return spikes.to(out_dtype), v_final


class LIF(nn.Module):
    """Multi-step LIF layer: ``[T, B, ...]`` input currents -> ``[T, B, ...]`` spikes (Eq. 7-8).

    Stateless: every forward starts from a fresh neuron (``V = V_r``), which is what multi-step
    SNN training over ``[T, B, ...]`` sequences uses; no voltage is kept between calls or batches.
    For an explicit initial state or the final voltage, call :func:`lif_multistep`.
    """

    def __init__(self, params: LIFParams | None = None) -> None:
        super().__init__()
        self.params = LIFParams() if params is None else params

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return lif_multistep(x_seq, None, self.params)[0]

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"tau={p.tau}, v_threshold={p.v_threshold}, v_reset={p.v_reset}, "
            f"decay_input={p.decay_input}, detach_reset={p.detach_reset}, lens={p.lens}, "
            f"strict_window={p.strict_window}"
        )
