"""Frozen dataclass configs for the models and one registry of their presets.

The config alone rebuilds a model (checkpoint contract), so everything that fixes a parameter
shape is a field here, including the text vocabulary size (copied from the tokenizer with
:func:`with_vocab_size`). Nothing in this module imports torch.

Presets are small factory functions (:func:`tiny`, :func:`paper` for the SPKLIP teacher,
:func:`fsve_tiny`, :func:`fsve_paper` for the FSVE student) registered in :data:`PRESETS` under
``(kind, name)``; :func:`model_config` looks a config up by kind from a preset name, a plain
dict (:func:`fsve.models.serialize.config_from_dict`) or a config.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fsve.models.serialize import config_from_dict, config_to_dict

__all__ = [
    "COMPONENTS",
    "CONFIG_CLASSES",
    "FSVE_PRESETS",
    "PRESETS",
    "VIDEO_ENCODERS",
    "VIT_PATCH",
    "FSVEConfig",
    "TeacherConfig",
    "TextConfig",
    "attnpool_grid",
    "channel_allocation",
    "config_from_dict",
    "config_to_dict",
    "fsve_config",
    "fsve_paper",
    "fsve_tiny",
    "fsve_token_grid",
    "model_config",
    "paper",
    "preset_names",
    "teacher_config",
    "tiny",
    "with_vocab_size",
]

COMPONENTS = ("mtf", "mtf_sa", "full")  # Table 4 rows: MTF; MTF + SA; MTF + SA + STAR-Net
# Table 1 video encoders: SPKLIP's HSFE + STAR-Net; spike counts into a plain CNN; a ViT
VIDEO_ENCODERS = ("spklip", "frame_cnn", "vit")
VIT_PATCH = 8  # pixels per side of a SpikeViT patch (stride 8, no overlap)
MIN_VOCAB = 4  # the tokenizer's special tokens <pad>, <unk>, <sos>, <eos>


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def channel_allocation(frames: tuple[int, ...], total: int) -> tuple[int, ...]:
    """Output channels ``k_i`` per HSFE branch from Eq. 3: ``k_i ∝ 1 / T_i``, summing to ``total``.

    ``frames`` are the branch window lengths ``T_i`` (frames). The quotas
    ``total · (1/T_i) / Σ_j 1/T_j`` are rounded by the largest-remainder method (ties to the
    earlier branch), so a shorter window never gets fewer channels than a longer one; a branch
    whose quota rounds to 0 gets 1 channel, taken from the branch with the most.
    Example: ``T = (61, 31, 15, 7)``, ``total = 16``: quotas ``(1.02, 1.999, 4.13, 8.85)``
    -> ``(1, 2, 4, 9)``; with ``total = 64`` -> ``(4, 8, 17, 35)``.
    """
    if not frames:
        raise ValueError("channel allocation needs at least one branch")
    for t in frames:
        _positive_int("branch window length", t)
    _positive_int("total channels", total)
    if total < len(frames):
        raise ValueError(f"{total} channels cannot give each of {len(frames)} branches one")
    inv = [1.0 / t for t in frames]
    quotas = [total * x / sum(inv) for x in inv]
    k = [math.floor(q) for q in quotas]
    order = sorted(range(len(k)), key=lambda i: (-(quotas[i] - k[i]), i))
    for i in order[: total - sum(k)]:
        k[i] += 1
    for i in range(len(k)):
        if k[i] == 0:
            k[i] = 1
            k[max(range(len(k)), key=lambda j: (k[j], -j))] -= 1
    return tuple(k)


def attnpool_grid(height: int, width: int) -> tuple[int, int]:
    """Spatial grid ``(h, w)`` the MAPResNet trunk leaves for attention pooling.

    The stem's stride-2 3x3 conv (padding 1) gives ``ceil(n / 2)``; the stem avgpool and the
    three downsampling stages each floor-halve, so 240x320 -> 7x10 and 64x64 -> 2x2 (about /32).
    """
    _positive_int("height", height)
    _positive_int("width", width)

    def down(n: int) -> int:
        n = (n + 1) // 2  # stem conv1, stride 2
        for _ in range(4):  # stem avgpool, layer2-4 anti-aliased avgpool
            n //= 2
        return n

    return down(height), down(width)


@dataclass(frozen=True)
class TextConfig:
    """BERT-like text encoder (Sec. 3.4): token + position embedding, Transformer, projection."""

    vocab_size: int = 1024  # tokens incl. specials; set from the tokenizer (with_vocab_size)
    context_length: int = 32  # tokens per caption incl. <sos>/<eos>
    width: int = 256  # transformer model width
    layers: int = 4  # transformer encoder layers
    heads: int = 4  # attention heads; width % heads == 0
    embed_dim: int = 512  # D, the shared video-text embedding size
    dropout: float = 0.0  # dropout inside the transformer layers

    def __post_init__(self) -> None:
        for name in ("context_length", "width", "layers", "heads", "embed_dim"):
            _positive_int(f"text.{name}", getattr(self, name))
        _positive_int("text.vocab_size", self.vocab_size)
        if self.vocab_size < MIN_VOCAB:
            raise ValueError(
                f"text.vocab_size must be >= {MIN_VOCAB} (special tokens), got {self.vocab_size}"
            )
        if self.context_length < 2:
            raise ValueError(f"text.context_length must be >= 2 (<sos>, <eos>), got {self}")
        if self.width % self.heads:
            raise ValueError(f"text.width {self.width} is not divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"text.dropout must be in [0, 1), got {self.dropout!r}")


def _check_text(text: object, embed_dim: int) -> None:
    """A model config's ``text`` must be a :class:`TextConfig` with the model's ``embed_dim``."""
    if not isinstance(text, TextConfig):
        raise ValueError(f"text must be a TextConfig, got {type(text).__name__}")
    if text.embed_dim != embed_dim:
        raise ValueError(f"text.embed_dim {text.embed_dim} must equal embed_dim {embed_dim}")


@dataclass(frozen=True)
class TeacherConfig:
    """SPKLIP teacher: HSFE (Eq. 2-3) -> STAR-Net (Eq. 4-5), text encoder, STCL (Eq. 6).

    ``components`` selects the Table 4 ablation:

    - ``"full"``: MTF + SA + STAR-Net (MAPResNet with attention pooling, then the temporal
      Transformer over the K block features, then the mean over K).
    - ``"mtf_sa"``: MTF + SA, no STAR-Net: the same bottleneck trunk, but its final map is
      global-average-pooled and linearly projected to D (no attention pooling), and the K block
      features are averaged directly (Eq. 5 without the Transformer of Eq. 4). This mirrors the
      public reference code's ablation (plain ResNet with avgpool + fc, Transformer removed) while
      keeping the trunk equal, so only STAR-Net's two attention stages differ.
    - ``"mtf"``: as ``"mtf_sa"`` and also without the SA module: the branch outputs are
      concatenated unweighted.

    ``channel_slicing=False`` is the Table 2 ablation: every branch sees all ``block_frames``
    frames (and a temporal mask over all of them); output channels stay as Eq. 3 allocates them
    from ``branch_radii``, so only the input slicing changes.

    ``video_encoder`` replaces the whole video path by a Table 1 baseline; the text encoder,
    ``logit_scale``, loss and checkpoints stay those of SPKLIP, and the K block embeddings are
    averaged (Eq. 5, no temporal Transformer). With a baseline, ``components``,
    ``channel_slicing``, the HSFE fields (``branch_radii``, ``hsfe_channels``, ``sa_hidden``)
    and ``temporal_layers``/``temporal_heads`` are unused.

    - ``"spklip"``: HSFE + STAR-Net as above (the default).
    - ``"frame_cnn"``: frame averaging: the firing rate of each pixel over a sub-block's F
      frames (1 channel) -> 4 stages of stride-2 conv3x3-BN-ReLU, widths w, 2w, 4w, 8w
      (``w = base_width``) -> global average pool -> linear to D.
    - ``"vit"``: a conventional ViT with the F binary frames as the input channels of its
      8x8 patch embedding; width ``8 * base_width``, depth ``sum(layers)``, ``pool_heads``
      heads, MLP 4x, ``dropout``; the class token is projected to D. Needs H, W >= 8.
    """

    # input (Eq. 2)
    num_blocks: int = 5  # K sub-blocks per clip
    block_frames: int = 61  # 2r+1 frames per sub-block, odd
    block_step: int = 45  # frames between block centres (Eq. 2's step)
    height: int = 240  # pixels
    width: int = 320  # pixels
    # HSFE (Eq. 3)
    branch_radii: tuple[int, ...] = (30, 15, 7, 3)  # m = len; branch i: 2 r_i + 1 centred frames
    hsfe_channels: int = 64  # total HSFE output channels, split over branches by Eq. 3
    sa_hidden: int = 16  # hidden channels of the SA module
    channel_slicing: bool = True  # False: every branch sees the full window (Table 2)
    components: str = "full"  # "mtf" | "mtf_sa" | "full" (Table 4)
    video_encoder: str = "spklip"  # "spklip" | "frame_cnn" | "vit" (Table 1 baselines)
    # STAR-Net (Sec. 3.3)
    base_width: int = 64  # MAPResNet width; stage planes w..8w, outputs 4w..32w channels
    layers: tuple[int, ...] = (2, 2, 2, 2)  # bottleneck blocks per stage
    pool_heads: int = 8  # attention-pooling heads; 32 * base_width % pool_heads == 0
    temporal_layers: int = 2  # Transformer encoder layers over the K blocks (Eq. 4)
    temporal_heads: int = 8  # their heads; embed_dim % temporal_heads == 0
    dropout: float = 0.0  # dropout in the temporal Transformer
    embed_dim: int = 512  # D
    text: TextConfig = field(default_factory=TextConfig)

    def __post_init__(self) -> None:
        for name in (
            "num_blocks",
            "block_frames",
            "block_step",
            "height",
            "width",
            "hsfe_channels",
            "sa_hidden",
            "base_width",
            "pool_heads",
            "temporal_layers",
            "temporal_heads",
            "embed_dim",
        ):
            _positive_int(name, getattr(self, name))
        if self.block_frames % 2 == 0:
            raise ValueError(f"block_frames must be odd (2r+1), got {self.block_frames}")
        if not isinstance(self.channel_slicing, bool):
            raise ValueError(f"channel_slicing must be a bool, got {self.channel_slicing!r}")
        if self.components not in COMPONENTS:
            raise ValueError(f"components must be one of {COMPONENTS}, got {self.components!r}")
        if self.video_encoder not in VIDEO_ENCODERS:
            raise ValueError(
                f"video_encoder must be one of {VIDEO_ENCODERS}, got {self.video_encoder!r}"
            )
        radius = self.block_frames // 2
        radii = self.branch_radii
        if not radii or any(isinstance(r, bool) or not isinstance(r, int) for r in radii):
            raise ValueError(f"branch_radii must be a non-empty tuple of ints, got {radii!r}")
        if any(r < 0 or r > radius for r in radii):
            raise ValueError(f"branch_radii must lie in [0, {radius}] (block radius), got {radii}")
        if any(a <= b for a, b in itertools.pairwise(radii)):
            raise ValueError(f"branch_radii must be strictly decreasing (nested), got {radii}")
        channel_allocation(self.branch_frames, self.hsfe_channels)  # raises if infeasible
        if len(self.layers) != 4:
            raise ValueError(f"layers must give 4 stages, got {self.layers!r}")
        for n in self.layers:
            _positive_int("layers[i]", n)
        if self.video_encoder == "spklip" and (32 * self.base_width) % self.pool_heads:
            raise ValueError(
                f"pool width 32*{self.base_width} is not divisible by pool_heads {self.pool_heads}"
            )
        if self.video_encoder == "vit" and (8 * self.base_width) % self.pool_heads:
            raise ValueError(
                f"ViT width 8*{self.base_width} is not divisible by pool_heads {self.pool_heads}"
            )
        if self.embed_dim % self.temporal_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} is not divisible by temporal_heads"
                f" {self.temporal_heads}"
            )
        if self.video_encoder == "spklip" and min(attnpool_grid(self.height, self.width)) < 1:
            raise ValueError(
                f"input {self.height}x{self.width} is too small: the trunk downsamples ~32x"
            )
        if self.video_encoder == "vit" and min(self.height, self.width) < VIT_PATCH:
            raise ValueError(
                f"video_encoder='vit' needs height and width >= {VIT_PATCH} (one patch),"
                f" got {self.height}x{self.width}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        _check_text(self.text, self.embed_dim)

    @property
    def num_branches(self) -> int:
        """m, the number of MTF branches."""
        return len(self.branch_radii)

    @property
    def branch_frames(self) -> tuple[int, ...]:
        """Nominal window length ``T_i = 2 r_i + 1`` of each branch, frames."""
        return tuple(2 * r + 1 for r in self.branch_radii)

    @property
    def branch_channels(self) -> tuple[int, ...]:
        """Output channels ``k_i`` of each branch (Eq. 3, :func:`channel_allocation`)."""
        return channel_allocation(self.branch_frames, self.hsfe_channels)

    @property
    def pool_grid(self) -> tuple[int, int]:
        """Spatial grid of the attention pooling for the configured input size."""
        return attnpool_grid(self.height, self.width)


def with_vocab_size(cfg: TeacherConfig, vocab_size: int) -> TeacherConfig:
    """A copy of ``cfg`` whose text encoder has ``vocab_size`` tokens (``len(tokenizer)``)."""
    return dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, vocab_size=vocab_size))


# ---------------------------------------------------------------- FSVE student (Appendix A.5)


def fsve_token_grid(height: int, width: int, stem_stride: int, num_stages: int) -> tuple[int, int]:
    """Spatial grid ``(h, w)`` of the FSVE's last feature map, i.e. its ``N = h·w`` tokens.

    The stem's 3x3 conv (padding 1, stride ``stem_stride``) gives ``floor((n-1)/s) + 1``; the
    first stage keeps the grid and every later stage halves it the same way (``ceil(n/2)``), so
    with stride 2 and 4 stages 240x320 -> 15x20 (300 tokens) and 64x64 -> 4x4 (16 tokens).
    """
    _positive_int("height", height)
    _positive_int("width", width)
    _positive_int("stem_stride", stem_stride)
    _positive_int("number of stages", num_stages)

    def down(n: int) -> int:
        n = (n - 1) // stem_stride + 1
        for _ in range(num_stages - 1):
            n = (n - 1) // 2 + 1
        return n

    return down(height), down(width)


def _finite_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FSVEConfig:
    """FSVE student (Appendix A.5, Fig. 3): spiking MS-ResNet + spiking temporal transformer.

    The K sub-blocks are the T time steps; each step's input is the binary ``[F, H, W]`` block.
    Stem ``TDBN(conv3x3_stride(F -> stem_width))``; stage i has ``layers[i]`` MS-ResNet blocks of
    ``widths[i]`` channels (stride 1 for the first stage, 2 after); the last map's positions are
    the tokens (:func:`fsve_token_grid`) of ``attn_depth`` E-SDSA + MLP blocks (Eq. 9-11);
    firing rates of a final LIF, averaged over time and tokens, are projected to D.
    ``embed_dim`` and ``text`` default to the teacher's ``paper`` preset, so a distilled FSVE
    shares the teacher's text space.
    """

    # input (Eq. 2)
    num_blocks: int = 5  # K sub-blocks per clip = T time steps
    block_frames: int = 61  # F = 2r+1 binary frames per sub-block (stem input channels)
    height: int = 240  # pixels
    width: int = 320  # pixels
    # spiking MS-ResNet
    stem_width: int = 64  # stem output channels
    stem_stride: int = 2  # stride of the 3x3 stem conv, 1..3
    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels per stage
    layers: tuple[int, ...] = (2, 2, 2, 2)  # MS-ResNet blocks per stage (ResNet-18)
    # spiking temporal transformer (E-SDSA, Eq. 9-11)
    attn_depth: int = 2  # E-SDSA + MLP blocks; 0 = none
    attn_heads: int = 8  # heads; widths[-1] % attn_heads == 0
    mlp_ratio: int = 4  # MLP hidden = mlp_ratio * widths[-1]
    attn_scale_factor: float = 1.0  # scale = head_dim^-0.5 * attn_scale_factor (Eq. 10-11)
    sn_alpha: float = 1.0  # initial α of every SN, V_th = α·E|x| (Eq. 9)
    sn_momentum: float = 0.1  # running E|x| update rate of SN
    tdbn_alpha: float = 1.0  # TDBN weight init alpha * lif_v_threshold
    # LIF neurons (Eq. 7-8)
    lif_tau: float = 2.0  # membrane time constant, time steps (> 1)
    lif_v_threshold: float = 1.0  # V_th
    lif_v_reset: float | None = 0.0  # hard reset value; None = soft reset
    lif_decay_input: bool = True  # input divided by tau as well (SpikingJelly LIFNode)
    lif_detach_reset: bool = True  # no gradient through the reset
    lif_lens: float = 0.5  # surrogate half-width of Eq. 8 (also used by SN)
    # joint embedding
    embed_dim: int = field(default_factory=lambda: paper().embed_dim)  # D
    text: TextConfig = field(default_factory=lambda: paper().text)

    def __post_init__(self) -> None:
        for name in (
            "num_blocks",
            "block_frames",
            "height",
            "width",
            "stem_width",
            "stem_stride",
            "attn_heads",
            "mlp_ratio",
            "embed_dim",
        ):
            _positive_int(name, getattr(self, name))
        if self.stem_stride > 3:
            raise ValueError(f"stem_stride must be <= 3 (3x3 kernel), got {self.stem_stride}")
        if isinstance(self.attn_depth, bool) or not isinstance(self.attn_depth, int):
            raise ValueError(f"attn_depth must be an int >= 0, got {self.attn_depth!r}")
        if self.attn_depth < 0:
            raise ValueError(f"attn_depth must be an int >= 0, got {self.attn_depth!r}")
        if not self.widths or len(self.widths) != len(self.layers):
            raise ValueError(
                f"widths {self.widths!r} and layers {self.layers!r} must give the same"
                " non-zero number of stages"
            )
        for w in self.widths:
            _positive_int("widths[i]", w)
        for n in self.layers:
            _positive_int("layers[i]", n)
        if self.widths[-1] % self.attn_heads:
            raise ValueError(
                f"last stage width {self.widths[-1]} is not divisible by attn_heads"
                f" {self.attn_heads}"
            )
        if _finite_number("attn_scale_factor", self.attn_scale_factor) <= 0:
            raise ValueError(f"attn_scale_factor must be > 0, got {self.attn_scale_factor!r}")
        _finite_number("sn_alpha", self.sn_alpha)
        if not 0.0 < _finite_number("sn_momentum", self.sn_momentum) <= 1.0:
            raise ValueError(f"sn_momentum must lie in (0, 1], got {self.sn_momentum!r}")
        _finite_number("tdbn_alpha", self.tdbn_alpha)
        if _finite_number("lif_tau", self.lif_tau) <= 1:
            raise ValueError(f"lif_tau must be > 1 (time steps), got {self.lif_tau!r}")
        _finite_number("lif_v_threshold", self.lif_v_threshold)
        if self.lif_v_reset is not None:
            _finite_number("lif_v_reset", self.lif_v_reset)
        if _finite_number("lif_lens", self.lif_lens) <= 0:
            raise ValueError(f"lif_lens must be > 0, got {self.lif_lens!r}")
        for name in ("lif_decay_input", "lif_detach_reset"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_text(self.text, self.embed_dim)

    @property
    def token_grid(self) -> tuple[int, int]:
        """``(h, w)`` of the last feature map; ``N = h·w`` tokens (:func:`fsve_token_grid`)."""
        return fsve_token_grid(self.height, self.width, self.stem_stride, len(self.widths))

    @property
    def num_tokens(self) -> int:
        """N, tokens per time step of the spiking transformer."""
        h, w = self.token_grid
        return h * w


# ---------------------------------------------------------------- presets


def tiny() -> TeacherConfig:
    """64x64 input, small widths: forward + backward of a batch of 8 in about a second on CPU."""
    return TeacherConfig(
        height=64,
        width=64,
        hsfe_channels=16,
        sa_hidden=8,
        base_width=16,  # 8 (a 4-channel stem) learned motion far slower: 33% vs 89% val
        layers=(1, 1, 1, 1),
        pool_heads=8,
        temporal_layers=1,
        temporal_heads=4,
        embed_dim=64,
        text=TextConfig(
            vocab_size=512, context_length=32, width=64, layers=2, heads=4, embed_dim=64
        ),
    )


def paper() -> TeacherConfig:
    """The paper's sizes: 240x320, ResNet-18 layout [2,2,2,2], widths 64..2048, D = 512.

    Text width/depth and the temporal Transformer depth are not given by the paper; CLIP-like
    choices (width 512, 8 heads, 6 layers, context 77; 2 temporal layers) are used.
    """
    return TeacherConfig(
        height=240,
        width=320,
        hsfe_channels=64,
        sa_hidden=16,
        base_width=64,
        layers=(2, 2, 2, 2),
        pool_heads=8,
        temporal_layers=2,
        temporal_heads=8,
        dropout=0.1,
        embed_dim=512,
        text=TextConfig(
            vocab_size=8192,
            context_length=77,
            width=512,
            layers=6,
            heads=8,
            embed_dim=512,
            dropout=0.1,
        ),
    )


def fsve_tiny() -> FSVEConfig:
    """64x64 input, small widths, 16 tokens; text space and D of the teacher's ``tiny``."""
    teacher = tiny()
    return FSVEConfig(
        height=64,
        width=64,
        stem_width=32,
        widths=(32, 64, 128, 256),
        layers=(1, 1, 1, 1),
        attn_depth=1,
        attn_heads=8,
        mlp_ratio=2,
        embed_dim=teacher.embed_dim,
        text=teacher.text,
    )


