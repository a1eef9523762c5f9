"""Spike-camera data layer: camera model, SpikeCV .dat files, reconstruction, datasets."""
