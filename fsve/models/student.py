"""FSVE, the full-spiking visual encoder student (Appendix A.5, Fig. 3), with SPKLIP's API.

Shapes: a clip ``spikes [B, K, F, H, W]`` (bool or float 0/1) becomes the time-first sequence
``[T=K, B, F, H, W]``: each sub-block is one time step and its F binary frames are the input
channels, so the first layer is spike-driven (its conv only accumulates). Then::

    stem      TDBN(conv3x3_s(F -> C0))                       membrane [T, B, C0, H/s, W/s]
    stages    MS-ResNet blocks (LIF inside; Eq. 7-8)        membrane [T, B, C, h, w]
    tokens    spatial positions of the last map              membrane [T, B, N = h·w, C]
    blocks    E-SDSA + spiking MLP (Eq. 9-11)                membrane [T, B, N, C]
    final LIF                                                spikes   [T, B, N, C]  (features)
    head      mean over T and N (firing rates) -> Linear     [B, D]

The spiking temporal transformer's LIFs integrate over the T = K sub-blocks (the temporal
dynamics), while its attention mixes the N spatial tokens within each time step. No positional
embedding is added: the tokens come from a conv map and are averaged at the end.

Every ``nn.Conv2d``, ``nn.Linear`` and :class:`~fsve.nn.attention.SpikeMatmul` of the visual
encoder reads binary spikes, with ONE documented exception (:data:`SPIKE_DRIVEN_EXCEPTIONS`): the
final projection ``proj`` reads firing rates (averages of spikes). Since it is linear,
``proj(mean(S)) = mean(proj(S))`` exactly, so it equals a spike-driven accumulation followed by
an average; :func:`spike_driven_report` checks all of this on real inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from fsve.models.config import FSVEConfig, fsve_config, fsve_paper, fsve_tiny
from fsve.models.teacher import (
    LOGIT_SCALE_INIT,
    VideoTextModel,
    check_clip_shape,
    part_parameter_counts,
)
from fsve.models.text import TextEncoder
from fsve.nn.attention import SpikeMatmul, SpikingTransformerBlock
from fsve.nn.blocks import ConvTDBN, ms_stage
from fsve.nn.init import temporal_basis_init_
from fsve.nn.neurons import LIF, LIFParams

__all__ = [
    "FSVE",
    "SPIKE_DRIVEN_EXCEPTIONS",
    "FSVEConfig",
    "SpikingVisualEncoder",
    "build_fsve",
    "calibrate_statistics",
    "fsve_config",
    "fsve_paper",
    "fsve_tiny",
    "lif_params",
    "parameter_counts",
    "spike_driven_report",
]

# modules of SpikingVisualEncoder allowed non-binary inputs: the rate-coded projection to D
SPIKE_DRIVEN_EXCEPTIONS = ("proj",)


def lif_params(cfg: FSVEConfig) -> LIFParams:
    """The LIF parameters of every LIF layer of the FSVE (Eq. 7-8)."""
    return LIFParams(
        tau=cfg.lif_tau,
        v_threshold=cfg.lif_v_threshold,
        v_reset=cfg.lif_v_reset,
        decay_input=cfg.lif_decay_input,
        detach_reset=cfg.lif_detach_reset,
        lens=cfg.lif_lens,
    )


class SpikingVisualEncoder(nn.Module):
    """Spike clip ``[B, K, F, H, W]`` -> video embedding ``[B, D]`` (see the module docstring).

    Submodules: ``stem`` (ConvTDBN), ``stages`` (one ``nn.Sequential`` of MS-ResNet blocks per
    stage), ``blocks`` (spiking transformer blocks), ``final_lif``, ``proj`` (Linear C -> D).
    """

    def __init__(self, cfg: FSVEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p = lif_params(cfg)
        a = cfg.tdbn_alpha
        self.stem = ConvTDBN(
            cfg.block_frames, cfg.stem_width, 3, cfg.stem_stride, a, cfg.lif_v_threshold
        )
        temporal_basis_init_(self.stem.conv.weight)  # the stem reads the F raw frames
        stages = []
        in_ch = cfg.stem_width
        for i, (width, blocks) in enumerate(zip(cfg.widths, cfg.layers, strict=True)):
            stages.append(ms_stage(in_ch, width, blocks, 1 if i == 0 else 2, p, a))
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.width = in_ch  # C of the tokens
        self.blocks = nn.Sequential(
            *(
                SpikingTransformerBlock(
                    in_ch,
                    cfg.attn_heads,
                    cfg.mlp_ratio,
                    p,
                    a,
                    cfg.sn_alpha,
                    cfg.sn_momentum,
                    cfg.attn_scale_factor,
                )
                for _ in range(cfg.attn_depth)
            )
        )
        self.final_lif = LIF(p)
        self.proj = nn.Linear(in_ch, cfg.embed_dim)

    def check_spikes(self, spikes: torch.Tensor) -> torch.Tensor:
        """Validate ``[B, K, F, H, W]`` and return it time-first as float ``[K, B, F, H, W]``."""
        check_clip_shape(spikes, self.cfg)
        if spikes.is_complex():
            raise ValueError(f"spikes must be bool or real, got {spikes.dtype}")
        dtype = self.proj.weight.dtype
        return spikes.transpose(0, 1).to(dtype)  # [T=K, B, F, H, W]

    def forward_membrane(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spike clip -> membrane tokens after the transformer, ``[T, B, N, C]`` (real)."""
        x = self.stem(self.check_spikes(spikes))  # [T, B, C0, H', W']
        for stage in self.stages:
            x = stage(x)  # [T, B, C, h, w]
        u = x.flatten(3).transpose(2, 3)  # [T, B, N = h*w, C]
        return self.blocks(u)

    def forward_features(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spike clip ``[B, K, F, H, W]`` -> output spikes of the final LIF ``[T, B, N, C]``."""
        return self.final_lif(self.forward_membrane(spikes))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, N, C]`` -> ``[B, D]``: firing rate per channel, then ``proj``."""
        if features.ndim != 4 or features.shape[-1] != self.width:
            raise ValueError(
                f"features must be [T, B, N, {self.width}], got {tuple(features.shape)}"
            )
        return self.proj(features.mean(dim=(0, 2)))  # rates [B, C] -> [B, D]

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(spikes))


