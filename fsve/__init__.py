"""fsve: spiking neural networks for spike-camera video, from data to neuromorphic hardware."""

__version__ = "0.1.0"
