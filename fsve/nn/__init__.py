"""Spiking layers for FSVE: LIF (Eq. 7-8), TDBN, MS-ResNet blocks, SN and E-SDSA (Eq. 9-11)."""

from fsve.nn.attention import (
    ESDSA,
    SN,
    AttentionSN,
    SpikeMatmul,
    SpikeProjection,
    SpikingMLP,
    SpikingTransformerBlock,
    reparam_spike,
)
from fsve.nn.blocks import ConvTDBN, MSBlock, ms_stage, seq_forward
from fsve.nn.neurons import LIF, LIFParams, lif_multistep, rect_spike
from fsve.nn.norm import TDBN1d, TDBN2d

__all__ = [
    "ESDSA",
    "LIF",
    "SN",
    "AttentionSN",
    "ConvTDBN",
    "LIFParams",
    "MSBlock",
    "SpikeMatmul",
    "SpikeProjection",
    "SpikingMLP",
    "SpikingTransformerBlock",
    "TDBN1d",
    "TDBN2d",
    "lif_multistep",
    "ms_stage",
    "rect_spike",
    "reparam_spike",
    "seq_forward",
]
