"""Neuromorphic targets: the per-core and per-chip resources a mapping must fit, as data.

The presets (:data:`TARGETS`: ``loihi2``, ``loihi1``) live here and only here; a JSON/TOML file
with the :class:`Target` fields describes any other chip (:func:`load_target`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "MappingError", "Target", "core_limits", "load_target", "target_from_dict"]


class MappingError(ValueError):
    """A layer no tiling can place; the message names the layer, the limit, the value, a fix."""


@dataclass(frozen=True)
class Target:
    """Per-core and per-chip resources of a neuromorphic chip family."""

    name: str  # short name, e.g. "loihi2"
    neurons_per_core: int  # neuron (compartment) slots per core
    cores_per_chip: int  # neuro cores per chip
    synapse_memory_bytes_per_core: int  # synapse memory per core, bytes
    max_input_axons_per_core: int  # distinct source neurons a core can receive spikes from
    max_output_axons_per_core: int  # (neuron, destination core) routes a core can send
    weight_bits: int  # bits per stored synaptic weight
    shared_conv_weights: bool  # a conv kernel is stored once per core, not per connection
    description: str = ""  # where the figures come from
    assumptions: tuple[str, ...] = ()  # "field: value and why" for figures nobody published

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"target {self.name!r}: {f.name} must be an int, got {value!r}")
            if f.type == "int" and value < 1:
                raise ValueError(f"target {self.name!r}: {f.name} must be >= 1, got {value}")
        if not isinstance(self.shared_conv_weights, bool):
            raise ValueError(f"target {self.name!r}: shared_conv_weights must be true or false")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("target name must be a non-empty string")
        object.__setattr__(self, "assumptions", tuple(str(a) for a in self.assumptions))


TARGETS: dict[str, Target] = {
    "loihi2": Target(
        name="loihi2",
        neurons_per_core=8192,
        cores_per_chip=128,
        synapse_memory_bytes_per_core=131072,
        max_input_axons_per_core=32768,
        max_output_axons_per_core=32768,
        weight_bits=8,
        shared_conv_weights=True,
        description="Intel Loihi 2: 128 neuro cores/chip, up to 8,192 neurons/core, 8-bit"
        " weights with a shared exponent (REFERENCE.md section 3)",
        assumptions=(
            "synapse_memory_bytes_per_core = 131072 (128 KB): Loihi 1's figure, kept for"
            " Loihi 2, whose per-core synapse memory is not in REFERENCE.md",
            "max_input_axons_per_core = max_output_axons_per_core = 32768: Loihi 1's 4"
            " axons per neuron slot (4,096 / 1,024) scaled to 8,192 neurons; not published"
            " in REFERENCE.md",
            "shared_conv_weights = true: a conv kernel stored once per core (Loihi 2's"
            " convolutional synapse compression); Loihi 1 stores every connection",
        ),
    ),
    "loihi1": Target(
        name="loihi1",
        neurons_per_core=1024,
        cores_per_chip=128,
        synapse_memory_bytes_per_core=131072,
        max_input_axons_per_core=4096,
        max_output_axons_per_core=4096,
        weight_bits=8,
        shared_conv_weights=False,
        description="Intel Loihi 1 (nengo-loihi's validation limits): 1,024 compartments,"
        " 4,096 input and 4,096 output axons, 128 KB synapse memory per core, 128 cores/chip"
        " (REFERENCE.md section 3)",
        assumptions=(
            "weight_bits = 8: one 8-bit weight per connection (dense synapse encoding, no"
            " index or delay bits)",
        ),
    ),
}

_TARGET_KEYS = {f.name for f in dataclasses.fields(Target)}


def target_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> Target:
    """A :class:`Target` from a plain mapping (as read from JSON/TOML); unknown keys raise."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{source}: a target must be a table/object, got {type(d).__name__}")
    unknown = sorted(set(d) - _TARGET_KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown target keys {unknown}; known: {sorted(_TARGET_KEYS)}")
    required = {f.name for f in dataclasses.fields(Target) if f.default is dataclasses.MISSING}
    missing = sorted(required - set(d))
    if missing:
        raise ValueError(f"{source}: target lacks {missing}")
    values = dict(d)
    if "assumptions" in values:
        a = values["assumptions"]
        values["assumptions"] = (a,) if isinstance(a, str) else tuple(a)
    return Target(**values)


def load_target(spec: str | os.PathLike | Target) -> Target:
    """A target by name (``loihi2``, ``loihi1``) or from a ``.json``/``.toml`` file."""
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, str) and spec in TARGETS:
        return TARGETS[spec]
    path = Path(spec)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(
            f"unknown target {str(spec)!r}: use one of {sorted(TARGETS)} or a .json/.toml file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such target file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: target file is not UTF-8 text ({err.reason})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: cannot parse target: {err}") from None
    return target_from_dict(data, str(path))


def core_limits(target: Target) -> dict[str, int]:
    """The per-core resources a tile must fit, by the name the reports use."""
    return {
        "neurons": target.neurons_per_core,
        "input axons": target.max_input_axons_per_core,
        "synapse memory": target.synapse_memory_bytes_per_core,
        "output axons": target.max_output_axons_per_core,
    }