def fsve_paper() -> FSVEConfig:
    """240x320, MS-ResNet-18 ([2,2,2,2], widths 64..512), 300 tokens, D and text of ``paper``.

    The paper gives neither the transformer depth nor heads; 2 blocks of 8 heads (as the
    teacher's temporal Transformer) and MLP ratio 4 are used.
    """
    teacher = paper()
    return FSVEConfig(
        height=teacher.height,
        width=teacher.width,
        stem_width=64,
        widths=(64, 128, 256, 512),
        layers=(2, 2, 2, 2),
        attn_depth=2,
        attn_heads=8,
        mlp_ratio=4,
        embed_dim=teacher.embed_dim,
        text=teacher.text,
    )


# One registry of every model's presets, keyed by (model kind, preset name): the kind is the
# checkpoint's ``kind`` ("teacher" for SPKLIP, "fsve" for the student).
PRESETS: dict[tuple[str, str], Callable[[], Any]] = {
    ("teacher", "tiny"): tiny,
    ("teacher", "paper"): paper,
    ("fsve", "tiny"): fsve_tiny,
    ("fsve", "paper"): fsve_paper,
}
CONFIG_CLASSES: dict[str, tuple[type, str]] = {  # kind -> (config class, name in errors)
    "teacher": (TeacherConfig, "teacher"),
    "fsve": (FSVEConfig, "FSVE"),
}


