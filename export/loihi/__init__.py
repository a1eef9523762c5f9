"""Loihi-style fixed point: quantisation of NIR graphs and a bit-exact, batched simulator.

The arithmetic is that of Lava's bit-accurate models (:mod:`export.fixed_point`, numpy only).
:func:`quantize` turns a NIR graph (LIF, CubaLIF, IF, Threshold neurons fed through
Conv/Affine/Linear, Scale, Flatten, Sum/AvgPool2d) into :class:`QuantizedGraph` layers, each a
Lava LIF with its Dense/Conv projections (float-to-integer mapping: :mod:`.quantize`);
:func:`simulate_quantized` runs it bit-exactly with Lava's timing or aligned with the float
model. :func:`compare_fixed_point` (``python -m export.loihi GRAPH.nir|CKPT``) compares float
and fixed point on real clips (accuracy, per-layer agreement, saturations) or, for any NIR
graph, on the user's time-first input (``--input``: spike agreement per layer, issue 15).

Modules, in the order they build on each other: :mod:`.layers` (what a quantised graph is),
:mod:`.paths` (the float graph's spike sources and linear paths), :mod:`.neurons` (float
neurons as LIF drive), :mod:`.quantize`, :mod:`.simulate`, :mod:`.calibrate` (ranges from a
float run), :mod:`.sources` (dataset clips or the user's input), :mod:`.compare` (the
float-vs-fixed pipeline), :mod:`.report`, :mod:`.cli`.
"""

from export.fixed_point import (
    ACT_SHIFT,
    BIAS_EXP_MAX,
    BIAS_MANT_BITS,
    DECAY_BITS,
    DECAY_SHIFT,
    DECAY_UNITY,
    STATE_BITS,
    U_WRAP,
    V_LIMIT,
    VTH_BITS,
    VTH_SHIFT,
    WEIGHT_BITS,
    decay,
    delay_one,
    dense_accumulate,
    effective_bias,
    effective_weights,
    lif_fixed,
    sign_mode,
    simulate_dense_lif,
    wrap_u,
)
from export.loihi.calibrate import float_records, layer_ranges
from export.loihi.cli import main
from export.loihi.compare import (
    FixedPointComparison,
    agreement_rows,
    compare_fixed_point,
    host_calls,
    quantize_on_input,
)
from export.loihi.layers import (
    Op,
    Projection,
    QuantConfig,
    QuantizedGraph,
    QuantLayer,
    path_errors,
)
from export.loihi.quantize import quantize
from export.loihi.report import report_text, write_report
from export.loihi.simulate import FixedPointRun, simulate_quantized

__all__ = [
    "ACT_SHIFT",
    "BIAS_EXP_MAX",
    "BIAS_MANT_BITS",
    "DECAY_BITS",
    "DECAY_SHIFT",
    "DECAY_UNITY",
    "STATE_BITS",
    "U_WRAP",
    "VTH_BITS",
    "VTH_SHIFT",
    "V_LIMIT",
    "WEIGHT_BITS",
    "FixedPointComparison",
    "FixedPointRun",
    "Op",
    "Projection",
    "QuantConfig",
    "QuantLayer",
    "QuantizedGraph",
    "agreement_rows",
    "compare_fixed_point",
    "decay",
    "delay_one",
    "dense_accumulate",
    "effective_bias",
    "effective_weights",
    "float_records",
    "host_calls",
    "layer_ranges",
    "lif_fixed",
    "main",
    "path_errors",
    "quantize",
    "quantize_on_input",
    "report_text",
    "sign_mode",
    "simulate_dense_lif",
    "simulate_quantized",
    "wrap_u",
    "write_report",
]