class FSVE(VideoTextModel):
    """FSVE student with the same API as the SPKLIP teacher.

    ``visual`` (:class:`SpikingVisualEncoder`), ``text`` (a :class:`TextEncoder`, so a
    checkpoint is self-contained for zero-shot and retrieval; copied from the teacher and frozen
    during distillation) and the scalar ``logit_scale`` (log 1/τ, init log(1/0.07)).
    """

    def __init__(self, cfg: FSVEConfig) -> None:
        super().__init__()
        if not isinstance(cfg, FSVEConfig):
            raise ValueError(f"FSVE needs an FSVEConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.visual = SpikingVisualEncoder(cfg)
        self.text = TextEncoder(cfg.text)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

    def forward_features(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spike clip ``[B, K, F, H, W]`` -> final spikes ``[T, B, N, C]``."""
        return self.visual.forward_features(spikes)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Final spikes ``[T, B, N, C]`` -> video embedding ``[B, D]``."""
        return self.visual.forward_head(features)

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spike clip ``[B, K, F, H, W]`` (bool or float) -> video embedding ``[B, D]``."""
        return self.visual(spikes)


def build_fsve(config: Mapping[str, Any] | FSVEConfig | str) -> FSVE:
    """An :class:`FSVE` from a config dict (strict keys: unknown ones raise ``ValueError``)."""
    return FSVE(fsve_config(config))


def calibrate_statistics(model: nn.Module, spikes: torch.Tensor) -> nn.Module:
    """Set BN/TDBN running statistics and SN thresholds to those of the batch, then eval.

    An untrained FSVE in eval mode is silent (running statistics at their init); one
    train-mode forward with momentum 1, without gradients, makes it spike as a trained network
    would on these inputs. Used to profile or export untrained models in tests and benchmarks.
    """
    saved = {}
    for m in model.modules():
        if isinstance(getattr(m, "momentum", None), float):
            saved[m] = m.momentum
            m.momentum = 1.0
    model.train()
    try:
        with torch.no_grad():
            model.encode_video(spikes)
    finally:
        for m, momentum in saved.items():
            m.momentum = momentum
    return model.eval()


def parameter_counts(model: FSVE) -> dict[str, int]:
    """Trainable parameters per part: stem, stages, transformer, proj, text, logit_scale, total."""

    v = model.visual
    parts = {"stem": v.stem, "stages": v.stages, "transformer": v.blocks, "proj": v.proj}
    return part_parameter_counts(model, parts)


def _is_binary(t: torch.Tensor) -> bool:
    if t.dtype == torch.bool:
        return True
    return bool(((t == 0) | (t == 1)).all())


def spike_driven_report(model: nn.Module, spikes: torch.Tensor) -> list[str]:
    """Names of the visual encoder's Conv2d, Linear and SpikeMatmul modules fed non-binary input.

    ``model`` is an :class:`FSVE` (names start with ``visual.``) or a
    :class:`SpikingVisualEncoder`. Runs one forward of ``spikes [B, K, F, H, W]`` without
    gradients, in the model's current train/eval mode, with a forward pre-hook on every such
    module; afterwards the hooks are removed and every buffer (running statistics) is restored,
    so the model is unchanged. Use train mode for an untrained model: its eval-mode running
    statistics are not calibrated yet and it may not spike at all (a silent network is trivially
    binary). For a correct FSVE the result is exactly :data:`SPIKE_DRIVEN_EXCEPTIONS`
    (prefixed), in forward order.
    """
    if isinstance(model, FSVE):
        visual, prefix = model.visual, "visual."
    elif isinstance(model, SpikingVisualEncoder):
        visual, prefix = model, ""
    else:
        raise ValueError(f"expected an FSVE or SpikingVisualEncoder, got {type(model).__name__}")
    offenders: list[str] = []
    handles = []

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if not all(_is_binary(t) for t in tensors) and name not in offenders:
                offenders.append(name)

        return hook

    buffers = [(b, b.clone()) for b in visual.buffers()]
    try:
        for name, m in visual.named_modules():
            if isinstance(m, nn.Conv2d | nn.Linear | SpikeMatmul):
                handles.append(m.register_forward_pre_hook(hook_for(prefix + name)))
        with torch.no_grad():
            visual(spikes)
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return offenders