def preset_names(kind: str) -> list[str]:
    """The preset names of model ``kind`` (``"teacher"`` or ``"fsve"``), in registry order."""
    if kind not in CONFIG_CLASSES:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {list(CONFIG_CLASSES)}")
    return [name for k, name in PRESETS if k == kind]


def model_config(kind: str, spec: str | Mapping[str, Any] | Any) -> Any:
    """The config of model ``kind`` from a preset name, a plain dict (strict keys) or a config.

    The one lookup of :data:`PRESETS`; :func:`teacher_config` and :func:`fsve_config` are it for
    one kind.
    """
    names = preset_names(kind)
    cls, what = CONFIG_CLASSES[kind]
    if isinstance(spec, cls):
        return spec
    if isinstance(spec, str):
        if spec not in names:
            raise ValueError(f"unknown {what} preset {spec!r}; expected one of {names}")
        return PRESETS[kind, spec]()
    if isinstance(spec, Mapping):
        return config_from_dict(cls, spec)
    raise ValueError(f"cannot make a {cls.__name__} from {type(spec).__name__}")


def teacher_config(spec: str | Mapping[str, Any] | TeacherConfig) -> TeacherConfig:
    """A ``TeacherConfig`` from a preset name, a plain dict (strict keys) or a config."""
    return model_config("teacher", spec)


def fsve_config(spec: str | Mapping[str, Any] | FSVEConfig) -> FSVEConfig:
    """An ``FSVEConfig`` from a preset name, a plain dict (strict keys) or a config."""
    return model_config("fsve", spec)


# the FSVE presets by name (the reports read them so)
FSVE_PRESETS = {name: PRESETS["fsve", name] for name in preset_names("fsve")}
