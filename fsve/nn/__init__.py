"""Spiking layers for FSVE: multi-step LIF neurons and the rectangular surrogate (Eq. 7-8)."""

from fsve.nn.neurons import LIF, LIFParams, lif_multistep, rect_spike

__all__ = ["LIF", "LIFParams", "lif_multistep", "rect_spike"]
