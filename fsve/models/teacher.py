"""SPKLIP, the ANN teacher: HSFE (Sec. 3.2) -> STAR-Net (Sec. 3.3), plus the text encoder.

Shapes: a clip is ``spikes [B, K, F, H, W]`` (K sub-blocks of Eq. 2, ``F = 2r+1`` binary frames
each). HSFE treats the F frames of one sub-block as input channels and returns the coarse
estimate ``Ĩ`` ``[B, K, C_h, H, W]`` (``C_h = Σ k_i``); MAPResNet maps each block to ``[B, K, D]``
(the K blocks are batched as ``B*K`` images); the temporal Transformer (Eq. 4) and the mean over
K (Eq. 5) give the video embedding ``[B, D]``. Embeddings are returned unnormalised; the STCL
loss (``fsve.train.losses``) normalises them.

HSFE, per sub-block ``X = B_block [N, F, H, W]`` with centre frame ``c = F // 2``:

- MTF branch i sees the nested window ``X[:, c - r_i : c + r_i + 1]`` (``T_i = 2 r_i + 1``
  frames; all F frames when ``channel_slicing=False``), multiplies frame t by a learnable
  temporal mask ``M_i[t]`` (init 1), then ``H_i = ReLU(BN(Conv3x3_{T_i -> k_i}(M_i ∘ X)))``.
  ``k_i ∝ 1/T_i`` (Eq. 3, :func:`fsve.models.config.channel_allocation`): short windows (fast
  motion) get more channels, long windows (static regions) fewer.
- SA: ``[W_1..W_m] = σ(Conv1x1(ReLU(Conv3x3(cat(H_1..H_m)))))``, one weight map per branch and
  pixel ``[N, m, H, W]``, broadcast over that branch's ``k_i`` channels; output
  ``Ĩ = cat(W_i ∘ H_i)``. Without SA (``components="mtf"``) ``Ĩ = cat(H_i)``.

Table 1 baselines (``TeacherConfig.video_encoder``) replace HSFE + STAR-Net by one module that
maps a sub-block ``[N, F, H, W]`` to ``[N, D]`` (:class:`FrameCountCNN`, :class:`SpikeViT`);
the K block embeddings are averaged (Eq. 5). Text encoder, loss and checkpoints are unchanged.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsve.models.config import VIT_PATCH, TeacherConfig
from fsve.models.text import TextEncoder
from fsve.nn.init import temporal_basis_init_

__all__ = [
    "HSFE",
    "SPKLIP",
    "AttentionPool2d",
    "AvgPoolHead",
    "Bottleneck",
    "FrameCountCNN",
    "MAPResNet",
    "SpatialAttention",
    "SpikeViT",
    "TemporalTransformer",
    "VideoTextModel",
    "check_clip_shape",
    "hsfe_block_features",
    "parameter_counts",
    "part_parameter_counts",
    "temporal_correlation",
]

LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP's initial temperature τ = 0.07
LOGIT_SCALE_MAX = math.log(100.0)  # CLIP clamps 1/τ to at most 100


class SpatialAttention(nn.Module):
    """SA of HSFE: branch maps ``cat(H_i) [N, C_h, H, W]`` -> weights ``[N, m, H, W]``."""

    def __init__(self, in_channels: int, hidden: int, branches: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, branches, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv2(F.relu(self.conv1(x))))


class HSFE(nn.Module):
    """Hierarchical Spike Feature Extractor (Eq. 2-3 + SA): ``[N, F, H, W]`` -> ``[N, C_h, H, W]``.

    ``N`` is any batch of single sub-blocks (SPKLIP passes ``B*K``).
    """

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        centre = cfg.block_frames // 2
        if cfg.channel_slicing:
            windows = [(centre - r, centre + r + 1) for r in cfg.branch_radii]
        else:
            windows = [(0, cfg.block_frames)] * cfg.num_branches
        self.block_frames = cfg.block_frames
        self.windows: tuple[tuple[int, int], ...] = tuple(windows)  # [start, stop) frames
        self.branch_channels: tuple[int, ...] = cfg.branch_channels  # k_i
        self.out_channels = sum(self.branch_channels)
        # learnable temporal mask M_i, one weight per frame of the branch window
        self.masks = nn.ParameterList(
            [nn.Parameter(torch.ones(stop - start)) for start, stop in self.windows]
        )
        self.branches = nn.ModuleList(
            [
                nn.Sequential(
                    OrderedDict(
                        conv=nn.Conv2d(stop - start, k, 3, padding=1, bias=False),
                        bn=nn.BatchNorm2d(k),
                        relu=nn.ReLU(),
                    )
                )
                for (start, stop), k in zip(self.windows, self.branch_channels, strict=True)
            ]
        )
        self.sa = (
            SpatialAttention(self.out_channels, cfg.sa_hidden, cfg.num_branches)
            if cfg.components != "mtf"
            else None
        )
        self.reset_branch_weights()

    def reset_branch_weights(self) -> None:
        """Initialise each branch conv with a temporal basis (:func:`temporal_basis_init_`).

        Why not random in time: Eq. 3 gives the long windows the fewest channels (``tiny``: 1
        of 16 for the 61-frame branch, 2 for the 31-frame one), and on slow motion only the
        long windows see the object move. With a random temporal profile per filter those 3
        channels were motion-selective or not by the luck of the seed, and the teacher took
        off late or not at all (test Top-1 94.2 / 38.3 / 41.7% at seeds 0/1/2). Giving every
        branch's first channel a late-minus-early ramp removes the lottery (docs/training.md).
        """
        for branch in self.branches:
            temporal_basis_init_(branch.conv.weight)

    def forward_branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """MTF: the branch maps ``H_i = Conv_{k_i}(M_i ∘ B_block)``, each ``[N, k_i, H, W]``."""
        # conv(M_i ∘ X) = conv_{W_i ∘ M_i}(X): each mask folds into its conv's input channels,
        # and the branches run as ONE conv over all F frames whose weights are zero outside
        # each branch's window. Same outputs, but no T_i-frame copies, no gradient w.r.t. the
        # input, and one wide weight gradient instead of slow 1-channel ones (~3x faster).
        parts = []
        for (start, stop), mask, branch in zip(
            self.windows, self.masks, self.branches, strict=True
        ):
            weight = branch.conv.weight * mask.view(1, -1, 1, 1)
            parts.append(F.pad(weight, (0, 0, 0, 0, start, self.block_frames - stop)))
        y = F.conv2d(x, torch.cat(parts), padding=1)
        out = []
        for h, branch in zip(y.split(self.branch_channels, dim=1), self.branches, strict=True):
            out.append(branch.relu(branch.bn(h)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.block_frames:
            raise ValueError(f"HSFE expects [N, {self.block_frames}, H, W], got {tuple(x.shape)}")
        hs = self.forward_branches(x)
        if self.sa is not None:
            w = self.sa(torch.cat(hs, dim=1))  # [N, m, H, W]
            hs = [h * w[:, i : i + 1] for i, h in enumerate(hs)]
        return torch.cat(hs, dim=1)  # [N, C_h, H, W]


class Bottleneck(nn.Module):
    """CLIP ModifiedResNet bottleneck: 1x1, 3x3, avgpool(stride), 1x1 (4x expansion) + shortcut.

    Downsampling is anti-aliased: an average pool instead of a strided conv, on both paths.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride > 1 or inplanes != out:
            self.downsample = nn.Sequential(
                OrderedDict(
                    pool=nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                    conv=nn.Conv2d(inplanes, out, 1, bias=False),
                    bn=nn.BatchNorm2d(out),
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(self.avgpool(y)))
        return F.relu(y + identity)


class AttentionPool2d(nn.Module):
    """Multi-head attention pooling (CLIP): map ``[N, C, h, w]`` -> ``[N, out_dim]``.

    Tokens are the ``h*w`` grid cells plus their mean (the query), each with a learnable
    positional embedding; the grid is fixed by the configured input size.
    """

    def __init__(self, grid: tuple[int, int], width: int, heads: int, out_dim: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"attention-pool width {width} is not divisible by heads {heads}")
        self.grid, self.heads = tuple(grid), heads
        self.positional_embedding = nn.Parameter(
            torch.randn(grid[0] * grid[1] + 1, width) / width**0.5
        )
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, out_dim)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            nn.init.normal_(lin.weight, std=width**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if (h, w) != self.grid:
            raise ValueError(
                f"attention pooling was built for a {self.grid} grid, got {(h, w)}:"
                " the input size differs from the config's height/width"
            )
        tokens = x.flatten(2).transpose(1, 2)  # [N, h*w, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # [N, 1+h*w, C]
        tokens = tokens + self.positional_embedding
        hd = c // self.heads
        q = self.q_proj(tokens[:, :1]).view(n, 1, self.heads, hd).transpose(1, 2)  # [N, nh, 1, hd]
        k = self.k_proj(tokens).view(n, -1, self.heads, hd).transpose(1, 2)  # [N, nh, L, hd]
        v = self.v_proj(tokens).view(n, -1, self.heads, hd).transpose(1, 2)  # [N, nh, L, hd]
        out = F.scaled_dot_product_attention(q, k, v)  # [N, nh, 1, hd]
        return self.c_proj(out.transpose(1, 2).reshape(n, c))


class AvgPoolHead(nn.Module):
    """Ablation head (no STAR-Net): global average pool + linear, ``[N, C, h, w]`` -> ``[N, D]``."""

    def __init__(self, width: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.mean(dim=(2, 3)))


class MAPResNet(nn.Module):
    """Modified Attention-Pooling ResNet (Sec. 3.3): ``[N, C_h, H, W]`` -> ``[N, D]``.

    Stem of three 3x3 convs (the first stride 2) and a 2x2 avgpool; four bottleneck stages
    (planes w, 2w, 4w, 8w; outputs 4w..32w channels; stages 2-4 halve the grid); then attention
    pooling (``pool="attention"``) or, for the no-STAR-Net ablations, average pooling.
    """

    def __init__(self, cfg: TeacherConfig, in_channels: int, pool: str = "attention") -> None:
        super().__init__()
        w = cfg.base_width
        half = max(w // 2, 1)
        self.stem = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, half, 3, stride=2, padding=1, bias=False),
                bn1=nn.BatchNorm2d(half),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(half, half, 3, padding=1, bias=False),
                bn2=nn.BatchNorm2d(half),
                relu2=nn.ReLU(),
                conv3=nn.Conv2d(half, w, 3, padding=1, bias=False),
                bn3=nn.BatchNorm2d(w),
                relu3=nn.ReLU(),
                avgpool=nn.AvgPool2d(2),
            )
        )
        inplanes = w
        stages = []
        for i, blocks in enumerate(cfg.layers):
            planes = w * 2**i
            seq = [Bottleneck(inplanes, planes, stride=1 if i == 0 else 2)]
            inplanes = planes * Bottleneck.expansion
            seq += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*seq))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_width = inplanes  # 32 * base_width
        if pool == "attention":
            self.pool: nn.Module = AttentionPool2d(
                cfg.pool_grid, inplanes, cfg.pool_heads, cfg.embed_dim
            )
        elif pool == "avg":
            self.pool = AvgPoolHead(inplanes, cfg.embed_dim)
        else:
            raise ValueError(f"pool must be 'attention' or 'avg', got {pool!r}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk: ``[N, C_h, H, W]`` -> final map ``[N, 32w, ~H/32, ~W/32]``."""
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Pooling: final map -> ``[N, D]``."""
        return self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def pre_norm_encoder(width: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    """A batch-first pre-norm GELU transformer encoder (FFN 4x width) with a final LayerNorm."""
    layer = nn.TransformerEncoderLayer(
        d_model=width,
        nhead=heads,
        dim_feedforward=4 * width,
        dropout=dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(
        layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
    )


class TemporalTransformer(nn.Module):
    """Eq. 4: pre-norm Transformer encoder over the K block features ``[B, K, D]`` -> same."""

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.positional_embedding = nn.Parameter(torch.randn(cfg.num_blocks, d) * 0.01)
        self.encoder = pre_norm_encoder(d, cfg.temporal_heads, cfg.temporal_layers, cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(
                f"temporal Transformer was built for {self.positional_embedding.shape[0]} blocks,"
                f" got {x.shape[1]}"
            )
        return self.encoder(x + self.positional_embedding)


class FrameCountCNN(nn.Module):
    """Table 1 frame-averaging baseline: sub-block ``[N, F, H, W]`` -> ``[N, D]``.

    The input is the firing-rate image ``Σ_t X[:, t] / F`` ``[N, 1, H, W]`` (spike counts over
    the F frames, so the order of the frames is lost), then a plain CNN: ``stages`` of stride-2
    conv3x3-BN-ReLU with widths w, 2w, 4w, 8w (``w = base_width``; ~H/16 x W/16 left), global
    average pooling and ``proj``, a linear map to D.
    """

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        self.block_frames = cfg.block_frames
        widths = [cfg.base_width * 2**i for i in range(4)]
        stages = []
        for c_in, c_out in zip([1, *widths[:-1]], widths, strict=True):
            stages.append(
                nn.Sequential(
                    OrderedDict(
                        conv=nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                        bn=nn.BatchNorm2d(c_out),
                        relu=nn.ReLU(),
                    )
                )
            )
        self.stages = nn.Sequential(*stages)
        self.proj = nn.Linear(widths[-1], cfg.embed_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, F, H, W]`` spikes -> final map ``[N, 8w, ~H/16, ~W/16]``."""
        if x.ndim != 4 or x.shape[1] != self.block_frames:
            raise ValueError(
                f"FrameCountCNN expects [N, {self.block_frames}, H, W], got {tuple(x.shape)}"
            )
        rate = x.mean(dim=1, keepdim=True)  # [N, 1, H, W], spike count / F
        return self.stages(rate)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Final map -> ``[N, D]``: global average pool, then ``proj``."""
        return self.proj(x.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class SpikeViT(nn.Module):
    """Table 1 conventional image encoder adapted to spikes: a ViT, sub-block ``[N, F, H, W]``
    -> ``[N, D]``.

    ``patch_embed`` is an 8x8 stride-8 conv whose input channels are the F binary frames (so the
    frame order is seen only through its weights); a class token and a learned positional
    embedding over the ``H//8 x W//8`` grid (+1) are added; a pre-norm Transformer encoder
    (``8 * base_width`` wide, ``sum(layers)`` layers, ``pool_heads`` heads, GELU MLP 4x,
    ``dropout``) with a final LayerNorm; ``proj`` maps the class token to D. Pixels beyond the
    last full patch are ignored. Weights are drawn ViT-style (truncated normal, std 0.02), which
    also gives every layer its own draw (``nn.TransformerEncoder`` deep-copies one layer).
    """

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        width = 8 * cfg.base_width
        self.block_frames = cfg.block_frames
        self.grid = (cfg.height // VIT_PATCH, cfg.width // VIT_PATCH)  # (h, w) patches
        self.patch_embed = nn.Conv2d(cfg.block_frames, width, VIT_PATCH, stride=VIT_PATCH)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(
            torch.zeros(self.grid[0] * self.grid[1] + 1, width)
        )
        self.encoder = pre_norm_encoder(width, cfg.pool_heads, sum(cfg.layers), cfg.dropout)
        self.proj = nn.Linear(width, cfg.embed_dim, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.class_embedding, self.positional_embedding):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.MultiheadAttention):
                nn.init.trunc_normal_(m.in_proj_weight, std=0.02)
                nn.init.zeros_(m.in_proj_bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, F, H, W]`` spikes -> normalised tokens ``[N, 1 + h*w, 8w]`` (class token first)."""
        if x.ndim != 4 or x.shape[1] != self.block_frames:
            raise ValueError(
                f"SpikeViT expects [N, {self.block_frames}, H, W], got {tuple(x.shape)}"
            )
        y = self.patch_embed(x)  # [N, 8w, h, w]
        if tuple(y.shape[2:]) != self.grid:
            raise ValueError(
                f"SpikeViT was built for a {self.grid} patch grid, got {tuple(y.shape[2:])}:"
                " the input size differs from the config's height/width"
            )
        tokens = y.flatten(2).transpose(1, 2)  # [N, h*w, 8w]
        cls = self.class_embedding.expand(tokens.shape[0], 1, -1)  # [N, 1, 8w]
        tokens = torch.cat([cls, tokens], dim=1) + self.positional_embedding  # [N, 1+h*w, 8w]
        return self.encoder(tokens)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens -> ``[N, D]``: ``proj`` of the class token."""
        return self.proj(x[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


VIDEO_BASELINES: dict[str, type[nn.Module]] = {"frame_cnn": FrameCountCNN, "vit": SpikeViT}


def check_clip_shape(spikes: torch.Tensor, cfg: Any) -> None:
    """Raise ``ValueError`` unless ``spikes`` is ``[B, K, 2r+1, H, W]`` of a model config."""
    want = (cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    if spikes.ndim != 5 or tuple(spikes.shape[1:]) != want:
        raise ValueError(
            f"spikes must be [B, K, 2r+1, H, W] = [B, {', '.join(map(str, want))}],"
            f" got {tuple(spikes.shape)}"
        )


class VideoTextModel(nn.Module):
    """The CLIP forward of SPKLIP and FSVE: subclasses set text, logit_scale, encode_video."""

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[B, L]`` -> text embedding ``[B, D]``."""
        return self.text(tokens)

    def scale(self) -> torch.Tensor:
        """The logit multiplier ``1/τ = exp(logit_scale)``, with the exponent clamped at log 100."""
        return self.logit_scale.clamp(max=LOGIT_SCALE_MAX).exp()

    def forward(
        self, spikes: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(video_emb [B, D], text_emb [B', D], 1/τ scalar)``, the inputs of ``stcl_loss``."""
        return self.encode_video(spikes), self.encode_text(tokens), self.scale()


class SPKLIP(VideoTextModel):
    """SPKLIP teacher: video ``[B, K, F, H, W]`` and tokens ``[B, L]`` -> embeddings ``[B, D]``.

    Submodules: ``hsfe`` (Eq. 2-3 + SA), ``backbone`` (MAPResNet), ``temporal`` (Eq. 4; ``None``
    in the ``"mtf"``/``"mtf_sa"`` ablations, whose backbone pools by average), ``text`` and the
    scalar ``logit_scale`` (log of 1/τ, init log(1/0.07)). With a Table 1 baseline
    (``cfg.video_encoder`` ``"frame_cnn"`` or ``"vit"``), ``hsfe`` and ``temporal`` are ``None``
    and ``backbone`` is the :class:`FrameCountCNN` or :class:`SpikeViT` applied per sub-block.
    """

    def __init__(self, cfg: TeacherConfig) -> None:
        super().__init__()
        if not isinstance(cfg, TeacherConfig):
            raise ValueError(f"SPKLIP needs a TeacherConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.hsfe: HSFE | None
        self.temporal: TemporalTransformer | None
        if cfg.video_encoder == "spklip":
            # keep this order: it fixes the seeded init and the state_dict of checkpoints
            full = cfg.components == "full"
            self.hsfe = HSFE(cfg)
            self.backbone: nn.Module = MAPResNet(
                cfg, self.hsfe.out_channels, "attention" if full else "avg"
            )
            self.temporal = TemporalTransformer(cfg) if full else None
        else:
            self.hsfe = None
            self.backbone = VIDEO_BASELINES[cfg.video_encoder](cfg)
            self.temporal = None
        self.text = TextEncoder(cfg.text)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

    def _check_spikes(self, spikes: torch.Tensor) -> torch.Tensor:
        check_clip_shape(spikes, self.cfg)
        return spikes.to(self.logit_scale.dtype)

    def _require_hsfe(self, method: str) -> HSFE:
        if self.hsfe is None:
            raise ValueError(
                f"SPKLIP.{method} needs HSFE features, but this model has no HSFE:"
                f" video_encoder={self.cfg.video_encoder!r}"
            )
        return self.hsfe

    def forward_features(self, spikes: torch.Tensor) -> torch.Tensor:
        """HSFE coarse estimates per block: ``[B, K, F, H, W]`` -> ``[B, K, C_h, H, W]``."""
        hsfe = self._require_hsfe("forward_features")
        x = self._check_spikes(spikes)
        b, k = x.shape[:2]
        y = hsfe(x.flatten(0, 1))  # [B*K, C_h, H, W]
        return y.unflatten(0, (b, k))

    def forward_blocks(self, features: torch.Tensor) -> torch.Tensor:
        """MAPResNet per block: ``[B, K, C_h, H, W]`` -> ``[B, K, D]`` (before Eq. 4)."""
        self._require_hsfe("forward_blocks")
        b, k = features.shape[:2]
        return self.backbone(features.flatten(0, 1)).unflatten(0, (b, k))  # [B, K, D]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """HSFE features ``[B, K, C_h, H, W]`` -> video embedding ``[B, D]`` (Eq. 4-5)."""
        self._require_hsfe("forward_head")
        x = self.forward_blocks(features)
        if self.temporal is not None:
            x = self.temporal(x)  # [B, K, D]
        return x.mean(dim=1)  # Eq. 5

    def encode_blocks(self, spikes: torch.Tensor) -> torch.Tensor:
        """Per-block embeddings ``[B, K, D]`` whose mean over K is the video embedding.

        SPKLIP: after the temporal Transformer (Eq. 4) when it has one; baselines: the baseline
        applied to each sub-block.
        """
        if self.hsfe is not None:
            x = self.forward_blocks(self.forward_features(spikes))
            return self.temporal(x) if self.temporal is not None else x
        x = self._check_spikes(spikes)
        b, k = x.shape[:2]
        return self.backbone(x.flatten(0, 1)).unflatten(0, (b, k))  # [B, K, D]

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spike clip ``[B, K, F, H, W]`` (bool or float) -> video embedding ``[B, D]``."""
        if self.hsfe is None:
            return self.encode_blocks(spikes).mean(dim=1)  # Eq. 5
        return self.forward_head(self.forward_features(spikes))


def hsfe_block_features(model: SPKLIP, spikes: torch.Tensor) -> torch.Tensor:
    """The K HSFE feature vectors of Fig. 5: spatial mean of ``Ĩ`` per block, ``[B, K, C_h]``."""
    return model.forward_features(spikes).mean(dim=(3, 4))


def temporal_correlation(block_features: torch.Tensor) -> torch.Tensor:
    """Fig. 5 analog: cosine similarity of the "dynamic-only" block vectors, ``[B, K, K]``.

    ``block_features [B, K, C]``; the mean over K (the static part, ``V_avg``) is subtracted first.
    """
    if block_features.ndim != 3:
        raise ValueError(f"block features must be [B, K, C], got {tuple(block_features.shape)}")
    v = block_features - block_features.mean(dim=1, keepdim=True)
    v = F.normalize(v, dim=-1)
    return v @ v.transpose(1, 2)


def parameter_counts(model: SPKLIP) -> dict[str, int]:
    """Trainable parameters per part: hsfe, backbone, temporal, text, logit_scale, total.

    ``hsfe`` and ``temporal`` are 0 where the model has none (ablations, Table 1 baselines).
    """

    parts = {"hsfe": model.hsfe, "backbone": model.backbone, "temporal": model.temporal}
    return part_parameter_counts(model, parts)


def part_parameter_counts(
    model: VideoTextModel, parts: dict[str, nn.Module | None]
) -> dict[str, int]:
    """Parameters of each of ``parts`` (``None``: 0), ``model.text``, ``logit_scale``, total."""

    def count(m: nn.Module | None) -> int:
        return 0 if m is None else sum(p.numel() for p in m.parameters())

    counts = {name: count(m) for name, m in parts.items()}
    counts["text"] = count(model.text)
    counts["logit_scale"] = model.logit_scale.numel()
    counts["total"] = sum(counts.values())
    return counts
